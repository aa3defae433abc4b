"""Turn query result values (datetimes, decimals, UUIDs, bytes...) into JSON-ready ones."""

from __future__ import annotations

import datetime
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
