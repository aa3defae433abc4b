"""DDL for the log and metric tables, in the contrib clickhouseexporter's layout.

``otel_logs`` and the five ``otel_metrics_*`` tables (one per metric point
type) have the column names, types, codecs, indexes, partitioning and ORDER BY
the OpenTelemetry Collector contrib exporter creates (its bloom-filter index
variant), so Grafana's ClickHouse plugin and existing queries work on them.
Metric times are ``DateTime`` (whole seconds) there, and so they are here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from exporters.clickhouse.layout import Layout

DEFAULT_LOGS_TABLE = "otel_logs"
MetricKind = Literal["gauge", "sum", "histogram", "exponential_histogram", "summary"]
METRIC_KINDS: tuple[MetricKind, ...] = ("gauge", "sum", "histogram", "exponential_histogram", "summary")
DEFAULT_METRIC_TABLES: dict[MetricKind, str] = {
    "gauge": "otel_metrics_gauge",
    "sum": "otel_metrics_sum",
    "histogram": "otel_metrics_histogram",
    "exponential_histogram": "otel_metrics_exponential_histogram",
    "summary": "otel_metrics_summary",
}

# On a cluster, the records of one trace land on one shard, beside its spans, so GenAI events
# meet their span there; records without a trace spread by time. Both are deterministic, so a
# retried insert splits the same way and each shard drops its repeat.
LOGS_SHARDING_KEY = "if(TraceId = '', cityHash64(Timestamp), cityHash64(TraceId))"
# The points of one series stay together on one shard.
METRICS_SHARDING_KEY = "cityHash64(ServiceName, MetricName, Attributes)"

# Columns the contrib exporter materializes from resource attributes, for filters that skip the map.
MATERIALIZED_RESOURCE_KEYS = (
    "k8s.cluster.name",
    "k8s.container.name",
    "k8s.deployment.name",
    "k8s.namespace.name",
    "k8s.node.name",
    "k8s.pod.name",
    "k8s.pod.uid",
    "deployment.environment.name",
)


@dataclass(frozen=True)
class SignalTables:
    """Names of the log table and of each metric type's table."""

    logs: str = DEFAULT_LOGS_TABLE
    gauge: str = DEFAULT_METRIC_TABLES["gauge"]
    sum: str = DEFAULT_METRIC_TABLES["sum"]
    histogram: str = DEFAULT_METRIC_TABLES["histogram"]
    exponential_histogram: str = DEFAULT_METRIC_TABLES["exponential_histogram"]
    summary: str = DEFAULT_METRIC_TABLES["summary"]

    def metric(self, kind: MetricKind) -> str:
        name: str = getattr(self, kind)
        return name

    @property
    def all(self) -> tuple[str, ...]:
        """Every table, logs first, then the metric tables in METRIC_KINDS order."""
        return (self.logs, *(self.metric(kind) for kind in METRIC_KINDS))


def _materialized_columns() -> str:
    return "".join(
        f"    `__otel_materialized_{key}` LowCardinality(String) "
        f"MATERIALIZED ResourceAttributes['{key}'] CODEC(ZSTD(1)),\n"
        for key in MATERIALIZED_RESOURCE_KEYS
    )


def create_logs_table_sql(layout: Layout, table: str) -> str:
    ttl = layout.ttl("toDateTime(Timestamp)")
    return layout.create_table(
        table,
        f"""(
    Timestamp DateTime64(9) CODEC(Delta(8), ZSTD(1)),
    TraceId String CODEC(ZSTD(1)),
    SpanId String CODEC(ZSTD(1)),
    TraceFlags UInt8,
    SeverityText LowCardinality(String) CODEC(ZSTD(1)),
    SeverityNumber UInt8,
    ServiceName LowCardinality(String) CODEC(ZSTD(1)),
    Body String CODEC(ZSTD(1)),
    ResourceSchemaUrl LowCardinality(String) CODEC(ZSTD(1)),
    ResourceAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    ScopeSchemaUrl LowCardinality(String) CODEC(ZSTD(1)),
    ScopeName String CODEC(ZSTD(1)),
    ScopeVersion LowCardinality(String) CODEC(ZSTD(1)),
    ScopeAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    LogAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    EventName String CODEC(ZSTD(1)),
{_materialized_columns()}    INDEX idx_trace_id TraceId TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_res_attr_key mapKeys(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_res_attr_value mapValues(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_scope_attr_key mapKeys(ScopeAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_scope_attr_value mapValues(ScopeAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_log_attr_key mapKeys(LogAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_log_attr_value mapValues(LogAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_lower_body lower(Body) TYPE tokenbf_v1(32768, 3, 0) GRANULARITY 8
) {layout.engine_clause()}
PARTITION BY toDate(Timestamp)
ORDER BY (toStartOfFiveMinutes(Timestamp), ServiceName, Timestamp)
{ttl}
{layout.settings_clause()}""",
    )


_EXEMPLARS = """    Exemplars Nested (
        FilteredAttributes Map(LowCardinality(String), String),
        TimeUnix DateTime,
        Value Float64,
        SpanId String,
        TraceId String
    ) CODEC(ZSTD(1)),
"""
_HISTOGRAM_TAIL = """    Flags UInt32 CODEC(ZSTD(1)),
    Min Float64 CODEC(ZSTD(1)),
    Max Float64 CODEC(ZSTD(1)),
    AggregationTemporality Int32 CODEC(ZSTD(1)),
"""
# The columns after StartTimeUnix and TimeUnix, per point type, in the contrib exporter's order.
_POINT_COLUMNS: dict[MetricKind, str] = {
    "gauge": """    Value Float64 CODEC(ZSTD(1)),
    Flags UInt32 CODEC(ZSTD(1)),
"""
    + _EXEMPLARS,
    "sum": """    Value Float64 CODEC(ZSTD(1)),
    Flags UInt32 CODEC(ZSTD(1)),
"""
    + _EXEMPLARS
    + """    AggregationTemporality Int32 CODEC(ZSTD(1)),
    IsMonotonic Boolean CODEC(Delta, ZSTD(1)),
""",
    "histogram": """    Count UInt64 CODEC(Delta, ZSTD(1)),
    Sum Float64 CODEC(ZSTD(1)),
    BucketCounts Array(UInt64) CODEC(ZSTD(1)),
    ExplicitBounds Array(Float64) CODEC(ZSTD(1)),
"""
    + _EXEMPLARS
    + _HISTOGRAM_TAIL,
    "exponential_histogram": """    Count UInt64 CODEC(Delta, ZSTD(1)),
    Sum Float64 CODEC(ZSTD(1)),
    Scale Int32 CODEC(ZSTD(1)),
    ZeroCount UInt64 CODEC(ZSTD(1)),
    PositiveOffset Int32 CODEC(ZSTD(1)),
    PositiveBucketCounts Array(UInt64) CODEC(ZSTD(1)),
    NegativeOffset Int32 CODEC(ZSTD(1)),
    NegativeBucketCounts Array(UInt64) CODEC(ZSTD(1)),
"""
    + _EXEMPLARS
    + _HISTOGRAM_TAIL,
    "summary": """    Count UInt64 CODEC(Delta, ZSTD(1)),
    Sum Float64 CODEC(ZSTD(1)),
    ValueAtQuantiles Nested (
        Quantile Float64,
        Value Float64
    ) CODEC(ZSTD(1)),
    Flags UInt32 CODEC(ZSTD(1)),
""",
}


def create_metric_table_sql(layout: Layout, kind: MetricKind, table: str) -> str:
    ttl = layout.ttl("toDateTime(TimeUnix)")
    return layout.create_table(
        table,
        f"""(
    ResourceAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    ResourceSchemaUrl String CODEC(ZSTD(1)),
    ScopeName String CODEC(ZSTD(1)),
    ScopeVersion String CODEC(ZSTD(1)),
    ScopeAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    ScopeDroppedAttrCount UInt32 CODEC(ZSTD(1)),
    ScopeSchemaUrl String CODEC(ZSTD(1)),
    ServiceName LowCardinality(String) CODEC(ZSTD(1)),
    MetricName LowCardinality(String) CODEC(ZSTD(1)),
    MetricDescription String CODEC(ZSTD(1)),
    MetricUnit String CODEC(ZSTD(1)),
    Attributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    StartTimeUnix DateTime CODEC(Delta, ZSTD(1)),
    TimeUnix DateTime CODEC(Delta, ZSTD(1)),
{_POINT_COLUMNS[kind]}    INDEX idx_res_attr_key mapKeys(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_res_attr_value mapValues(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_scope_attr_key mapKeys(ScopeAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_scope_attr_value mapValues(ScopeAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_attr_key mapKeys(Attributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_attr_value mapValues(Attributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_time_minmax TimeUnix TYPE minmax GRANULARITY 1
) {layout.engine_clause()}
PARTITION BY toDate(TimeUnix)
ORDER BY (ServiceName, MetricName, toStartOfHour(TimeUnix), cityHash64(Attributes), TimeUnix)
{ttl}
{layout.settings_clause()}""",
    )


def statements(layout: Layout, tables: SignalTables) -> list[str]:
    """The CREATE statements of the log and metric tables (with their Distributed fronts on a cluster)."""
    result = [create_logs_table_sql(layout, tables.logs), *layout.create_distributed(tables.logs, LOGS_SHARDING_KEY)]
    for kind in METRIC_KINDS:
        table = tables.metric(kind)
        result.append(create_metric_table_sql(layout, kind, table))
        result.extend(layout.create_distributed(table, METRICS_SHARDING_KEY))
    return result


def expected_tables(layout: Layout, tables: SignalTables) -> tuple[str, ...]:
    """Every table of the log and metric schema, in creation order."""
    return tuple(name for table in tables.all for name in layout.table_names(table))
