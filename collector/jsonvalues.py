"""JSON at the edges: query result values made JSON-ready, and JSON read from attribute strings."""

from __future__ import annotations

import datetime
import json
from typing import Any

import orjson


def jsonable(value: Any) -> Any:
    """A JSON-encodable stand-in for ``value``; used as json.dumps' ``default``."""
    if isinstance(value, datetime.datetime | datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", errors="replace")
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return str(value)


# What orjson refuses and json accepts: NaN and Infinity, lone surrogates escaped as \ud800 (a marker
# present does not mean json will accept the text; absent, it will not).
_ONLY_JSON_ACCEPTS = ("NaN", "Infinity", "\\u")


def parse_json(value: Any) -> Any:
    """The JSON a string attribute holds, or None when it is not a string of valid JSON."""
    if not isinstance(value, str):
        return None
    try:
        return orjson.loads(value)  # message content is parsed for every span: about three times json's speed
    except orjson.JSONDecodeError:
        pass
    if not any(marker in value for marker in _ONLY_JSON_ACCEPTS):
        return None
    try:
        return json.loads(value)
    except (ValueError, RecursionError):
        return None


def dump_json(value: Any) -> str:
    """``value`` as compact JSON text, for writing a parsed attribute back."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # what orjson refuses: lone surrogates, integers beyond 64 bits
        # ASCII-only, so a lone surrogate stays an escape: a protobuf string must be valid UTF-8.
        return json.dumps(value)
