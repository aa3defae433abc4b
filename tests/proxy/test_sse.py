"""SSE splitting: every event whole and byte-exact, however the stream is cut into chunks."""

from __future__ import annotations

import pytest

from proxy.sse import SseSplitter, parse_event

STREAM = (
    b'event: message_start\ndata: {"a":1}\n\n'
    b": keep-alive comment\n\n"
    b"data: line one\r\ndata: line two\r\n\r\n"
    b"data: cr only\r\r"
    b"data: [DONE]\n\n"
)


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64, len(STREAM)])
def test_events_are_whole_and_bytes_are_kept_whatever_the_chunking(size: int) -> None:
    splitter = SseSplitter()
    events = []
    for i in range(0, len(STREAM), size):
        events.extend(splitter.feed(STREAM[i : i + size]))
    events_bytes = b"".join(e.raw for e in events) + splitter.rest()

    assert events_bytes == STREAM
    assert [(e.event, e.data) for e in events] == [
        ("message_start", '{"a":1}'),
        ("", ""),
        ("", "line one\nline two"),
        ("", "cr only"),
        ("", "[DONE]"),
    ]


def test_an_unfinished_event_is_kept_for_later() -> None:
    splitter = SseSplitter()
    assert list(splitter.feed(b"data: partial")) == []
    assert splitter.rest() == b"data: partial"


def test_field_without_space_and_unknown_fields() -> None:
    event = parse_event(b"id: 7\nretry: 100\ndata:x\n\n")
    assert (event.event, event.data) == ("", "x")


def test_a_large_event_in_small_chunks_is_scanned_once() -> None:
    event = b"data: " + b"x" * 2_000_000 + b"\n\n"
    splitter = SseSplitter()
    found = []
    for i in range(0, len(event), 1024):
        found.extend(splitter.feed(event[i : i + 1024]))
    assert [len(e.data) for e in found] == [2_000_000]


def test_an_event_that_never_ends_is_let_through_unparsed() -> None:
    splitter = SseSplitter(max_event_bytes=100)
    out = list(splitter.feed(b"data: " + b"y" * 150))
    assert [(len(e.raw), e.data) for e in out] == [(156, "")]
    assert splitter.rest() == b""
