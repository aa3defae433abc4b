"""JSON at the edges: query result values made JSON-ready, and JSON read from attribute strings."""

from __future__ import annotations

import datetime
import json
from typing import Any


def jsonable(value: Any) -> Any:
    """A JSON-encodable stand-in for ``value``; used as json.dumps' ``default``."""
    if isinstance(value, datetime.datetime | datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", errors="replace")
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return str(value)


def parse_json(value: Any) -> Any:
    """The JSON a string attribute holds, or None when it is not a string of valid JSON."""
    if not isinstance(value, str):
        return None
    try:
        return json.loads(value)
    except (ValueError, RecursionError):
        return None
