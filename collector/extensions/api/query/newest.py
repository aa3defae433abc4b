"""The newest traces of a window, by their first matching span, read from the window's newest end first.

A search orders traces by the time of their first span that meets the
filters, newest first, and wants a page of them. Grouping every matching span
of the window by trace answers that, but reads the whole window: on a busy day,
millions of spans for a page of twenty traces. ``newest_traces`` asks the same
question of the window's last slice first and widens the slice only when it
cannot answer, so a page usually costs one small slice.

Why a slice's answer is exact: take the slice ``[s, end)`` and the traces with
a matching span in it, each with the time of its first matching span *in the
slice*. A trace none of whose matching spans comes before ``s`` has that time
right; any other trace's first match is before ``s``, so it ranks after every
trace of the first kind. So once the slice's traces are known, one more query
finds which of the leading ones have a matching span before ``s``; dropping
those, the rest are exactly the window's newest traces, in order, as long as
enough of them are left to fill the page. When they are not, the slice widens;
the last try is the whole window, asked directly.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from collector.extensions.api.query.runner import QueryRunner
from collector.extensions.api.query.sql import Select, TimeRange
from collector.extensions.caller import CallerWatch

# The first slice is this share of the window (a day: its last 22 minutes) and each next one this many times
# wider: a busy window answers from its first slice, a quiet one reaches the whole window in a few small reads.
FIRST_SLICE_SHARE = 64
WIDENING = 8
# Traces asked of a slice per trace wanted: room for the leading traces that started before the slice.
CANDIDATES_PER_WANTED = 2

Match = TypeVar("Match")
# The traces with a matching span in a time range, newest first by their first one there, at most ``limit``.
MatchesIn = Callable[[TimeRange, int], Awaitable[list[Match]]]
# Which of the given trace ids have a matching span in a time range.
MatchedIn = Callable[[TimeRange, Sequence[str]], Awaitable[set[str]]]


async def newest_traces(
    window: TimeRange,
    wanted: int,
    matches_in: MatchesIn[Match],
    trace_id: Callable[[Match], str],
    matched_in: MatchedIn,
) -> list[Match]:
    """The first ``wanted`` of ``matches_in(window, wanted)``, read slice by slice; see the module docstring."""
    width = (window.end_ns - window.start_ns) // FIRST_SLICE_SHARE
    while width > 0:
        start = window.end_ns - width
        if start <= window.start_ns:
            break
        candidates = await matches_in(TimeRange(start, window.end_ns), wanted * CANDIDATES_PER_WANTED)
        if candidates:
            earlier = await matched_in(TimeRange(window.start_ns, start), [trace_id(c) for c in candidates])
            kept = [candidate for candidate in candidates if trace_id(candidate) not in earlier]
            if len(kept) >= wanted:
                return kept[:wanted]
        width *= WIDENING
    return await matches_in(window, wanted)


async def traces_among(
    runner: QueryRunner, select: Select, trace_ids: Sequence[str], caller: CallerWatch | None
) -> set[str]:
    """Which of ``trace_ids`` have a span ``select`` matches (its window, scope and conditions): a ``MatchedIn``."""
    select.where(f"TraceId IN {select.bind(list(trace_ids), 'Array(String)')}")
    records = await runner.run(select.build(["TraceId"], group_by=["TraceId"]), caller)
    return {str(record["TraceId"]) for record in records}
