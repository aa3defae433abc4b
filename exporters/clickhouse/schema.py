"""DDL for the trace tables, in the contrib clickhouseexporter's layout, and the whole schema's statement list.

The whole schema is the trace tables, the GenAI tables derived from them, the
log and metric tables (exporters.clickhouse.signal_schema) and the evaluation
results derived from the logs (exporters.clickhouse.evaluation_schema).

``otel_traces`` and the ``otel_traces_trace_id_ts`` lookup table with its
materialized view have the same column names, types, codecs, indexes,
partitioning and ORDER BY as the OpenTelemetry Collector contrib exporter
creates, so Grafana's ClickHouse plugin and existing otel_traces queries work.
The GenAI tables (exporters.clickhouse.genai_schema) are derived from them.
"""

from __future__ import annotations

from dataclasses import dataclass

from exporters.clickhouse import evaluation_schema, genai_schema, signal_schema
from exporters.clickhouse.layout import Layout

# Spans of one trace land on one shard, so per-trace views see whole traces.
TRACE_SHARDING_KEY = "cityHash64(TraceId)"


@dataclass(frozen=True)
class TraceTables:
    """Names of the trace tables (logical names: a cluster adds local tables behind them)."""

    traces: str

    @property
    def trace_id_ts(self) -> str:
        return f"{self.traces}_trace_id_ts"

    @property
    def trace_id_ts_mv(self) -> str:
        return f"{self.traces}_trace_id_ts_mv"


def create_traces_table_sql(layout: Layout, tables: TraceTables) -> str:
    ttl = layout.ttl("toDateTime(Timestamp)")
    return layout.create_table(
        tables.traces,
        f"""(
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
) {layout.engine_clause()}
PARTITION BY toDate(Timestamp)
PRIMARY KEY (ServiceName, SpanName, toDateTime(Timestamp))
ORDER BY (ServiceName, SpanName, toDateTime(Timestamp), Timestamp)
{ttl}
{layout.settings_clause()}""",
    )


def create_trace_id_ts_table_sql(layout: Layout, tables: TraceTables) -> str:
    ttl = layout.ttl("toDateTime(Start)")
    return layout.create_table(
        tables.trace_id_ts,
        f"""(
    TraceId String CODEC(ZSTD(1)),
    Start SimpleAggregateFunction(min, DateTime) CODEC(ZSTD(1)),
    End SimpleAggregateFunction(max, DateTime) CODEC(ZSTD(1))
) {layout.engine_clause(aggregating=True)}
PARTITION BY toStartOfWeek(Start)
ORDER BY (TraceId)
{ttl}
{layout.settings_clause()}""",
    )


def create_trace_id_ts_view_sql(layout: Layout, tables: TraceTables) -> str:
    return layout.create_view(
        tables.trace_id_ts_mv,
        tables.trace_id_ts,
        f"""AS SELECT
    TraceId,
    min(Timestamp) AS Start,
    max(Timestamp) AS End
FROM {layout.qualified_storage(tables.traces)}
WHERE TraceId != ''
GROUP BY TraceId""",
    )


def storage_tables(tables: TraceTables, signals: signal_schema.SignalTables | None = None) -> tuple[str, ...]:
    """The logical tables that hold rows (inserted or filled by views), each with its own deduplication log."""
    genai = genai_schema.GenAITables(tables.traces)
    signals = signals or signal_schema.SignalTables()
    evaluations = evaluation_schema.EvaluationTables(signals.logs).evaluations
    return (
        tables.traces,
        tables.trace_id_ts,
        genai.calls,
        genai.findings,
        genai.calls_hourly,
        *signals.all,
        evaluations,
    )


def schema_statements(
    layout: Layout, tables: TraceTables, signals: signal_schema.SignalTables | None = None
) -> list[str]:
    """Every statement that creates the schema (trace, GenAI, log, metric and evaluation tables), in order; each is
    idempotent.

    The last ones give tables created by an older version the deduplication window.
    """
    genai = genai_schema.GenAITables(tables.traces)
    signals = signals or signal_schema.SignalTables()
    return [
        layout.create_database(),
        create_traces_table_sql(layout, tables),
        *layout.create_distributed(tables.traces, TRACE_SHARDING_KEY),
        create_trace_id_ts_table_sql(layout, tables),
        *layout.create_distributed(tables.trace_id_ts, TRACE_SHARDING_KEY),
        create_trace_id_ts_view_sql(layout, tables),
        *genai_schema.statements(layout, genai),
        *signal_schema.statements(layout, signals),
        *evaluation_schema.statements(layout, evaluation_schema.EvaluationTables(signals.logs)),
        *(statement for table in storage_tables(tables, signals) for statement in layout.upgrade_settings(table)),
    ]


def expected_tables(
    layout: Layout, tables: TraceTables, signals: signal_schema.SignalTables | None = None
) -> tuple[str, ...]:
    """The tables and views the schema consists of, in creation order: the traces' and the GenAI ones, and
    the log, metric and evaluation tables when ``signals`` names them."""
    return (
        *layout.table_names(tables.traces),
        *layout.table_names(tables.trace_id_ts),
        tables.trace_id_ts_mv,
        *genai_schema.expected_tables(layout, genai_schema.GenAITables(tables.traces)),
        *(signal_schema.expected_tables(layout, signals) if signals is not None else ()),
        *(
            evaluation_schema.expected_tables(layout, evaluation_schema.EvaluationTables(signals.logs))
            if signals is not None
            else ()
        ),
    )
