"""The body of an OTLP/HTTP request: protobuf, or OTLP/JSON, optionally gzipped.

OTLP/JSON is the protobuf JSON mapping with the two differences the OTLP
specification makes: trace and span IDs are hex strings rather than base64,
and enums are integers. Field names are lowerCamelCase, as receivers expect.
"""

from __future__ import annotations

import gzip

from collector.receivers.otlp.codec import encode_otlp_json
from collector.signals import SIGNAL_KINDS, SignalKind
from exporters.otlphttp.config import Compression, Encoding

CONTENT_TYPES: dict[Encoding, str] = {"proto": "application/x-protobuf", "json": "application/json"}
# zlib's default level: most of level 9's ratio for a fraction of its time, on the sender's thread.
GZIP_LEVEL = 6


def encode_body(
    request: bytes, encoding: Encoding, compression: Compression, kind: SignalKind = SIGNAL_KINDS["traces"]
) -> bytes:
    """``request`` (a serialized Export request of ``kind``'s signal) as the bytes to post."""
    body = request if encoding == "proto" else encode_otlp_json(kind.data_type.FromString(request))
    # mtime=0: the same request compresses to the same bytes, so a retry sends exactly what failed.
    return gzip.compress(body, GZIP_LEVEL, mtime=0) if compression == "gzip" else body
