"""GenAI calls: rows of ``genai_calls`` (one per call to a model, counted once), filtered and paged newest first.

``CallRecord`` is a call as the API shows it, whether it was read from the
table (``list_calls``) or seen passing the pipeline (the live stream builds
it from the span with ``call_from_span``), so both give the same fields.
Asked for, a page of calls comes with each call's messages (query.content:
from its span's attributes, or from the log events recorded for it), and with
the evaluation results on each call (query.evaluations).
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from collector import findings, semconv
from collector.extensions.api.params import NANOS_PER_MILLISECOND, format_timestamp
from collector.extensions.api.query.content import calls_content
from collector.extensions.api.query.cursor import Cursor
from collector.extensions.api.query.evaluations import EvaluationFilters, evaluations_since
from collector.extensions.api.query.filters import Filters, call_conditions
from collector.extensions.api.query.runner import QueryRunner, Record
from collector.extensions.api.query.sql import Scope, Select, TimeRange
from collector.extensions.api.query.tables import StoreTables
from collector.extensions.caller import CallerWatch

# At most this many evaluation results are read per call of a page (a result per dimension it was judged on).
MAX_RESULTS_PER_CALL = 50
CALL_COLUMNS: tuple[str, ...] = (
    "toUnixTimestamp64Nano(Timestamp) AS StartNanos",
    "TraceId",
    "SpanId",
    "ServiceName",
    "Tenant",
    "Provider",
    "Operation",
    "RequestModel",
    "ResponseModel",
    "InputTokens",
    "OutputTokens",
    "CacheReadTokens",
    "CacheCreationTokens",
    "ReasoningTokens",
    "Cost",
    "CostSource",
    "Duration",
    "TimeToFirstChunk",
    "FinishReason",
    "StatusCode",
    "ConversationId",
    "FindingCount",
)


@dataclass(frozen=True)
class CallRecord:
    """One call to a model; times in Unix nanoseconds, time to first chunk in seconds (None when not streamed)."""

    start_ns: int
    trace_id: str
    span_id: str
    service: str
    tenant: str
    provider: str
    operation: str
    request_model: str
    response_model: str
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_creation_tokens: int
    reasoning_tokens: int
    cost: float
    cost_source: str
    duration_ns: int
    time_to_first_chunk: float | None
    finish_reason: str
    status: str
    conversation_id: str
    finding_count: int
    # The call's content attributes (gen_ai.input.messages...: the conventions' JSON, parsed), when asked for.
    content: Mapping[str, Any] | None = None
    # The evaluation results on the call (genai_evaluations' items, worst first), when asked for.
    evaluations: tuple[Mapping[str, Any], ...] | None = None

    def to_json(self) -> dict[str, Any]:
        shown = {
            "time": format_timestamp(self.start_ns),
            "trace_id": self.trace_id,
            "span_id": self.span_id,
            "service": self.service,
            "tenant": self.tenant,
            "provider": self.provider,
            "operation": self.operation,
            "request_model": self.request_model,
            "response_model": self.response_model,
            "tokens": {
                "input": self.input_tokens,
                "output": self.output_tokens,
                "cache_read": self.cache_read_tokens,
                "cache_creation": self.cache_creation_tokens,
                "reasoning": self.reasoning_tokens,
            },
            "cost_usd": self.cost,
            "cost_source": self.cost_source,
            "duration_ms": self.duration_ns / NANOS_PER_MILLISECOND,
            "time_to_first_chunk_ms": None if self.time_to_first_chunk is None else self.time_to_first_chunk * 1000,
            "finish_reason": self.finish_reason,
            "status": self.status,
            "conversation_id": self.conversation_id,
            "finding_count": self.finding_count,
        }
        if self.content is not None:
            shown["content"] = dict(self.content)
        if self.evaluations is not None:
            shown["evaluations"] = [dict(result) for result in self.evaluations]
        return shown


def call_from_record(record: Record) -> CallRecord:
    ttfc = record["TimeToFirstChunk"]
    return CallRecord(
        start_ns=int(record["StartNanos"]),
        trace_id=record["TraceId"],
        span_id=record["SpanId"],
        service=record["ServiceName"],
        tenant=record["Tenant"],
        provider=record["Provider"],
        operation=record["Operation"],
        request_model=record["RequestModel"],
        response_model=record["ResponseModel"],
        input_tokens=int(record["InputTokens"]),
        output_tokens=int(record["OutputTokens"]),
        cache_read_tokens=int(record["CacheReadTokens"]),
        cache_creation_tokens=int(record["CacheCreationTokens"]),
        reasoning_tokens=int(record["ReasoningTokens"]),
        cost=float(record["Cost"]),
        cost_source=record["CostSource"],
        duration_ns=int(record["Duration"]),
        time_to_first_chunk=None if ttfc is None or math.isnan(ttfc) else float(ttfc),
        finish_reason=record["FinishReason"],
        status=record["StatusCode"],
        conversation_id=record["ConversationId"],
        finding_count=int(record["FindingCount"]),
    )


def _first(attributes: Mapping[str, Any], *names: str) -> Any:
    for name in names:
        for spelling in semconv.spellings(name):
            if spelling in attributes:
                return attributes[spelling]
    return None


def _count(value: Any) -> int:
    try:
        return max(0, int(value)) if value is not None and not isinstance(value, bool) else 0
    except (TypeError, ValueError):
        return 0


def _number(value: Any) -> float | None:
    try:
        number = float(value) if value is not None and not isinstance(value, bool) else None
    except (TypeError, ValueError):
        return None
    return number if number is not None and math.isfinite(number) else None


def call_from_span(
    *,
    start_ns: int,
    duration_ns: int,
    trace_id: str,
    span_id: str,
    service: str,
    tenant: str,
    status: str,
    attributes: Mapping[str, Any],
) -> CallRecord:
    """A call as ``genai_calls`` would hold it, from a span's typed attributes (see genai_schema.calls_select_sql)."""
    finish = attributes.get(semconv.RESPONSE_FINISH_REASONS)
    if isinstance(finish, str):
        try:
            finish = json.loads(finish)
        except ValueError:
            finish = [finish]
    source = str(_first(attributes, semconv.USAGE_COST_SOURCE) or "")
    return CallRecord(
        start_ns=start_ns,
        trace_id=trace_id,
        span_id=span_id,
        service=service,
        tenant=tenant,
        provider=str(attributes.get(semconv.PROVIDER_NAME, "")),
        operation=str(attributes.get(semconv.OPERATION_NAME, "")),
        request_model=str(attributes.get(semconv.REQUEST_MODEL, "")),
        response_model=str(attributes.get(semconv.RESPONSE_MODEL, "")),
        input_tokens=_count(attributes.get(semconv.USAGE_INPUT_TOKENS)),
        output_tokens=_count(attributes.get(semconv.USAGE_OUTPUT_TOKENS)),
        cache_read_tokens=_count(attributes.get(semconv.USAGE_CACHE_READ_INPUT_TOKENS)),
        cache_creation_tokens=_count(_first(attributes, semconv.USAGE_CACHE_WRITE_INPUT_TOKENS)),
        reasoning_tokens=_count(attributes.get(semconv.USAGE_REASONING_OUTPUT_TOKENS)),
        cost=_number(_first(attributes, semconv.USAGE_COST_AMOUNT)) or 0.0,
        cost_source=semconv.RENAMED_COST_SOURCES.get(source, source),
        duration_ns=duration_ns,
        time_to_first_chunk=_number(attributes.get(semconv.RESPONSE_TIME_TO_FIRST_CHUNK)),
        finish_reason=str(finish[0]) if isinstance(finish, list) and finish else "",
        status=status,
        conversation_id=str(attributes.get(semconv.CONVERSATION_ID, "")),
        finding_count=_count(attributes.get(findings.FINDINGS_COUNT)),
    )


@dataclass(frozen=True)
class CallPage:
    calls: list[CallRecord]
    next_cursor: str | None


async def list_calls(
    runner: QueryRunner,
    tables: StoreTables,
    scope: Scope,
    window: TimeRange,
    filters: Filters,
    limit: int,
    cursor: Cursor | None = None,
    caller: CallerWatch | None = None,
    content: bool = False,
    evaluations: bool = False,
) -> CallPage:
    """A page of at most ``limit`` calls matching ``filters`` in ``window``, newest first; with ``content``, each
    with its messages, with ``evaluations`` with its evaluation results."""
    if cursor is not None:
        window = TimeRange(window.start_ns, min(window.end_ns, cursor.time_ns + 1))
    select = Select(tables.calls, scope, window, limit=limit + 1)
    select.where(*call_conditions(select, filters, tables.spans))
    if cursor is not None:
        start, span = select.bind(cursor.time_ns, "Int64"), select.bind(cursor.id, "String")
        select.where(f"(toUnixTimestamp64Nano(Timestamp), SpanId) < ({start}, {span})")
    records = await runner.run(select.build(CALL_COLUMNS, order_by=["Timestamp DESC", "SpanId DESC"]), caller)
    calls = [call_from_record(record) for record in records[:limit]]
    more = len(records) > limit
    if content and calls:
        calls = await with_content(runner, tables, scope, calls, caller)
    if evaluations and calls:
        calls = await with_evaluations(runner, tables, scope, calls, caller)
    return CallPage(calls, Cursor(calls[-1].start_ns, calls[-1].span_id).encode() if more else None)


async def with_content(
    runner: QueryRunner, tables: StoreTables, scope: Scope, calls: list[CallRecord], caller: CallerWatch | None = None
) -> list[CallRecord]:
    """``calls`` with their content (empty when none was recorded)."""
    end_ns = max(call.start_ns + call.duration_ns for call in calls)
    window = TimeRange(min(call.start_ns for call in calls), end_ns + 1)
    spans = [(call.trace_id, call.span_id) for call in calls]
    found = await calls_content(runner, tables, scope, spans, window, caller)
    return [dataclasses.replace(call, content=found.get((call.trace_id, call.span_id), {})) for call in calls]


async def with_evaluations(
    runner: QueryRunner, tables: StoreTables, scope: Scope, calls: list[CallRecord], caller: CallerWatch | None = None
) -> list[CallRecord]:
    """``calls`` with the evaluation results on them (none when none was recorded)."""
    spans = tuple((call.trace_id, call.span_id) for call in calls)
    since = min(call.start_ns for call in calls)
    limit = MAX_RESULTS_PER_CALL * len(calls)
    found: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for result in await evaluations_since(runner, tables, scope, EvaluationFilters(spans=spans), since, limit, caller):
        found.setdefault((result["trace_id"], result["span_id"]), []).append(result)
    return [
        dataclasses.replace(call, evaluations=tuple(found.get((call.trace_id, call.span_id), ()))) for call in calls
    ]


async def conversation_calls(
    runner: QueryRunner,
    tables: StoreTables,
    scope: Scope,
    window: TimeRange,
    conversation: str,
    limit: int,
    caller: CallerWatch | None = None,
) -> tuple[list[CallRecord], bool]:
    """The calls of one conversation, oldest first; True when there were more than ``limit``."""
    select = Select(tables.calls, scope, window, limit=limit + 1)
    select.where(f"ConversationId = {select.bind(conversation, 'String')}")
    records = await runner.run(select.build(CALL_COLUMNS, order_by=["Timestamp", "SpanId"]), caller)
    return [call_from_record(record) for record in records[:limit]], len(records) > limit
