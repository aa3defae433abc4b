"""Evaluation results: rows of ``genai_evaluations`` (one per ``gen_ai.evaluation.result`` record), rolled up by hour.

``evaluation_hours`` is the hourly roll-up by (hour, dimension, model, service): results, scored
results and their mean score, passed and failed, errors. ``worst_evaluations`` lists the lowest
scores first (failed before passed, errors last), for the console's "worst calls first". The model
is the evaluated call's responding model, else its requested one; a ``model`` filter matches either.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from collector.extensions.api.params import format_timestamp
from collector.extensions.api.query.runner import QueryRunner, Record
from collector.extensions.api.query.sql import Scope, Select, Table, TimeRange
from collector.extensions.api.query.tables import StoreTables
from collector.extensions.caller import CallerWatch

MODEL = "if(ResponseModel != '', ResponseModel, RequestModel)"
HOUR_COLUMNS: tuple[str, ...] = (
    "toUnixTimestamp(toStartOfHour(Timestamp)) AS HourSeconds",
    "EvaluationName",
    f"{MODEL} AS Model",
    "ServiceName",
    "count() AS Results",
    "countIf(ScoreValue IS NOT NULL) AS Scored",
    "avgIf(ScoreValue, ScoreValue IS NOT NULL) AS MeanScore",
    "countIf(Passed = true) AS PassedCount",
    "countIf(Passed = false) AS FailedCount",
    "countIf(ErrorType != '') AS Errors",
)
WORST_COLUMNS: tuple[str, ...] = (
    "toUnixTimestamp64Nano(Timestamp) AS TimeNanos",
    "TraceId",
    "SpanId",
    "ServiceName",
    "EvaluationName",
    f"{MODEL} AS Model",
    "ScoreValue",
    "ScoreLabel",
    "Passed",
    "Explanation",
    "Evaluator",
    "ErrorType",
)
NANOS_PER_SECOND = 1_000_000_000


@dataclass(frozen=True)
class EvaluationFilters:
    dimension: str | None = None
    service: str | None = None
    model: str | None = None
    trace_id: str | None = None
    # The evaluated spans, as (trace id, span id) hex: the results of a page of calls.
    spans: tuple[tuple[str, str], ...] = ()


def _conditions(select: Select, filters: EvaluationFilters) -> list[str]:
    bind = select.bind
    conditions = [
        f"{column} = {bind(value, 'String')}"
        for column, value in (
            ("EvaluationName", filters.dimension),
            ("ServiceName", filters.service),
            ("TraceId", filters.trace_id),
        )
        if value is not None
    ]
    if filters.model is not None:
        model = bind(filters.model, "String")
        conditions.append(f"RequestModel = {model} OR ResponseModel = {model}")
    if filters.spans:
        # The trace ids alone first: the table's bloom filter on TraceId skips the granules without them.
        traces = sorted({trace for trace, _ in filters.spans})
        conditions.append(f"TraceId IN {bind(traces, 'Array(String)')}")
        conditions.append(f"(TraceId, SpanId) IN {bind(list(filters.spans), 'Array(Tuple(String, String))')}")
    return conditions


def hour_json(record: Record) -> dict[str, Any]:
    decided = int(record["PassedCount"]) + int(record["FailedCount"])
    scored = int(record["Scored"])
    return {
        "hour": format_timestamp(int(record["HourSeconds"]) * NANOS_PER_SECOND),
        "dimension": record["EvaluationName"],
        "model": record["Model"],
        "service": record["ServiceName"],
        "results": int(record["Results"]),
        "scored": scored,
        "mean_score": float(record["MeanScore"]) if scored else None,
        "passed": int(record["PassedCount"]),
        "failed": int(record["FailedCount"]),
        "pass_rate": int(record["PassedCount"]) / decided if decided else None,
        "errors": int(record["Errors"]),
    }


def result_json(record: Record) -> dict[str, Any]:
    return {
        "time": format_timestamp(int(record["TimeNanos"])),
        "trace_id": record["TraceId"],
        "span_id": record["SpanId"],
        "service": record["ServiceName"],
        "dimension": record["EvaluationName"],
        "model": record["Model"],
        "score": record["ScoreValue"],
        "label": record["ScoreLabel"] or None,
        "passed": record["Passed"],
        "explanation": record["Explanation"],
        "evaluator": record["Evaluator"],
        "error_type": record["ErrorType"] or None,
    }


async def evaluation_hours(
    runner: QueryRunner,
    table: Table,
    scope: Scope,
    window: TimeRange,
    filters: EvaluationFilters,
    limit: int,
    caller: CallerWatch | None = None,
) -> tuple[list[dict[str, Any]], bool]:
    """The hourly roll-up, oldest hour first; True when there were more than ``limit`` rows."""
    select = Select(table, scope, window, limit=limit + 1)
    select.where(*_conditions(select, filters))
    group = ["HourSeconds", "EvaluationName", "Model", "ServiceName"]
    records = await runner.run(select.build(HOUR_COLUMNS, group_by=group, order_by=group), caller)
    return [hour_json(record) for record in records[:limit]], len(records) > limit


async def worst_evaluations(
    runner: QueryRunner,
    table: Table,
    scope: Scope,
    window: TimeRange,
    filters: EvaluationFilters,
    limit: int,
    caller: CallerWatch | None = None,
) -> list[dict[str, Any]]:
    """At most ``limit`` results, worst first: failed before passed, lowest score first, errors after scores."""
    select = Select(table, scope, window, limit=limit)
    select.where(*_conditions(select, filters))
    order = ["ErrorType != ''", "Passed = true", "ScoreValue ASC NULLS LAST", "Timestamp DESC", "SpanId"]
    records = await runner.run(select.build(WORST_COLUMNS, order_by=order), caller)
    return [result_json(record) for record in records]


async def evaluations_since(
    runner: QueryRunner,
    tables: StoreTables,
    scope: Scope,
    filters: EvaluationFilters,
    since_ns: int,
    limit: int,
    caller: CallerWatch | None = None,
) -> list[dict[str, Any]]:
    """At most ``limit`` results meeting ``filters``, worst first, from ``since_ns`` (when the evaluated calls
    started) until now, since a call is evaluated after it ends (an agent run once its trace went idle, a
    backfill days later). None on a store without the evaluations table (traces only, create_schema off)."""
    if not tables.has_signal_tables:
        return []
    window = TimeRange(since_ns, time.time_ns() + 1)
    return await worst_evaluations(runner, tables.evaluations, scope, window, filters, limit, caller)
