"""Count the messages in an encoded OTLP request (of any signal) without decoding it.

Decoding builds an object per message: a 20 MiB request of empty spans (two
bytes each on the wire) decodes into gigabytes. Walking the protobuf wire format
(tags and lengths only, skipping every payload) counts resource spans, scope
spans and spans first, and stops as soon as a count passes its limit, so a
request over a limit is refused before it costs any memory.

The walk never rejects anything itself: on malformed input it stops, and the
real decoder that runs next says what is wrong.
"""

from __future__ import annotations

from collections.abc import Iterator

# Field numbers shared by TracesData and ExportTraceServiceRequest (resource_spans),
# ResourceSpans (scope_spans) and ScopeSpans (spans); the logs and metrics messages number
# theirs the same (resource_logs, scope_logs, log_records; resource_metrics, scope_metrics, metrics).
RESOURCE_SPANS_FIELD = 1
SCOPE_SPANS_FIELD = 2
SPANS_FIELD = 2

_VARINT, _I64, _LEN, _START_GROUP, _END_GROUP, _I32 = 0, 1, 2, 3, 4, 5
# A 64-bit varint takes at most ten bytes; a longer run is garbage, not worth walking.
_MAX_VARINT_SHIFT = 63
# Every message on the wire costs at least a tag byte and a length byte.
MIN_BYTES_PER_MESSAGE = 2


class CountExceeded(Exception):
    """``kind`` passed ``limit`` while counting."""

    def __init__(self, kind: str, limit: int) -> None:
        super().__init__(kind, limit)
        self.kind = kind
        self.limit = limit


def could_exceed(body_size: int, smallest_limit: int) -> bool:
    """Whether a body of ``body_size`` bytes could hold more messages of one kind than ``smallest_limit``."""
    return body_size // MIN_BYTES_PER_MESSAGE > smallest_limit


TRACES_LEVELS = ("resource spans", "scope spans", "spans")


def check_counts(
    body: bytes,
    max_resource_spans: int,
    max_scope_spans: int,
    max_spans: int,
    levels: tuple[str, str, str] = TRACES_LEVELS,
) -> None:
    """Raise CountExceeded at the first count of ``body``'s messages that passes its limit; ``levels`` names the
    three levels of the request's signal (resources, scopes, items), as CountExceeded reports them."""
    scope_spans = spans = 0
    resources = _length_delimited(body, 0, len(body), RESOURCE_SPANS_FIELD)
    for resource_spans, (resource_start, resource_end) in enumerate(resources, start=1):
        if resource_spans > max_resource_spans:
            raise CountExceeded(levels[0], max_resource_spans)
        for scope_start, scope_end in _length_delimited(body, resource_start, resource_end, SCOPE_SPANS_FIELD):
            scope_spans += 1
            if scope_spans > max_scope_spans:
                raise CountExceeded(levels[1], max_scope_spans)
            for _ in _length_delimited(body, scope_start, scope_end, SPANS_FIELD):
                spans += 1
                if spans > max_spans:
                    raise CountExceeded(levels[2], max_spans)


def _length_delimited(data: bytes, start: int, end: int, wanted: int) -> Iterator[tuple[int, int]]:
    """(start, end) of each length-delimited field numbered ``wanted`` in ``data[start:end]``."""
    pos = start
    while pos < end:
        key, pos = _varint(data, pos, end)
        if key < 0:
            return
        if key & 0x7 == _LEN and key >> 3 == wanted:
            length, pos = _varint(data, pos, end)
            if length < 0 or pos + length > end:
                return
            yield pos, pos + length
            pos += length
        else:
            # Anything else is skipped, groups included: OTLP has none, but a decoder keeps one as an
            # unknown field and reads on past it, so must the count, or a group would hide the spans after it.
            pos = _skip_field(data, pos, end, key)
            if pos < 0:  # an end-group with no start, or garbage: leave it to the decoder
                return


def _skip_field(data: bytes, pos: int, end: int, key: int) -> int:
    """The position after the value of the field ``key`` starting at ``pos``; -1 when it cannot be read."""
    wire_type = key & 0x7
    if wire_type == _LEN:
        length, pos = _varint(data, pos, end)
        return -1 if length < 0 or pos + length > end else pos + length
    if wire_type == _VARINT:
        value, pos = _varint(data, pos, end)
        return -1 if value < 0 else pos
    if wire_type in (_I64, _I32):
        pos += 8 if wire_type == _I64 else 4
        return pos if pos <= end else -1
    if wire_type == _START_GROUP:
        number = key >> 3
        while pos < end:
            inner, pos = _varint(data, pos, end)
            if inner < 0:
                return -1
            if inner & 0x7 == _END_GROUP:
                return pos if inner >> 3 == number else -1
            pos = _skip_field(data, pos, end, inner)
            if pos < 0:
                return -1
    return -1


def _varint(data: bytes, pos: int, end: int) -> tuple[int, int]:
    """The varint at ``pos`` and the position after it; -1 when it is cut short."""
    result = shift = 0
    while pos < end and shift <= _MAX_VARINT_SHIFT:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7
    return -1, pos
