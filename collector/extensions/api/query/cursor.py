"""The cursor of a paged listing: where the previous page ended, opaque to the caller.

Every paged listing of the read side is ordered newest first by (time, id),
so a page ends at one such pair and the next page is what comes strictly
after it. The cursor is that pair as base64url JSON; a cursor this API did
not hand out is refused (``BadCursor``), never turned into SQL.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass

MAX_ID_CHARS = 64
_HEX = frozenset("0123456789abcdef")


class BadCursor(ValueError):
    """A cursor that this API did not hand out."""


@dataclass(frozen=True)
class Cursor:
    """The last item of a page: its time in Unix nanoseconds and its id (lower-case hex)."""

    time_ns: int
    id: str

    def encode(self) -> str:
        raw = json.dumps([self.time_ns, self.id], separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> Cursor:
        try:
            time_ns, item_id = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        except (binascii.Error, ValueError, TypeError):
            raise BadCursor("not a cursor this API handed out") from None
        if (
            not isinstance(time_ns, int)
            or isinstance(time_ns, bool)
            or not isinstance(item_id, str)
            or not 0 < len(item_id) <= MAX_ID_CHARS
            or not _HEX.issuperset(item_id)
        ):
            raise BadCursor("not a cursor this API handed out")
        return cls(time_ns, item_id)
