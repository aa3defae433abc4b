"""The trace schema: contrib clickhouseexporter's layout, created in chDB, TTLs, and create_schema: false."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from exporters.clickhouse.config import ClickHouseConfig
from exporters.clickhouse.layout import Layout, ttl_clause
from exporters.clickhouse.schema import TraceTables, create_traces_table_sql
from exporters.clickhouse.store import ClickHouseStore, StoreError

# Column names and types of the contrib exporter's otel_traces (sqltemplates/traces_table.sql).
CONTRIB_OTEL_TRACES = [
    ("Timestamp", "DateTime64(9)"),
    ("TraceId", "String"),
    ("SpanId", "String"),
    ("ParentSpanId", "String"),
    ("TraceState", "String"),
    ("SpanName", "LowCardinality(String)"),
    ("SpanKind", "LowCardinality(String)"),
    ("ServiceName", "LowCardinality(String)"),
    ("ResourceAttributes", "Map(LowCardinality(String), String)"),
    ("ScopeName", "String"),
    ("ScopeVersion", "String"),
    ("SpanAttributes", "Map(LowCardinality(String), String)"),
    ("Duration", "UInt64"),
    ("StatusCode", "LowCardinality(String)"),
    ("StatusMessage", "String"),
    ("Events.Timestamp", "Array(DateTime64(9))"),
    ("Events.Name", "Array(LowCardinality(String))"),
    ("Events.Attributes", "Array(Map(LowCardinality(String), String))"),
    ("Links.TraceId", "Array(String)"),
    ("Links.SpanId", "Array(String)"),
    ("Links.TraceState", "Array(String)"),
    ("Links.Attributes", "Array(Map(LowCardinality(String), String))"),
    ("ResourceAttributeItems", "Array(String)"),
    ("SpanAttributeItems", "Array(String)"),
]


@pytest.mark.parametrize(
    ("seconds", "clause"),
    [
        (0, ""),
        (72 * 3600, "TTL toDateTime(Timestamp) + toIntervalDay(3)"),
        (5 * 3600, "TTL toDateTime(Timestamp) + toIntervalHour(5)"),
        (90 * 60, "TTL toDateTime(Timestamp) + toIntervalMinute(90)"),
        (45, "TTL toDateTime(Timestamp) + toIntervalSecond(45)"),
    ],
)
def test_ttl_uses_the_largest_whole_unit(seconds: int, clause: str) -> None:
    assert ttl_clause(seconds, "toDateTime(Timestamp)") == clause


def test_created_tables_match_the_contrib_layout(chdb_path: Path) -> None:
    store = ClickHouseStore(ClickHouseConfig(endpoint=f"chdb://{chdb_path}", ttl=72 * 3600), logging.getLogger("t"))  # type: ignore[arg-type]
    store.start()
    try:
        columns = store.query(
            "SELECT name, type FROM system.columns "
            "WHERE database = 'default' AND table = 'otel_traces' ORDER BY position"
        ).rows
        lookup = store.query(
            "SELECT name, type FROM system.columns WHERE table = 'otel_traces_trace_id_ts' ORDER BY position"
        ).rows
        table = store.query(
            "SELECT engine, partition_key, sorting_key, primary_key FROM system.tables WHERE name = 'otel_traces'"
        ).rows[0]
        lookup_engine = store.query("SELECT engine FROM system.tables WHERE name = 'otel_traces_trace_id_ts'").rows[0]
        view = store.query("SELECT engine FROM system.tables WHERE name = 'otel_traces_trace_id_ts_mv'").rows[0]
        indexes = store.query(
            "SELECT name, type FROM system.data_skipping_indices WHERE table = 'otel_traces' ORDER BY name"
        ).rows
        create = store.query("SELECT create_table_query FROM system.tables WHERE name = 'otel_traces'").rows[0][0]
    finally:
        store.close()
    assert [tuple(c) for c in columns] == CONTRIB_OTEL_TRACES
    assert [tuple(c) for c in lookup] == [
        ("TraceId", "String"),
        ("Start", "SimpleAggregateFunction(min, DateTime)"),
        ("End", "SimpleAggregateFunction(max, DateTime)"),
    ]
    assert table == [
        "MergeTree",
        "toDate(Timestamp)",
        "ServiceName, SpanName, toDateTime(Timestamp), Timestamp",
        "ServiceName, SpanName, toDateTime(Timestamp)",
    ]
    assert lookup_engine == ["AggregatingMergeTree"] and view == ["MaterializedView"]
    assert [tuple(i) for i in indexes] == [
        ("idx_duration", "minmax"),
        ("idx_lower_span_name", "tokenbf_v1"),
        ("idx_res_attr_key", "bloom_filter"),
        ("idx_res_attr_value", "bloom_filter"),
        ("idx_span_attr_key", "bloom_filter"),
        ("idx_span_attr_value", "bloom_filter"),
        ("idx_trace_id", "bloom_filter"),
    ]
    assert "TTL toDateTime(Timestamp) + toIntervalDay(3)" in create


def test_schema_creation_is_idempotent(chdb_path: Path) -> None:
    for _ in range(2):
        store = ClickHouseStore(ClickHouseConfig(endpoint=f"chdb://{chdb_path}"), logging.getLogger("t"))
        store.start()
        store.close()


TRACE_TABLES = (
    "default.otel_traces, default.otel_traces_trace_id_ts, default.otel_traces_trace_id_ts_mv, "
    "default.genai_calls, default.genai_findings, default.genai_calls_hourly, "
    "default.otel_traces_genai_calls_mv, default.otel_traces_genai_findings_mv, default.genai_calls_hourly_mv"
)
SIGNAL_TABLES = (
    "default.otel_logs, default.otel_metrics_gauge, default.otel_metrics_sum, default.otel_metrics_histogram, "
    "default.otel_metrics_exponential_histogram, default.otel_metrics_summary, "
    "default.genai_evaluations, default.otel_logs_genai_evaluations_mv"
)


@pytest.mark.parametrize(
    ("serves_logs_or_metrics", "missing"),
    [(False, TRACE_TABLES), (True, f"{TRACE_TABLES}, {SIGNAL_TABLES}")],
    ids=["spans only", "logs or metrics too"],
)
def test_create_schema_off_names_the_missing_tables(
    chdb_path: Path, serves_logs_or_metrics: bool, missing: str
) -> None:
    store = ClickHouseStore(
        ClickHouseConfig(endpoint=f"chdb://{chdb_path}", create_schema=False), logging.getLogger("t")
    )
    store.serves_logs_or_metrics = serves_logs_or_metrics
    with pytest.raises(StoreError) as error:
        store.start()
    store.close()
    assert str(error.value) == f"create_schema is off and these tables are missing: {missing}"


def test_identifiers_are_quoted() -> None:
    assert create_traces_table_sql(Layout("db"), TraceTables("spans")).startswith(
        "CREATE TABLE IF NOT EXISTS `db`.`spans` ("
    )
