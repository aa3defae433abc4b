"""DDL for the tables the clickhouse exporter writes, in the contrib clickhouseexporter's layout.

``otel_traces`` and the ``otel_traces_trace_id_ts`` lookup table with its
materialized view have the same column names, types, codecs, indexes,
partitioning and ORDER BY as the OpenTelemetry Collector contrib exporter
creates, so Grafana's ClickHouse plugin and existing otel_traces queries work.
"""

from __future__ import annotations

from dataclasses import dataclass

SECONDS_PER_DAY = 86_400
SECONDS_PER_HOUR = 3_600
SECONDS_PER_MINUTE = 60


def quote_identifier(name: str) -> str:
    """A ClickHouse identifier in backticks, with embedded backticks escaped."""
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def ttl_clause(ttl_seconds: float, time_expression: str) -> str:
    """``TTL <expr> + toIntervalX(n)`` in the largest whole unit, or nothing when ttl is 0."""
    seconds = int(ttl_seconds)
    if seconds <= 0:
        return ""
    for unit_seconds, function in (
        (SECONDS_PER_DAY, "toIntervalDay"),
        (SECONDS_PER_HOUR, "toIntervalHour"),
        (SECONDS_PER_MINUTE, "toIntervalMinute"),
    ):
        if seconds % unit_seconds == 0:
            return f"TTL {time_expression} + {function}({seconds // unit_seconds})"
    return f"TTL {time_expression} + toIntervalSecond({seconds})"


@dataclass(frozen=True)
class TraceTables:
    """Names of the trace tables in one database."""

    database: str
    traces: str

    @property
    def trace_id_ts(self) -> str:
        return f"{self.traces}_trace_id_ts"

    @property
    def trace_id_ts_mv(self) -> str:
        return f"{self.traces}_trace_id_ts_mv"

    def qualified(self, table: str) -> str:
        return f"{quote_identifier(self.database)}.{quote_identifier(table)}"

    def all(self) -> tuple[str, ...]:
        """Every table and view the schema consists of, in creation order."""
        return (self.traces, self.trace_id_ts, self.trace_id_ts_mv)


def create_database_sql(database: str) -> str:
    return f"CREATE DATABASE IF NOT EXISTS {quote_identifier(database)}"


def create_traces_table_sql(tables: TraceTables, ttl_seconds: float) -> str:
    ttl = ttl_clause(ttl_seconds, "toDateTime(Timestamp)")
    return f"""CREATE TABLE IF NOT EXISTS {tables.qualified(tables.traces)} (
    Timestamp DateTime64(9) CODEC(Delta(8), ZSTD(1)),
    TraceId String CODEC(ZSTD(1)),
    SpanId String CODEC(ZSTD(1)),
    ParentSpanId String CODEC(ZSTD(1)),
    TraceState String CODEC(ZSTD(1)),
    SpanName LowCardinality(String) CODEC(ZSTD(1)),
    SpanKind LowCardinality(String) CODEC(ZSTD(1)),
    ServiceName LowCardinality(String) CODEC(ZSTD(1)),
    ResourceAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    ScopeName String CODEC(ZSTD(1)),
    ScopeVersion String CODEC(ZSTD(1)),
    SpanAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    Duration UInt64 CODEC(T64, ZSTD(1)),
    StatusCode LowCardinality(String) CODEC(ZSTD(1)),
    StatusMessage String CODEC(ZSTD(1)),
    Events Nested (
        Timestamp DateTime64(9),
        Name LowCardinality(String),
        Attributes Map(LowCardinality(String), String)
    ) CODEC(ZSTD(1)),
    Links Nested (
        TraceId String,
        SpanId String,
        TraceState String,
        Attributes Map(LowCardinality(String), String)
    ) CODEC(ZSTD(1)),
    ResourceAttributeItems Array(String) ALIAS arrayMap(kv -> concat(kv.1, '=', kv.2), CAST(ResourceAttributes, 'Array(Tuple(String, String))')),
    SpanAttributeItems Array(String) ALIAS arrayMap(kv -> concat(kv.1, '=', kv.2), CAST(SpanAttributes, 'Array(Tuple(String, String))')),
    INDEX idx_trace_id TraceId TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_res_attr_key mapKeys(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_res_attr_value mapValues(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_span_attr_key mapKeys(SpanAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_span_attr_value mapValues(SpanAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_duration Duration TYPE minmax GRANULARITY 1,
    INDEX idx_lower_span_name lower(SpanName) TYPE tokenbf_v1(32768, 3, 0) GRANULARITY 8
) ENGINE = MergeTree()
PARTITION BY toDate(Timestamp)
PRIMARY KEY (ServiceName, SpanName, toDateTime(Timestamp))
ORDER BY (ServiceName, SpanName, toDateTime(Timestamp), Timestamp)
{ttl}
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1"""


def create_trace_id_ts_table_sql(tables: TraceTables, ttl_seconds: float) -> str:
    ttl = ttl_clause(ttl_seconds, "toDateTime(Start)")
    return f"""CREATE TABLE IF NOT EXISTS {tables.qualified(tables.trace_id_ts)} (
    TraceId String CODEC(ZSTD(1)),
    Start SimpleAggregateFunction(min, DateTime) CODEC(ZSTD(1)),
    End SimpleAggregateFunction(max, DateTime) CODEC(ZSTD(1))
) ENGINE = AggregatingMergeTree()
PARTITION BY toStartOfWeek(Start)
ORDER BY (TraceId)
{ttl}
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1"""


def create_trace_id_ts_view_sql(tables: TraceTables) -> str:
    return f"""CREATE MATERIALIZED VIEW IF NOT EXISTS {tables.qualified(tables.trace_id_ts_mv)}
TO {tables.qualified(tables.trace_id_ts)}
AS SELECT
    TraceId,
    min(Timestamp) AS Start,
    max(Timestamp) AS End
FROM {tables.qualified(tables.traces)}
WHERE TraceId != ''
GROUP BY TraceId"""


def schema_statements(tables: TraceTables, ttl_seconds: float) -> list[str]:
    """Every statement that creates the trace schema, in order; each is idempotent."""
    return [
        create_database_sql(tables.database),
        create_traces_table_sql(tables, ttl_seconds),
        create_trace_id_ts_table_sql(tables, ttl_seconds),
        create_trace_id_ts_view_sql(tables),
    ]
