"""clickhouse exporter settings: endpoints, identifiers, and passwords that never show."""

from __future__ import annotations

import pytest

from collector.config.decode import decode
from collector.config.problems import ConfigError
from exporters.clickhouse.config import ClickHouseConfig


def _problems(raw: dict[str, object]) -> list[str]:
    with pytest.raises(ConfigError) as error:
        decode(ClickHouseConfig, raw, "exporters.clickhouse")
    return [str(p) for p in error.value.problems]


def test_defaults_are_the_embedded_store_under_data() -> None:
    config = decode(ClickHouseConfig, None, "exporters.clickhouse")
    assert config.is_embedded and config.chdb_path().parts[-2:] == ("data", "clickhouse")
    assert (config.database, config.traces_table_name, config.create_schema) == ("default", "otel_traces", True)


def test_server_endpoint_is_accepted() -> None:
    config = decode(ClickHouseConfig, {"endpoint": "https://ch.internal:8443", "password": "pw"}, "e")
    assert not config.is_embedded


def test_bad_endpoint_hides_the_password() -> None:
    assert _problems({"endpoint": "tcp://user:hunter2@ch:9000"}) == [
        'exporters.clickhouse.endpoint: expected chdb://PATH or http(s)://host:port, got "tcp://user:***@ch:9000"'
    ]


def test_identifiers_and_ttl_are_checked() -> None:
    assert _problems({"database": "a-b", "traces_table_name": "x;drop", "ttl": "banana"}) == [
        'exporters.clickhouse.ttl: expected a duration like 72h, got "banana"',
    ]
    assert _problems({"database": "a-b", "traces_table_name": "x;drop"}) == [
        'exporters.clickhouse.database: expected a plain identifier (letters, digits, _), got "a-b"',
        'exporters.clickhouse.traces_table_name: expected a plain identifier (letters, digits, _), got "x;drop"',
    ]


def test_the_password_never_appears_in_repr() -> None:
    config = decode(ClickHouseConfig, {"endpoint": "http://ch:8123", "password": "hunter2"}, "e")
    assert "hunter2" not in repr(config) and "hunter2" not in str(config)
    assert config.password.reveal() == "hunter2"


@pytest.mark.parametrize(
    ("endpoint", "shown"),
    [
        ("http://user:hunter2@[::1:8123", "http://user:***@[::1:8123"),
        ("http://user:hunter2@ch:port", "http://user:***@ch:port"),
        ("http://ch:0", "http://ch:0"),
    ],
)
def test_an_unparseable_server_url_is_one_problem_and_hides_the_password(endpoint: str, shown: str) -> None:
    assert _problems({"endpoint": endpoint}) == [
        f'exporters.clickhouse.endpoint: expected chdb://PATH or http(s)://host:port, got "{shown}"'
    ]


def test_retry_intervals_are_checked() -> None:
    assert _problems({"retry_on_failure": {"initial_interval": "0s", "max_interval": "10s"}}) == [
        "exporters.clickhouse.retry_on_failure.initial_interval: must be more than 0"
    ]
    assert _problems({"retry_on_failure": {"initial_interval": "10s", "max_interval": "1s"}}) == [
        "exporters.clickhouse.retry_on_failure.max_interval: must be at least initial_interval (10s)"
    ]


def test_server_settings_are_refused_on_chdb_one_line_each() -> None:
    assert _problems({"username": "u", "cluster_name": "c", "tls": {"insecure_skip_verify": True}}) == [
        "exporters.clickhouse.username: applies to a ClickHouse server (an http(s):// endpoint), not to chdb://",
        "exporters.clickhouse.tls: applies to a ClickHouse server (an http(s):// endpoint), not to chdb://",
        "exporters.clickhouse.cluster_name: applies to a ClickHouse server (an http(s):// endpoint), not to chdb://",
    ]


def test_engine_compression_and_tls_are_checked() -> None:
    assert _problems(
        {
            "endpoint": "http://ch:8123",
            "compression": "brotli",
            "table_engine": {"name": "Log"},
            "tls": {"ca_file": "/nonexistent/ca.pem"},
        }
    ) == [
        'exporters.clickhouse.compression: expected one of lz4, zstd, gzip, none, got "brotli"',
        "exporters.clickhouse.table_engine.name: "
        'expected one of MergeTree, ReplicatedMergeTree, SharedMergeTree, got "Log"',
        'exporters.clickhouse.tls.ca_file: no such file: "/nonexistent/ca.pem"',
    ]
    assert _problems({"endpoint": "http://ch:8123", "tls": {"insecure_skip_verify": True}}) == [
        "exporters.clickhouse.tls: applies to https:// endpoints only"
    ]


def test_log_and_metric_tables_are_named_as_in_the_contrib_exporter() -> None:
    config = decode(
        ClickHouseConfig,
        {"logs_table_name": "app_logs", "metrics_tables": {"sum": {"name": "app_sums"}}},
        "exporters.clickhouse",
    )
    assert config.signal_tables.all == (
        "app_logs",
        "otel_metrics_gauge",
        "app_sums",
        "otel_metrics_histogram",
        "otel_metrics_exponential_histogram",
        "otel_metrics_summary",
    )


def test_log_and_metric_table_names_are_identifiers_and_distinct() -> None:
    assert _problems(
        {
            "logs_table_name": "otel_traces",
            "metrics_tables": {"gauge": {"name": "a b"}, "summary": {"name": "otel_metrics_sum"}},
        }
    ) == [
        'exporters.clickhouse.logs_table_name: "otel_traces" is already the table of traces_table_name; '
        "each signal needs its own table",
        'exporters.clickhouse.metrics_tables.gauge.name: expected a plain identifier (letters, digits, _), got "a b"',
        'exporters.clickhouse.metrics_tables.summary.name: "otel_metrics_sum" is already the table of '
        "metrics_tables.sum.name; each signal needs its own table",
    ]
