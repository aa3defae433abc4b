"""Logs and metrics from the OpenTelemetry Python SDK's OTLP exporters (HTTP and gRPC) through a running collector
into the clickhouse exporter, read back field by field (tests.exporters.clickhouse.signal_data).

The collector has traces, logs and metrics pipelines into one clickhouse exporter: its three
signals share one store, which stays open until the last of them has drained at shutdown.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GrpcLogExporter
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter as GrpcMetricExporter
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as HttpLogExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter as HttpMetricExporter
from opentelemetry.proto.metrics.v1.metrics_pb2 import MetricsData
from opentelemetry.sdk._logs.export import LogRecordExportResult
from opentelemetry.sdk.metrics.export import AggregationTemporality as SdkTemporality
from opentelemetry.sdk.metrics.export import MetricExportResult

from collector.component import ComponentID
from collector.receivers.otlp.codec import PROTOBUF
from exporters.clickhouse import SignalSender
from exporters.clickhouse.config import ClickHouseConfig
from exporters.clickhouse.store import ClickHouseStore
from tests.conftest import RunningService, send_span
from tests.exporters.clickhouse.signal_data import (
    RowsOf,
    check_every_kind_of_log_record,
    check_sdk_metrics,
    check_summary_and_int_gauge,
    every_kind_of_log_record,
    sdk_log_records,
    sdk_metrics_data,
    summary_and_int_gauge,
)

CLIENT_TIMEOUT_SECONDS = 10.0


def _config(chdb_dir: Path) -> str:
    return f"""
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:0
      http:
        endpoint: 127.0.0.1:0
exporters:
  clickhouse:
    endpoint: chdb://{chdb_dir}
    sending_queue:
      batch:
        flush_timeout: 50ms
service:
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [clickhouse]
    logs:
      receivers: [otlp]
      exporters: [clickhouse]
    metrics:
      receivers: [otlp]
      exporters: [clickhouse]
"""


@pytest.fixture
def stored(chdb_path: Path) -> Iterator[RowsOf]:
    """Queries on the store the collector wrote, opened once the collector has stopped."""
    store = ClickHouseStore(ClickHouseConfig(endpoint=f"chdb://{chdb_path}"), logging.getLogger("test.stored"))

    def rows(sql: str) -> list[dict[str, Any]]:
        result = store.query(sql)
        return [dict(zip(result.columns, row, strict=True)) for row in result.rows]

    try:
        yield rows
    finally:
        store.close()


def _exporters(transport: str, port: int) -> tuple[Any, Any]:
    if transport == "http":
        base = f"http://127.0.0.1:{port}"
        return (
            HttpLogExporter(endpoint=f"{base}/v1/logs", timeout=CLIENT_TIMEOUT_SECONDS),
            HttpMetricExporter(endpoint=f"{base}/v1/metrics", timeout=CLIENT_TIMEOUT_SECONDS),
        )
    endpoint = f"127.0.0.1:{port}"
    return (
        GrpcLogExporter(endpoint=endpoint, insecure=True, timeout=CLIENT_TIMEOUT_SECONDS),
        GrpcMetricExporter(endpoint=endpoint, insecure=True, timeout=CLIENT_TIMEOUT_SECONDS),
    )


@pytest.mark.parametrize(
    ("transport", "temporality"), [("http", SdkTemporality.CUMULATIVE), ("grpc", SdkTemporality.DELTA)]
)
def test_sdk_logs_and_metrics_are_stored_field_by_field(
    transport: str, temporality: SdkTemporality, chdb_path: Path, tmp_path: Path, stored: RowsOf
) -> None:
    collector = RunningService(_config(chdb_path), tmp_path)
    try:
        exporters = collector.service.exporters_of
        clickhouse = ComponentID("clickhouse")
        store = exporters("traces")[clickhouse].sender  # type: ignore[attr-defined]
        # One store for the exporter's three signals; the traces exporter's sender is the store itself.
        assert isinstance(store, ClickHouseStore)
        for signal in ("logs", "metrics"):
            sender = exporters(signal)[clickhouse].sender  # type: ignore[attr-defined]
            assert isinstance(sender, SignalSender) and sender.store is store

        log_exporter, metric_exporter = _exporters(transport, collector.port("otlp", transport))
        metrics = sdk_metrics_data(temporality)
        assert log_exporter.export(sdk_log_records(every_kind_of_log_record())) == LogRecordExportResult.SUCCESS
        assert metric_exporter.export(metrics) == MetricExportResult.SUCCESS
        log_exporter.shutdown()
        metric_exporter.shutdown()
        # What the SDK cannot make, posted as OTLP protobuf.
        response = httpx.post(
            f"http://127.0.0.1:{collector.port()}/v1/metrics",
            content=summary_and_int_gauge().SerializeToString(),
            headers={"Content-Type": PROTOBUF},
            timeout=CLIENT_TIMEOUT_SECONDS,
        )
        assert response.status_code == 200
        send_span(collector, "checkout", {"index": 1})
    finally:
        # Shutdown stops the traces exporter first: the logs and metrics ones still drain into the open store.
        collector.stop()

    check_every_kind_of_log_record(stored)
    check_sdk_metrics(stored, temporality, MetricsData.FromString(encode_metrics(metrics).SerializeToString()))
    check_summary_and_int_gauge(stored)
    assert stored("SELECT SpanName FROM otel_traces") == [{"SpanName": "checkout"}]
