"""Decode OTLP trace request bodies (protobuf or JSON) and encode the responses.

OTLP/JSON is the protobuf JSON mapping with two differences the specification
makes: trace and span IDs are hex strings, not base64, and enum values are
integers. Unknown fields are ignored, as the specification asks of receivers.
"""

from __future__ import annotations

import base64
import json
import zlib
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message

from collector.component import TracesData

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
SUPPORTED_CONTENT_TYPES = (PROTOBUF, JSON)

_ID_FIELDS = ("traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id")
_ID_LENGTHS = {"traceId": 16, "trace_id": 16}
_DEFAULT_ID_LENGTH = 8


class BadRequest(ValueError):
    """The body cannot be read as an OTLP traces request; the message says why."""


class BodyTooLarge(BadRequest):
    """The (decompressed) body is larger than the receiver accepts."""


def decode_traces(body: bytes, content_type: str) -> TracesData:
    """The TracesData in ``body``; ``content_type`` is one of SUPPORTED_CONTENT_TYPES."""
    if content_type == PROTOBUF:
        try:
            # ExportTraceServiceRequest and TracesData share their wire format.
            return TracesData.FromString(body)
        except DecodeError as exc:
            raise BadRequest(f"invalid protobuf body: {exc}") from None
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadRequest(f"invalid JSON body: {exc}") from None
    if not isinstance(document, dict):
        raise BadRequest("invalid JSON body: expected an object with resourceSpans")
    _hex_ids_to_base64(document)
    try:
        return json_format.ParseDict(document, TracesData(), ignore_unknown_fields=True)
    except json_format.ParseError as exc:
        raise BadRequest(f"invalid OTLP/JSON: {exc}") from None


def encode_message(message: Message, content_type: str) -> bytes:
    """``message`` in the response encoding matching the request's."""
    if content_type == JSON:
        return json_format.MessageToJson(message, indent=None).encode()
    return message.SerializeToString()


def decompress(body: bytes, encoding: str, limit: int) -> bytes:
    """``body`` decoded per Content-Encoding, refusing more than ``limit`` bytes of output."""
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        data = body
    elif encoding in ("gzip", "x-gzip"):
        data = _inflate(body, zlib.decompressobj(16 + zlib.MAX_WBITS), limit, "gzip")
    elif encoding == "deflate":
        data = _inflate(body, zlib.decompressobj(), limit, "deflate")
    else:
        raise BadRequest(f'unsupported Content-Encoding "{encoding}"; use gzip, deflate or none')
    if len(data) > limit:
        raise BodyTooLarge(f"request body exceeds {limit} bytes")
    return data


def _inflate(body: bytes, inflater: zlib._Decompress, limit: int, name: str) -> bytes:
    try:
        data = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise BadRequest(f"invalid {name} body: {exc}") from None
    if len(data) > limit:
        raise BodyTooLarge(f"decompressed request body exceeds {limit} bytes")
    if not inflater.eof:
        raise BadRequest(f"invalid {name} body: truncated")
    return data


def _hex_ids_to_base64(node: Any) -> None:
    """Rewrite OTLP/JSON's hex IDs into the base64 the protobuf JSON parser expects, in place."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _ID_FIELDS and isinstance(value, str):
                node[key] = _hex_to_base64(key, value)
            elif isinstance(value, dict | list):
                _hex_ids_to_base64(value)
    elif isinstance(node, list):
        for item in node:
            if isinstance(item, dict | list):
                _hex_ids_to_base64(item)


def _hex_to_base64(key: str, value: str) -> str:
    if value == "":
        return ""
    expected = _ID_LENGTHS.get(key, _DEFAULT_ID_LENGTH)
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raise BadRequest(f'{key} "{value}" is not hex') from None
    if len(raw) != expected:
        raise BadRequest(f'{key} "{value}" must be {expected * 2} hex digits')
    return base64.b64encode(raw).decode("ascii")
