"""query.newest: reading the window's newest slices first gives exactly what grouping the whole window gives.

The spans here are (trace, time) pairs in memory and the two questions a search
asks of the store are answered over them, so every arrangement hypothesis finds
(traces straddling slice bounds, long traces with a lone early span, ties, empty
windows, pages larger than the window holds) is checked against the answer of
the whole window. The SQL side of both questions runs on the engine in the REST,
Jaeger and Tempo search tests.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from hypothesis import given, settings
from hypothesis import strategies as st

from collector.extensions.api.query import newest
from collector.extensions.api.query.newest import newest_traces
from collector.extensions.api.query.sql import TimeRange

WINDOW = TimeRange(1_000, 1_000 + 64 * 64 * 10)

Span = tuple[str, int]  # trace id, start time


def first_matches(spans: Sequence[Span], part: TimeRange, most: int) -> list[tuple[int, str]]:
    """What the store's grouping query answers: traces by their first span in ``part``, newest first."""
    first: dict[str, int] = {}
    for trace, time in spans:
        if part.start_ns <= time < part.end_ns:
            first[trace] = min(time, first.get(trace, time))
    return sorted(((time, trace) for trace, time in first.items()), reverse=True)[:most]


class Store:
    def __init__(self, spans: Sequence[Span]) -> None:
        self.spans = spans
        self.reads: list[TimeRange] = []

    async def matches_in(self, part: TimeRange, most: int) -> list[tuple[int, str]]:
        self.reads.append(part)
        return first_matches(self.spans, part, most)

    async def matched_in(self, part: TimeRange, trace_ids: Sequence[str]) -> set[str]:
        return {trace for trace, time in self.spans if part.start_ns <= time < part.end_ns and trace in trace_ids}


def search(store: Store, wanted: int) -> list[tuple[int, str]]:
    return asyncio.run(newest_traces(WINDOW, wanted, store.matches_in, lambda match: match[1], store.matched_in))


spans_in_and_around_the_window = st.lists(
    st.tuples(st.sampled_from("abcdefghijklmnopqrstuvwxyz"), st.integers(WINDOW.start_ns - 50, WINDOW.end_ns + 50)),
    max_size=120,
)


@settings(max_examples=400, deadline=None)
@given(spans=spans_in_and_around_the_window, wanted=st.integers(1, 30))
def test_the_slices_answer_what_the_whole_window_answers(spans: list[Span], wanted: int) -> None:
    assert search(Store(spans), wanted) == first_matches(spans, WINDOW, wanted)


def test_a_busy_window_is_answered_from_its_last_slice() -> None:
    # A trace a second for the whole window, two spans each: the last slice holds far more than a page.
    spans = [(f"t{time:06d}", time) for time in range(WINDOW.start_ns, WINDOW.end_ns)]
    spans += [(trace, time + 3) for trace, time in spans]
    store = Store(spans)
    assert search(store, 20) == first_matches(spans, WINDOW, 20)
    width = (WINDOW.end_ns - WINDOW.start_ns) // newest.FIRST_SLICE_SHARE
    assert store.reads == [TimeRange(WINDOW.end_ns - width, WINDOW.end_ns)]


def test_a_long_trace_with_an_early_span_is_not_taken_for_a_new_one() -> None:
    # "old" has its first span at the window's start and many in the last slice; it must rank last.
    late = [(f"n{i}", WINDOW.end_ns - 100 + i) for i in range(3)]
    spans = [("old", WINDOW.start_ns), *[("old", WINDOW.end_ns - 50 + i) for i in range(20)], *late]
    assert [trace for _, trace in search(Store(spans), 4)] == ["n2", "n1", "n0", "old"]
