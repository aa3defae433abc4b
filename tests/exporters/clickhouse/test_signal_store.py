"""Logs and metrics into otel_logs and otel_metrics_* on the real chDB engine, every field as the contrib exporter
stores it, built by the OpenTelemetry SDK (encoded by its OTLP encoders) where it can make them, else as protobuf."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.sdk.metrics.export import AggregationTemporality as SdkTemporality

from collector.queue import Batch
from exporters.clickhouse.config import ClickHouseConfig
from exporters.clickhouse.store import ClickHouseStore
from tests.exporters.clickhouse.signal_data import (
    NANOS,
    PROTOBUF_METRIC_POINTS,
    SDK_METRIC_POINTS,
    RowsOf,
    check_every_kind_of_log_record,
    check_sdk_metrics,
    check_summary_and_int_gauge,
    every_kind_of_log_record,
    sdk_logs,
    sdk_metrics,
    summary_and_int_gauge,
)

LOGGER = logging.getLogger("test.signal_store")


@pytest.fixture
def store(chdb_path: Path) -> Iterator[ClickHouseStore]:
    opened = ClickHouseStore(ClickHouseConfig(endpoint=f"chdb://{chdb_path}"), LOGGER)
    opened.start()
    try:
        yield opened
    finally:
        opened.close()


def rows_of(store: ClickHouseStore) -> RowsOf:
    def rows(sql: str) -> list[dict[str, object]]:
        result = store.query(sql)
        return [dict(zip(result.columns, row, strict=True)) for row in result.rows]

    return rows


def test_log_records_are_stored_field_by_field(store: ClickHouseStore) -> None:
    records = every_kind_of_log_record()
    store.send_logs(Batch([sdk_logs(records)], len(records)))  # type: ignore[list-item]
    check_every_kind_of_log_record(rows_of(store))


@pytest.mark.parametrize("temporality", [SdkTemporality.CUMULATIVE, SdkTemporality.DELTA])
def test_sdk_metrics_are_stored_field_by_field(store: ClickHouseStore, temporality: SdkTemporality) -> None:
    metrics = sdk_metrics(temporality)
    store.send_metrics(Batch([metrics], SDK_METRIC_POINTS))  # type: ignore[list-item]
    check_sdk_metrics(rows_of(store), temporality, metrics)


def test_summaries_integer_gauges_and_exemplars_without_ids(store: ClickHouseStore) -> None:
    store.send_metrics(Batch([summary_and_int_gauge()], PROTOBUF_METRIC_POINTS))  # type: ignore[list-item]
    check_summary_and_int_gauge(rows_of(store))


def test_the_same_batch_sent_twice_is_stored_once(store: ClickHouseStore) -> None:
    logs = sdk_logs([{"timestamp": NANOS, "body": "once"}, {"timestamp": NANOS + 1, "body": "twice?"}])
    metrics = sdk_metrics(SdkTemporality.CUMULATIVE)
    for _ in range(2):
        store.send_logs(Batch([logs], 2))  # type: ignore[list-item]
        store.send_metrics(Batch([metrics], 5))  # type: ignore[list-item]
    counts = rows_of(store)(
        "SELECT (SELECT count() FROM otel_logs) AS logs, (SELECT count() FROM otel_metrics_sum) AS sums, "
        "(SELECT count() FROM otel_metrics_histogram) AS histograms, "
        "(SELECT count() FROM otel_metrics_gauge) AS gauges",
    )
    assert counts == [{"logs": 2, "sums": 2, "histograms": 1, "gauges": 1}]
    # A different batch is not mistaken for the first.
    store.send_logs(Batch([sdk_logs([{"timestamp": NANOS, "body": "other"}])], 1))  # type: ignore[list-item]
    assert rows_of(store)("SELECT count() AS n FROM otel_logs") == [{"n": 3}]
