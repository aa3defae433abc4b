"""Traces one of whose spans meets a span filter, and what the Jaeger and Tempo answers say about them.

- ``find_traces``: the traces of a window with a span meeting a
  ``spanfilter`` condition (a TraceQL spanset, or Jaeger's search
  parameters), newest first by their first matching span (read newest slice
  first, query.newest); for each, how many spans matched and the first few of
  them (Tempo's spanset). Optional bounds on the trace's duration (first start
  to last end in the window) are checked in the same query, over the whole
  window.
- ``fetch_traces``: the spans of several traces as OTLP, one ``TracesData``
  per trace (query.spans), each capped at a span limit.
- ``service_stats``: per trace and service, the spans, the error spans and the
  orphans (spans whose parent the trace does not hold), which Tempo's
  ``serviceStats`` and Jaeger's trace summaries show; ``overviews`` adds them
  to each trace's summary (query.traces).

Everything is read through ``query.sql.Select``: scoped to the caller's
tenant, bounded in time and rows, every value bound.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from opentelemetry.proto.trace.v1.trace_pb2 import TracesData

from collector.extensions.api import spanfilter
from collector.extensions.api.query.newest import newest_traces, traces_among
from collector.extensions.api.query.runner import QueryRunner, Record
from collector.extensions.api.query.spans import SPAN_ORDER, SPAN_SELECT, rows_to_traces
from collector.extensions.api.query.sql import Scope, Select, TimeRange, TraceWindow, Window
from collector.extensions.api.query.tables import StoreTables
from collector.extensions.api.query.traces import TraceSummary, summarise_traces
from collector.extensions.api.spanfilter import SpanFilter
from collector.extensions.caller import CallerWatch

# Distinct services one trace is read for in service_stats, and spans one fetch of several traces reads at most
# besides each trace's own cap (a search for many large traces then lacks the spans that start last).
MAX_SERVICES_PER_TRACE = 1_000
MAX_SPANS_PER_FETCH = 200_000


@dataclass(frozen=True)
class MatchedSpan:
    """A span that met the filter, with the attributes the filter named (span's, else resource's, as stored)."""

    span_id: str
    name: str
    start_ns: int
    duration_ns: int
    status: str  # the stored word: Unset, Ok, Error
    kind: str  # the stored word: Server, Client...
    attributes: Mapping[str, str]


@dataclass(frozen=True)
class TraceMatch:
    trace_id: str
    first_match_ns: int
    matched: int  # spans of the trace (in the window) that met the filter
    spans: tuple[MatchedSpan, ...]  # the first of them by start, at most spans_per_trace


@dataclass(frozen=True)
class DurationBounds:
    """Bounds on a trace's duration, in nanoseconds; None leaves a side open."""

    min_ns: int | None = None
    max_ns: int | None = None

    def __bool__(self) -> bool:
        return self.min_ns is not None or self.max_ns is not None


@dataclass(frozen=True)
class ServiceStats:
    spans: int
    errors: int


@dataclass(frozen=True)
class TraceStats:
    """A trace's spans by service, how many have a parent the trace does not hold, and how many have none."""

    services: Mapping[str, ServiceStats]
    orphans: int
    roots: int


async def find_traces(
    runner: QueryRunner,
    tables: StoreTables,
    scope: Scope,
    window: TimeRange,
    condition: SpanFilter | None,
    limit: int,
    spans_per_trace: int = 0,
    trace_duration: DurationBounds | None = None,
    caller: CallerWatch | None = None,
) -> list[TraceMatch]:
    """At most ``limit`` traces with a span meeting ``condition`` in ``window``; see the module docstring."""

    async def matches_in(part: TimeRange, most: int) -> list[TraceMatch]:
        select = Select(tables.spans, scope, part, limit=most)
        matches = spanfilter.to_sql(condition, select)
        named = [c.field.name for c in spanfilter.comparisons(condition) if isinstance(c.field, spanfilter.Attribute)]
        keys = select.bind(sorted(set(named)), "Array(String)")
        attributes = (
            f"mapFilter((k, v) -> has({keys}, k), mapUpdate(ResourceAttributes, SpanAttributes))" if named else "map()"
        )
        span = f"(SpanId, SpanName, toUnixTimestamp64Nano(Timestamp), Duration, StatusCode, SpanKind, {attributes})"
        columns = [
            "TraceId",
            f"countIf({matches}) AS Matched",
            f"toUnixTimestamp64Nano(minIf(Timestamp, {matches})) AS MatchNanos",
            # groupArray keeps the first N it meets; the N earliest by start are picked among them below
            f"groupArrayIf({int(max(spans_per_trace, 1))})({span}, {matches}) AS Spans",
        ]
        having: list[str] = []
        if trace_duration:
            # Every span of the window counts towards the trace's duration, so the filter moves to HAVING.
            having.append("Matched > 0")
            duration = "max(toUnixTimestamp64Nano(Timestamp) + Duration) - toUnixTimestamp64Nano(min(Timestamp))"
            if trace_duration.min_ns is not None:
                having.append(f"{duration} >= {select.bind(trace_duration.min_ns, 'Int64')}")
            if trace_duration.max_ns is not None:
                having.append(f"{duration} <= {select.bind(trace_duration.max_ns, 'Int64')}")
        elif condition is not None:
            select.where(matches)
        query = select.build(columns, group_by=["TraceId"], having=having, order_by=["MatchNanos DESC", "TraceId DESC"])
        records = await runner.run(query, caller)
        return [_match(record, spans_per_trace) for record in records]

    async def matched_in(part: TimeRange, trace_ids: Sequence[str]) -> set[str]:
        select = Select(tables.spans, scope, part, limit=len(trace_ids))
        if condition is not None:
            select.where(spanfilter.to_sql(condition, select))
        return await traces_among(runner, select, trace_ids, caller)

    if trace_duration:
        # A trace's duration needs all its spans in the window: no slice can tell it.
        return await matches_in(window, limit)
    return await newest_traces(window, limit, matches_in, _trace_id, matched_in)


def _trace_id(match: TraceMatch) -> str:
    return match.trace_id


def _match(record: Record, spans_per_trace: int) -> TraceMatch:
    spans = sorted(
        (
            MatchedSpan(span_id, name, int(start), int(duration), status, kind, dict(attributes))
            for span_id, name, start, duration, status, kind, attributes in record["Spans"]
        ),
        key=lambda span: (span.start_ns, span.span_id),
    )
    return TraceMatch(
        trace_id=record["TraceId"],
        first_match_ns=int(record["MatchNanos"]),
        matched=int(record["Matched"]),
        spans=tuple(spans[:spans_per_trace]),
    )


async def fetch_traces(
    runner: QueryRunner,
    tables: StoreTables,
    scope: Scope,
    trace_ids: Sequence[str],
    max_spans: int,
    window: Window | None = None,
    caller: CallerWatch | None = None,
) -> dict[str, TracesData]:
    """The spans of ``trace_ids`` visible in ``scope``, at most ``max_spans`` per trace, by trace id.

    ``window`` narrows the read; by default it is where the trace-id lookup table puts the traces.
    Traces without a visible span are left out; past MAX_SPANS_PER_FETCH spans in all, the latest spans are.
    """
    if not trace_ids:
        return {}
    ids = tuple(dict.fromkeys(trace_ids))
    window = window or TraceWindow(ids, tables.trace_lookup)
    select = Select(tables.spans, scope, window, limit=min(max_spans * len(ids), max(max_spans, MAX_SPANS_PER_FETCH)))
    select.where(f"TraceId IN {select.bind(list(ids), 'Array(String)')}")
    query = select.build(SPAN_SELECT, order_by=SPAN_ORDER, limit_by=f"LIMIT {int(max_spans)} BY TraceId")
    by_trace: dict[str, list[Record]] = {}
    for row in await runner.run(query, caller):
        by_trace.setdefault(row["TraceId"], []).append(row)
    return {trace_id: rows_to_traces(by_trace[trace_id]) for trace_id in ids if trace_id in by_trace}


async def service_stats(
    runner: QueryRunner,
    tables: StoreTables,
    scope: Scope,
    trace_ids: Sequence[str],
    caller: CallerWatch | None = None,
) -> dict[str, TraceStats]:
    """Spans and error spans by service, and orphan spans, of each of ``trace_ids`` (their visible spans)."""
    if not trace_ids:
        return {}
    ids = tuple(dict.fromkeys(trace_ids))
    # One row per trace and service: the services one trace may name bound the answer.
    select = Select(tables.spans, scope, TraceWindow(ids, tables.trace_lookup), limit=len(ids) * MAX_SERVICES_PER_TRACE)
    held = select.subquery(tables.spans)
    bound_ids = select.bind(list(ids), "Array(String)")
    select.where(f"TraceId IN {bound_ids}")
    held.where(f"TraceId IN {bound_ids}")
    orphan = f"ParentSpanId != '' AND (TraceId, ParentSpanId) NOT IN ({held.sql(['TraceId', 'SpanId'])})"
    query = select.build(
        [
            "TraceId",
            "ServiceName",
            "count() AS Spans",
            "countIf(StatusCode = 'Error') AS Errors",
            f"countIf({orphan}) AS Orphans",
            "countIf(ParentSpanId = '') AS Roots",
        ],
        group_by=["TraceId", "ServiceName"],
        order_by=["TraceId", "ServiceName"],
    )
    services: dict[str, dict[str, ServiceStats]] = {}
    orphans: dict[str, int] = {}
    roots: dict[str, int] = {}
    for record in await runner.run(query, caller):
        trace_id = record["TraceId"]
        services.setdefault(trace_id, {})[record["ServiceName"]] = ServiceStats(
            int(record["Spans"]), int(record["Errors"])
        )
        orphans[trace_id] = orphans.get(trace_id, 0) + int(record["Orphans"])
        roots[trace_id] = roots.get(trace_id, 0) + int(record["Roots"])
    return {trace_id: TraceStats(services[trace_id], orphans[trace_id], roots[trace_id]) for trace_id in services}


@dataclass(frozen=True)
class TraceOverview:
    """A trace's summary (root, times, counts) and its spans by service."""

    summary: TraceSummary
    stats: TraceStats


async def overviews(
    runner: QueryRunner,
    tables: StoreTables,
    scope: Scope,
    trace_ids: Sequence[str],
    caller: CallerWatch | None = None,
) -> dict[str, TraceOverview]:
    """The overview of each of ``trace_ids`` with spans visible in ``scope``, by trace id."""
    summaries, stats = await asyncio.gather(
        summarise_traces(runner, tables, scope, trace_ids, caller),
        service_stats(runner, tables, scope, trace_ids, caller),
    )
    return {
        trace_id: TraceOverview(summaries[trace_id], stats[trace_id])
        for trace_id in trace_ids
        if trace_id in summaries and trace_id in stats
    }
