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


@dataclass(frozen=True)
class SseEvent:
    raw: bytes  # the event as received, terminator included
    event: str  # the ``event:`` field, "" when absent ("message" per the specification)
    data: str  # the ``data:`` lines joined by "\n"


class SseSplitter:
    """Feed it chunks as they arrive; it yields each event once complete."""

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, chunk: bytes) -> Iterator[SseEvent]:
        buffer = self._buffer + chunk if self._buffer else chunk
        start = 0
        while (end := _EVENT_END.search(buffer, start)) is not None:
            # A lone CR at the very end may be the first half of a CRLF still in flight.
            if end.end() == len(buffer) and buffer.endswith(b"\r"):
                break
            raw = buffer[start : end.end()]
            start = end.end()
            yield parse_event(raw)
        self._buffer = buffer[start:]

    def rest(self) -> bytes:
        """Bytes after the last complete event (a stream cut short, or one without a final blank line)."""
        rest, self._buffer = self._buffer, b""
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
