"""Call statistics: counts, errors, tokens by type, cost, and duration and time-to-first-chunk percentiles.

Grouped by any of model (the requested model), provider, service, tenant and
operation, and cut into buckets of a minute, 5 or 15 minutes, an hour or a day
(UTC), or one row per group.

Two sources give the same numbers: the hourly rollup ``genai_calls_hourly``
(a few rows per hour, whatever the traffic) answers whenever it can: the
window starts and ends on whole hours and neither the grouping nor the
filters name the operation, which the rollup does not keep, and the buckets
are hours or days. Otherwise
``genai_calls`` is aggregated directly. The rollup keeps the percentiles as
``quantilesState`` of the same quantiles ``quantiles`` computes here, so both
sources agree exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from collector.extensions.api.params import NANOS_PER_MILLISECOND, NANOS_PER_SECOND, format_timestamp
from collector.extensions.api.query.runner import QueryRunner, Record
from collector.extensions.api.query.sql import Scope, Select, TimeRange
from collector.extensions.api.query.tables import StoreTables
from collector.extensions.caller import CallerWatch
from exporters.clickhouse.genai_schema import ROLLUP_QUANTILES

NANOS_PER_HOUR = 3600 * NANOS_PER_SECOND
Bucket = Literal["minute", "5minutes", "15minutes", "hour", "day"]
# Bucket name → the ClickHouse function that takes a time to the start of its bucket (in UTC).
BUCKET_FUNCTIONS: dict[str, str] = {
    "minute": "toStartOfMinute",
    "5minutes": "toStartOfFiveMinutes",
    "15minutes": "toStartOfFifteenMinutes",
    "hour": "toStartOfHour",
    "day": "toStartOfDay",
}
# Buckets the hourly rollup can fill: whole hours and days.
ROLLUP_BUCKETS = frozenset({"hour", "day"})
Source = Literal["rollup", "calls"]
# Group name → column in genai_calls; the rollup has every one of them but operation.
GROUP_COLUMNS: dict[str, str] = {
    "model": "RequestModel",
    "provider": "Provider",
    "service": "ServiceName",
    "tenant": "Tenant",
    "operation": "Operation",
}
ROLLUP_GROUPS = frozenset(GROUP_COLUMNS) - {"operation"}
PERCENTILES: dict[str, int] = {f"p{round(q * 100)}": ROLLUP_QUANTILES.index(q) for q in (0.5, 0.95, 0.99)}
_QUANTILES = ", ".join(str(q) for q in ROLLUP_QUANTILES)
TOKEN_COLUMNS = {
    "input": "InputTokens",
    "output": "OutputTokens",
    "cache_read": "CacheReadTokens",
    "cache_creation": "CacheCreationTokens",
    "reasoning": "ReasoningTokens",
}


@dataclass(frozen=True)
class StatsQuery:
    window: TimeRange
    group_by: tuple[str, ...] = ()
    bucket: Bucket | None = None
    # Equality filters by group name (model, provider, service, tenant, operation).
    filters: tuple[tuple[str, str], ...] = ()

    @property
    def source(self) -> Source:
        aligned = self.window.start_ns % NANOS_PER_HOUR == 0 and self.window.end_ns % NANOS_PER_HOUR == 0
        names = {*self.group_by, *(name for name, _ in self.filters)}
        whole_buckets = self.bucket is None or self.bucket in ROLLUP_BUCKETS
        return "rollup" if aligned and whole_buckets and names <= ROLLUP_GROUPS else "calls"


@dataclass(frozen=True)
class StatsAnswer:
    source: Source
    rows: list[dict[str, Any]]
    truncated: bool


def _bucket_expression(bucket: Bucket, time_column: str) -> str:
    return f"{BUCKET_FUNCTIONS[bucket]}({time_column}, 'UTC')"


def _measures(source: Source) -> list[str]:
    if source == "rollup":
        return [
            "sum(Calls) AS Calls",
            "sum(Errors) AS Errors",
            *(f"sum({column}) AS {column}" for column in TOKEN_COLUMNS.values()),
            "sum(Cost) AS Cost",
            f"quantilesMerge({_QUANTILES})(DurationQuantiles) AS DurationQuantiles",
            f"quantilesMerge({_QUANTILES})(TimeToFirstChunkQuantiles) AS TimeToFirstChunkQuantiles",
        ]
    return [
        "count() AS Calls",
        "countIf(StatusCode = 'Error') AS Errors",
        *(f"sum({column}) AS {column}" for column in TOKEN_COLUMNS.values()),
        "sum(Cost) AS Cost",
        f"quantiles({_QUANTILES})(Duration) AS DurationQuantiles",
        f"quantilesIf({_QUANTILES})(assumeNotNull(TimeToFirstChunk), TimeToFirstChunk IS NOT NULL)"
        " AS TimeToFirstChunkQuantiles",
    ]


def _percentiles(values: list[float], scale: float) -> dict[str, float | None]:
    return {
        name: (None if not values or math.isnan(values[index]) else values[index] * scale)
        for name, index in PERCENTILES.items()
    }


def _row(record: Record, query: StatsQuery) -> dict[str, Any]:
    row: dict[str, Any] = {}
    if query.bucket is not None:
        row["bucket"] = format_timestamp(int(record["BucketSeconds"]) * NANOS_PER_SECOND)
    for name in query.group_by:
        row[name] = record[GROUP_COLUMNS[name]]
    row.update(
        calls=int(record["Calls"]),
        errors=int(record["Errors"]),
        tokens={name: int(record[column]) for name, column in TOKEN_COLUMNS.items()},
        cost_usd=float(record["Cost"]),
        duration_ms=_percentiles(record["DurationQuantiles"], 1 / NANOS_PER_MILLISECOND),
        time_to_first_chunk_ms=_percentiles(record["TimeToFirstChunkQuantiles"], 1000.0),
    )
    return row


async def call_stats(
    runner: QueryRunner,
    tables: StoreTables,
    scope: Scope,
    query: StatsQuery,
    max_rows: int,
    caller: CallerWatch | None = None,
) -> StatsAnswer:
    """The statistics ``query`` asks for, from the rollup when it can answer (see the module docstring)."""
    source = query.source
    table = tables.calls_hourly if source == "rollup" else tables.calls
    select = Select(table, scope, query.window, limit=max_rows + 1)
    select.where(*(f"{GROUP_COLUMNS[name]} = {select.bind(value, 'String')}" for name, value in query.filters))
    keys = [GROUP_COLUMNS[name] for name in query.group_by]
    columns = list(keys)
    if query.bucket is not None:
        bucket = _bucket_expression(query.bucket, table.time_column)
        columns.insert(0, f"toUnixTimestamp({bucket}) AS BucketSeconds")
        keys.insert(0, "BucketSeconds")
    built = select.build([*columns, *_measures(source)], group_by=keys, order_by=keys)
    if not keys:
        # One row over the whole window, even with no calls in it.
        built = select.build(_measures(source))
    records = await runner.run(built, caller)
    rows = [_row(record, query) for record in records[:max_rows]]
    return StatsAnswer(source, rows, truncated=len(records) > max_rows)
