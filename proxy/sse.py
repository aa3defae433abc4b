"""Incremental server-sent-events splitting that keeps every event's raw bytes.

The proxy forwards each event the moment its blank-line terminator arrives,
byte for byte, and parses a copy. Events are split on any of the line endings
the SSE specification allows (LF, CRLF, CR).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

# An event ends at the first empty line: two line breaks in a row.
_EVENT_END = re.compile(rb"(?:\r\n|\r(?!\n)|\n)(?:\r\n|\r(?!\n)|\n)")
_LINE = re.compile(r"\r\n|\r|\n")
# A terminator spans at most 4 bytes (CRLF CRLF): a new search backs up that far.
_LONGEST_TERMINATOR = 4
MAX_EVENT_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class SseEvent:
    raw: bytes  # the event as received, terminator included
    event: str  # the ``event:`` field, "" when absent ("message" per the specification)
    data: str  # the ``data:`` lines joined by "\n"


class SseSplitter:
    """Feed it chunks as they arrive; it yields each event once complete.

    Each byte is scanned once (a chunk is searched only from where the last
    search stopped), so one large event arriving in small chunks costs linear
    time. An "event" that grows past ``max_event_bytes`` without ending is let
    through unparsed rather than held.
    """

    def __init__(self, max_event_bytes: int = MAX_EVENT_BYTES) -> None:
        self._buffer = bytearray()
        self._scanned = 0  # no event end starts before this offset of the buffer
        self._max_event_bytes = max_event_bytes

    def feed(self, chunk: bytes) -> Iterator[SseEvent]:
        self._buffer += chunk
        buffer = self._buffer
        start = 0
        search_from = max(0, self._scanned - _LONGEST_TERMINATOR)
        while (end := _EVENT_END.search(buffer, search_from)) is not None:
            # A lone CR at the very end may be the first half of a CRLF still in flight.
            if end.end() == len(buffer) and buffer.endswith(b"\r"):
                break
            raw = bytes(buffer[start : end.end()])
            start = search_from = end.end()
            yield parse_event(raw)
        if start:
            del buffer[:start]
        self._scanned = len(buffer)
        if len(buffer) > self._max_event_bytes:
            raw, self._buffer, self._scanned = bytes(buffer), bytearray(), 0
            yield SseEvent(raw, "", "")

    def finish(self) -> Iterator[SseEvent]:
        """The event the end of the stream completes: one ending in a lone CR was held for a possible LF."""
        end = _EVENT_END.search(self._buffer)
        if end is not None and end.end() == len(self._buffer):
            raw, self._buffer, self._scanned = bytes(self._buffer), bytearray(), 0
            yield parse_event(raw)

    def rest(self) -> bytes:
        """Bytes after the last complete event (a stream cut short, or one without a final blank line)."""
        rest, self._buffer, self._scanned = bytes(self._buffer), bytearray(), 0
        return rest


def parse_event(raw: bytes) -> SseEvent:
    event = ""
    data: list[str] = []
    for line in _LINE.split(raw.decode("utf-8", errors="replace")):
        if not line or line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "data":
            data.append(value)
        elif name == "event":
            event = value
    return SseEvent(raw, event, "\n".join(data))
