"""The body of an OTLP/HTTP request: protobuf, or OTLP/JSON, optionally gzipped.

OTLP/JSON is the protobuf JSON mapping with the two differences the OTLP
specification makes: trace and span IDs are hex strings rather than base64,
and enums are integers. Field names are lowerCamelCase, as receivers expect.
"""

from __future__ import annotations

import base64
import gzip
from typing import Any

import orjson
from google.protobuf import json_format
from opentelemetry.proto.trace.v1.trace_pb2 import TracesData

from exporters.otlphttp.config import Compression, Encoding

CONTENT_TYPES: dict[Encoding, str] = {"proto": "application/x-protobuf", "json": "application/json"}
# zlib's default level: most of level 9's ratio for a fraction of its time, on the sender's thread.
GZIP_LEVEL = 6
_ID_KEYS = frozenset({"traceId", "spanId", "parentSpanId"})


def encode_body(request: bytes, encoding: Encoding, compression: Compression) -> bytes:
    """``request`` (a serialized ExportTraceServiceRequest) as the bytes to post."""
    body = request if encoding == "proto" else to_otlp_json(TracesData.FromString(request))
    # mtime=0: the same request compresses to the same bytes, so a retry sends exactly what failed.
    return gzip.compress(body, GZIP_LEVEL, mtime=0) if compression == "gzip" else body


def to_otlp_json(traces: TracesData) -> bytes:
    """``traces`` in OTLP/JSON."""
    document = json_format.MessageToDict(traces, use_integers_for_enums=True)
    _ids_to_hex(document)
    return orjson.dumps(document)


def _ids_to_hex(node: Any) -> None:
    """Rewrite the base64 IDs of the protobuf JSON mapping into OTLP/JSON's hex, in place."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _ID_KEYS and isinstance(value, str):
                node[key] = base64.b64decode(value).hex()
            elif isinstance(value, dict | list):
                _ids_to_hex(value)
    elif isinstance(node, list):
        for item in node:
            if isinstance(item, dict | list):
                _ids_to_hex(item)
