"""Traces: search with filters and a cursor, a trace's spans by id, and each trace's GenAI summary.

- ``search_traces``: the traces one of whose spans meets the filters in a
  window, newest first by their first matching span, a page at a time. The
  page's trace ids are found newest slice first (query.newest), then one
  query summarises those traces (all their spans the scope may see, found
  through the trace-id lookup table).
- ``fetch_trace``: every span of one trace as OTLP ``TracesData``
  (query.spans), through the lookup table, capped at a span limit; calls
  whose content came as log events get it as their span attributes
  (query.content).
- ``summarise_traces``: the summary of given traces (``TraceSummary``): root
  span, start, duration, span count, LLM calls (the rows ``genai_calls``
  counts), tokens and cost summed as that table does, findings, errors.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from opentelemetry.proto.trace.v1.trace_pb2 import TracesData

from collector import semconv
from collector.extensions.api.query.content import add_content, call_content
from collector.extensions.api.query.cursor import Cursor
from collector.extensions.api.query.filters import (
    SEVERITIES,
    SPAN_FINDING_COUNT,
    SPAN_MAX_SEVERITY_RANK,
    Filters,
    span_attribute,
    span_conditions,
)
from collector.extensions.api.query.newest import newest_traces, traces_among
from collector.extensions.api.query.runner import QueryRunner, Record
from collector.extensions.api.query.spans import SPAN_ORDER, SPAN_SELECT, rows_to_traces
from collector.extensions.api.query.sql import Scope, Select, TimeRange, TraceWindow
from collector.extensions.api.query.tables import StoreTables
from collector.extensions.caller import CallerWatch
from exporters.clickhouse.genai_schema import call_measures, model_call_condition

_IS_CALL = f"({model_call_condition()})"


@dataclass(frozen=True)
class TraceSummary:
    """One trace at a glance; times in Unix nanoseconds, tokens and cost as ``genai_calls`` sums them."""

    trace_id: str
    root_service: str
    root_name: str
    start_ns: int
    end_ns: int
    span_count: int
    error_count: int
    llm_calls: int
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_creation_tokens: int
    reasoning_tokens: int
    cost: float
    finding_count: int
    max_severity: str | None
    models: tuple[str, ...]
    providers: tuple[str, ...]
    services: tuple[str, ...]
    conversations: tuple[str, ...]

    @property
    def duration_ns(self) -> int:
        return max(0, self.end_ns - self.start_ns)


@dataclass(frozen=True)
class TracePage:
    traces: list[TraceSummary]
    next_cursor: str | None


def _root(column: str) -> str:
    """``column`` of the trace's root span (no parent), else of its earliest span (a trace whose root is missing)."""
    root = f"argMinIf({column}, Timestamp, ParentSpanId = '')"
    return f"if(countIf(ParentSpanId = '') > 0, {root}, argMin({column}, Timestamp))"


_MEASURES = call_measures()
SUMMARY_COLUMNS: tuple[str, ...] = (
    "TraceId",
    f"{_root('ServiceName')} AS RootService",
    f"{_root('SpanName')} AS RootName",
    "toUnixTimestamp64Nano(min(Timestamp)) AS StartNanos",
    "max(toUnixTimestamp64Nano(Timestamp) + Duration) AS EndNanos",
    "count() AS SpanCount",
    "countIf(StatusCode = 'Error') AS ErrorCount",
    # IsCall is named once and reused: ClickHouse aliases hold anywhere in the SELECT.
    f"countIf({_IS_CALL} AS IsCall) AS LlmCalls",
    *(f"sumIf({_MEASURES[column]}, IsCall) AS {column}" for column in _MEASURES),
    f"sum({SPAN_FINDING_COUNT}) AS FindingCount",
    f"max({SPAN_MAX_SEVERITY_RANK}) AS MaxSeverityRank",
    f"arraySort(groupUniqArrayIf({span_attribute(semconv.REQUEST_MODEL)}, IsCall "
    f"AND {span_attribute(semconv.REQUEST_MODEL)} != '')) AS Models",
    f"arraySort(groupUniqArrayIf({span_attribute(semconv.PROVIDER_NAME)}, "
    f"{span_attribute(semconv.PROVIDER_NAME)} != '')) AS Providers",
    "arraySort(groupUniqArray(ServiceName)) AS Services",
    f"arraySort(groupUniqArrayIf({span_attribute(semconv.CONVERSATION_ID)}, "
    f"{span_attribute(semconv.CONVERSATION_ID)} != '')) AS Conversations",
)


def _summary(record: Record) -> TraceSummary:
    rank = int(record["MaxSeverityRank"])
    return TraceSummary(
        trace_id=record["TraceId"],
        root_service=record["RootService"],
        root_name=record["RootName"],
        start_ns=int(record["StartNanos"]),
        end_ns=int(record["EndNanos"]),
        span_count=int(record["SpanCount"]),
        error_count=int(record["ErrorCount"]),
        llm_calls=int(record["LlmCalls"]),
        input_tokens=int(record["InputTokens"]),
        output_tokens=int(record["OutputTokens"]),
        cache_read_tokens=int(record["CacheReadTokens"]),
        cache_creation_tokens=int(record["CacheCreationTokens"]),
        reasoning_tokens=int(record["ReasoningTokens"]),
        cost=float(record["Cost"]),
        finding_count=int(record["FindingCount"]),
        max_severity=SEVERITIES[rank - 1] if rank > 0 else None,
        models=tuple(record["Models"]),
        providers=tuple(record["Providers"]),
        services=tuple(record["Services"]),
        conversations=tuple(record["Conversations"]),
    )


async def summarise_traces(
    runner: QueryRunner,
    tables: StoreTables,
    scope: Scope,
    trace_ids: Sequence[str],
    caller: CallerWatch | None = None,
) -> dict[str, TraceSummary]:
    """The summaries of ``trace_ids`` (those with spans in ``scope``), by trace id."""
    if not trace_ids:
        return {}
    select = Select(tables.spans, scope, TraceWindow(tuple(trace_ids), tables.trace_lookup), limit=len(trace_ids))
    select.where(f"TraceId IN {select.bind(list(trace_ids), 'Array(String)')}")
    records = await runner.run(select.build(SUMMARY_COLUMNS, group_by=["TraceId"]), caller)
    return {record["TraceId"]: _summary(record) for record in records}


async def search_traces(
    runner: QueryRunner,
    tables: StoreTables,
    scope: Scope,
    window: TimeRange,
    filters: Filters,
    limit: int,
    cursor: Cursor | None = None,
    caller: CallerWatch | None = None,
) -> TracePage:
    """A page of at most ``limit`` traces matching ``filters`` in ``window``; see the module docstring."""
    if cursor is not None:
        # Every later match starts at or before the cursor: the window can end there.
        window = TimeRange(window.start_ns, min(window.end_ns, cursor.time_ns + 1))

    async def matches_in(part: TimeRange, most: int) -> list[Record]:
        select = Select(tables.spans, scope, part, limit=most)
        select.where(*span_conditions(select, filters))
        having = []
        if cursor is not None:
            match_ns, trace_id = select.bind(cursor.time_ns, "Int64"), select.bind(cursor.id, "String")
            having.append(f"(MatchNanos, TraceId) < ({match_ns}, {trace_id})")
        query = select.build(
            ["TraceId", "toUnixTimestamp64Nano(min(Timestamp)) AS MatchNanos"],
            group_by=["TraceId"],
            having=having,
            order_by=["MatchNanos DESC", "TraceId DESC"],
        )
        return await runner.run(query, caller)

    async def matched_in(part: TimeRange, trace_ids: Sequence[str]) -> set[str]:
        select = Select(tables.spans, scope, part, limit=len(trace_ids))
        return await traces_among(runner, select.where(*span_conditions(select, filters)), trace_ids, caller)

    matches = await newest_traces(window, limit + 1, matches_in, _trace_id, matched_in)
    page, more = matches[:limit], len(matches) > limit
    summaries = await summarise_traces(runner, tables, scope, [match["TraceId"] for match in page], caller)
    traces = [summaries[match["TraceId"]] for match in page if match["TraceId"] in summaries]
    next_cursor = Cursor(int(page[-1]["MatchNanos"]), page[-1]["TraceId"]).encode() if more else None
    return TracePage(traces, next_cursor)


def _trace_id(record: Record) -> str:
    return str(record["TraceId"])


@dataclass(frozen=True)
class Trace:
    """One trace's spans (OTLP) and summary; ``truncated`` when it holds more spans than were read."""

    spans: TracesData
    summary: TraceSummary
    truncated: bool


async def fetch_trace(
    runner: QueryRunner,
    tables: StoreTables,
    scope: Scope,
    trace_id: str,
    max_spans: int,
    caller: CallerWatch | None = None,
) -> Trace | None:
    """The spans of ``trace_id`` visible in ``scope`` and its summary; None when there are none."""
    select = Select(tables.spans, scope, TraceWindow((trace_id,), tables.trace_lookup), limit=max_spans + 1)
    select.where(f"TraceId = {select.bind(trace_id, 'String')}")
    spans_query = select.build(SPAN_SELECT, order_by=SPAN_ORDER)
    rows, summaries = await asyncio.gather(
        runner.run(spans_query, caller), summarise_traces(runner, tables, scope, [trace_id], caller)
    )
    summary = summaries.get(trace_id)
    if not rows or summary is None:
        return None
    kept = rows[:max_spans]
    spans = ((row["TraceId"], row["SpanId"]) for row in kept)
    window = TimeRange(summary.start_ns, summary.end_ns + 1)
    add_content(kept, await call_content(runner, tables, scope, spans, window, caller))
    return Trace(rows_to_traces(kept), summary, truncated=len(rows) > max_spans)
