"""Decode OTLP request bodies of any signal (protobuf or JSON) and encode the responses.

OTLP/JSON is the protobuf JSON mapping with two differences the specification
makes: trace and span IDs are hex strings, not base64, and enum values are
integers. Unknown fields are ignored, as the specification asks of receivers.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any, TypeVar

import orjson
from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message

# The receiver's errors are the bounded inflater's: one family, whichever step refused the body.
from collector.inflate import BadRequest as BadRequest
from collector.inflate import BodyTooLarge as BodyTooLarge
from collector.inflate import decompress as decompress
from collector.signals import TracesData

M = TypeVar("M", bound=Message)

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
SUPPORTED_CONTENT_TYPES = (PROTOBUF, JSON)

_ID_FIELDS = ("traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id")
_ID_LENGTHS = {"traceId": 16, "trace_id": 16}
_DEFAULT_ID_LENGTH = 8
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")


def decode_traces(body: bytes, content_type: str) -> TracesData:
    """The TracesData in ``body``; ``content_type`` is one of SUPPORTED_CONTENT_TYPES."""
    return decode(body, content_type, TracesData)


def decode(body: bytes, content_type: str, data_type: type[M]) -> M:
    """The ``data_type`` (TracesData, LogsData or MetricsData) in ``body``; ``content_type`` is one of
    SUPPORTED_CONTENT_TYPES."""
    if content_type == PROTOBUF:
        try:
            # Each Export...ServiceRequest shares its wire format with its signal's data message.
            return data_type.FromString(body)
        except DecodeError as exc:
            raise BadRequest(f"invalid protobuf body: {exc}") from None
    try:
        document = json.loads(body)
    except ValueError as exc:  # not JSON, not UTF-8, or an integer beyond Python's 4,300-digit limit
        raise BadRequest(f"invalid JSON body: {exc}") from None
    except RecursionError:
        raise BadRequest("invalid JSON body: nested too deeply") from None
    if not isinstance(document, dict):
        # resourceSpans, resourceLogs or resourceMetrics: the request's one field.
        raise BadRequest(f"invalid JSON body: expected an object with {data_type.DESCRIPTOR.fields[0].json_name}")
    try:
        _hex_ids_to_base64(document)
        return json_format.ParseDict(document, data_type(), ignore_unknown_fields=True)
    except json_format.ParseError as exc:
        raise BadRequest(f"invalid OTLP/JSON: {exc}") from None
    except BadRequest:
        raise  # an id that is not hex, already said in the client's terms
    except (ValueError, SystemError) as exc:
        # Text protobuf cannot hold (a lone surrogate escaped in a key or value) surfaces from its
        # C extension as these rather than as a ParseError.
        raise BadRequest(f"invalid OTLP/JSON: text that is not valid Unicode ({type(exc).__name__})") from None
    except RecursionError:
        raise BadRequest("invalid OTLP/JSON: nested too deeply") from None


def encode_message(message: Message, content_type: str) -> bytes:
    """``message`` in the response encoding matching the request's."""
    if content_type == JSON:
        return json_format.MessageToJson(message, indent=None).encode()
    return message.SerializeToString()


def encode_otlp_json(data: Message) -> bytes:
    """``data`` (a TracesData, LogsData or MetricsData) in OTLP/JSON: the protobuf JSON mapping with hex IDs and
    integer enums."""
    document = json_format.MessageToDict(data, use_integers_for_enums=True)
    _rewrite_ids(document, lambda key, value: base64.b64decode(value).hex())
    return orjson.dumps(document)


def _hex_ids_to_base64(node: Any) -> None:
    """Rewrite OTLP/JSON's hex IDs into the base64 the protobuf JSON parser expects, in place."""
    _rewrite_ids(node, _hex_to_base64)


def _rewrite_ids(node: Any, convert: Callable[[str, str], str]) -> None:
    """Replace every trace and span ID string in a JSON document with ``convert(key, value)``, in place."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _ID_FIELDS and isinstance(value, str):
                node[key] = convert(key, value)
            elif isinstance(value, dict | list):
                _rewrite_ids(value, convert)
    elif isinstance(node, list):
        for item in node:
            if isinstance(item, dict | list):
                _rewrite_ids(item, convert)


def _hex_to_base64(key: str, value: str) -> str:
    if value == "":
        return ""
    expected = _ID_LENGTHS.get(key, _DEFAULT_ID_LENGTH)
    # Checked by hand: bytes.fromhex would skip whitespace inside the string.
    if not _HEX_DIGITS.issuperset(value):
        raise BadRequest(f'{key} "{value}" is not hex')
    if len(value) != expected * 2:
        raise BadRequest(f'{key} "{value}" must be {expected * 2} hex digits')
    return base64.b64encode(bytes.fromhex(value)).decode("ascii")
