"""Logs and metrics from the OpenTelemetry Python SDK's own OTLP exporters (HTTP and gRPC) into a running collector.

What arrives at the pipeline's end is compared, message for message, with the SDK's own
encoding of the same records and points (its exporters' encoders), so every field is
checked: severity, each AnyValue kind of body, attributes, trace context, event name; sums
cumulative and delta, gauges, explicit and exponential histograms, exemplars. Summaries,
which the SDK does not make, are built as protobuf and posted.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GrpcLogExporter
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter as GrpcMetricExporter
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as HttpLogExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter as HttpMetricExporter
from opentelemetry.metrics import Observation
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceResponse
from opentelemetry.proto.logs.v1.logs_pb2 import LogsData
from opentelemetry.proto.metrics.v1.metrics_pb2 import MetricsData
from opentelemetry.sdk._logs import LoggerProvider, ReadableLogRecord
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import (
    AlwaysOnExemplarFilter,
    Counter,
    Histogram,
    MeterProvider,
    UpDownCounter,
)
from opentelemetry.sdk.metrics.export import AggregationTemporality, InMemoryMetricReader, MetricExportResult
from opentelemetry.sdk.metrics.view import ExponentialBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from collector.receivers.otlp.codec import JSON, PROTOBUF, encode_otlp_json
from collector.signals import item_count
from tests.conftest import RunningService
from tests.recording_exporter import Recorded, recording_collector

TRACE_ID = 0x5B8EFFF798038103D269B633813FC60C
SPAN_ID = 0xEEE19B7EC3C1B174
TIMESTAMP = 1_700_000_000_123_456_789
CLIENT_TIMEOUT_SECONDS = 10.0

CONFIG = """
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:0
      http:
        endpoint: 127.0.0.1:0
processors:
  memory_limiter:
    limit_percentage: 95
  batch:
    timeout: 10ms
exporters:
  recording:
service:
  pipelines:
    logs:
      receivers: [otlp]
      processors: [memory_limiter, batch]
      exporters: [recording]
    metrics:
      receivers: [otlp]
      processors: [memory_limiter, batch]
      exporters: [recording]
"""

# A body of every AnyValue kind.
BODIES: list[Any] = [
    "a string",
    42,
    2.5,
    True,
    b"\x00\xffbytes",
    ["a", 1, 2.0, False],
    {"role": "user", "content": [{"type": "text", "text": "hi"}], "n": 3},
]


@pytest.fixture
def collector(tmp_path: Path) -> Iterator[tuple[RunningService, Recorded]]:
    with recording_collector(CONFIG, tmp_path) as running:
        yield running


def _span_context() -> otel_context.Context:
    span = NonRecordingSpan(SpanContext(TRACE_ID, SPAN_ID, is_remote=False, trace_flags=TraceFlags(1)))
    return trace.set_span_in_context(span)


def _emit_logs(exporter: Any) -> list[ReadableLogRecord]:
    """Every body of BODIES as a log record through ``exporter``; the records as the SDK made them."""
    memory = InMemoryLogRecordExporter()
    provider = LoggerProvider(resource=Resource.create({"service.name": "signals-test"}))
    provider.add_log_record_processor(SimpleLogRecordProcessor(memory))
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    logger = provider.get_logger("tests.signals", "1.2.3")
    for i, body in enumerate(BODIES):
        logger.emit(
            timestamp=TIMESTAMP + i,
            observed_timestamp=TIMESTAMP + 1000 + i,
            context=_span_context(),
            severity_number=SeverityNumber.WARN,
            severity_text="WARN",
            body=body,
            attributes={"gen_ai.system": "openai", "index": i, "ratio": 0.5, "ok": True, "tags": ["a", "b"]},
            event_name="gen_ai.client.inference.operation.details",
        )
    provider.shutdown()
    return list(memory.get_finished_logs())


def _flat(data: LogsData | MetricsData) -> list[tuple[bytes, bytes, bytes]]:
    """Each log record or metric with its resource and scope, as bytes: batches cut differently compare equal."""
    if isinstance(data, LogsData):
        return [
            (rl.resource.SerializeToString(), sl.scope.SerializeToString(), record.SerializeToString())
            for rl in data.resource_logs
            for sl in rl.scope_logs
            for record in sl.log_records
        ]
    return [
        (rm.resource.SerializeToString(), sm.scope.SerializeToString(), metric.SerializeToString())
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for metric in sm.metrics
    ]


@pytest.mark.parametrize("transport", ["http", "grpc"])
def test_sdk_log_records_arrive_exactly(collector: tuple[RunningService, Recorded], transport: str) -> None:
    service, recorded = collector
    port = service.port("otlp", transport)
    if transport == "http":
        exporter: Any = HttpLogExporter(endpoint=f"http://127.0.0.1:{port}/v1/logs", timeout=CLIENT_TIMEOUT_SECONDS)
    else:
        exporter = GrpcLogExporter(endpoint=f"127.0.0.1:{port}", insecure=True, timeout=CLIENT_TIMEOUT_SECONDS)
    records = _emit_logs(exporter)

    got: LogsData = recorded.wait_for("logs", len(BODIES))
    expected = LogsData.FromString(encode_logs(records).SerializeToString())
    assert _flat(got) == _flat(expected)
    # The same, read the way a reader would: what each field says.
    logs = [record for rl in got.resource_logs for sl in rl.scope_logs for record in sl.log_records]
    assert [record.body.WhichOneof("value") for record in logs] == [
        "string_value",
        "int_value",
        "double_value",
        "bool_value",
        "bytes_value",
        "array_value",
        "kvlist_value",
    ]
    first = logs[0]
    assert (first.severity_number, first.severity_text) == (SeverityNumber.WARN.value, "WARN")
    assert first.trace_id == TRACE_ID.to_bytes(16, "big") and first.span_id == SPAN_ID.to_bytes(8, "big")
    assert first.flags & 0xFF == 1
    assert first.time_unix_nano == TIMESTAMP
    assert first.event_name == "gen_ai.client.inference.operation.details"
    assert {kv.key for kv in first.attributes} == {"gen_ai.system", "index", "ratio", "ok", "tags"}


def _metrics_data(temporality: AggregationTemporality) -> Any:
    """Sums, gauges, explicit and exponential histograms with exemplars, as the SDK collects them."""
    preferred = {Counter: temporality, UpDownCounter: temporality, Histogram: temporality}
    reader = InMemoryMetricReader(preferred_temporality=preferred)
    provider = MeterProvider(
        [reader],
        resource=Resource.create({"service.name": "signals-test"}),
        exemplar_filter=AlwaysOnExemplarFilter(),
        # Instruments no view names keep their default aggregation.
        views=[View(instrument_name="gen_ai.latency.exponential", aggregation=ExponentialBucketHistogramAggregation())],
    )
    meter = provider.get_meter("tests.signals", "1.2.3")
    token = otel_context.attach(_span_context())
    try:
        tokens = meter.create_counter("gen_ai.client.token.usage.total", unit="{token}")
        in_flight = meter.create_up_down_counter("gen_ai.requests.in_flight")
        latency = meter.create_histogram("gen_ai.client.operation.duration", unit="s")
        exponential = meter.create_histogram("gen_ai.latency.exponential", unit="s")
        temperature = meter.create_gauge("gen_ai.request.temperature")
        meter.create_observable_gauge("queue.depth", callbacks=[lambda options: _observations()])
        for i, value in enumerate((0.05, 0.4, 1.7, 12.0)):
            attributes = {"gen_ai.request.model": "gpt-4o" if i % 2 else "claude", "index": i % 2}
            tokens.add(100 * (i + 1), attributes)
            in_flight.add(1 if i % 2 else -1, attributes)
            latency.record(value, attributes)
            exponential.record(value, attributes)
            temperature.set(0.1 * i, attributes)
    finally:
        otel_context.detach(token)
    data = reader.get_metrics_data()
    provider.shutdown()
    return data


def _observations() -> list[Observation]:
    return [Observation(7, {"queue": "a"}), Observation(3.5, {"queue": "b"})]


@pytest.mark.parametrize("transport", ["http", "grpc"])
def test_sdk_metrics_arrive_exactly(collector: tuple[RunningService, Recorded], transport: str) -> None:
    service, recorded = collector
    port = service.port("otlp", transport)
    if transport == "http":
        exporter: Any = HttpMetricExporter(
            endpoint=f"http://127.0.0.1:{port}/v1/metrics", timeout=CLIENT_TIMEOUT_SECONDS
        )
    else:
        exporter = GrpcMetricExporter(endpoint=f"127.0.0.1:{port}", insecure=True, timeout=CLIENT_TIMEOUT_SECONDS)
    sent = [_metrics_data(AggregationTemporality.CUMULATIVE), _metrics_data(AggregationTemporality.DELTA)]
    for data in sent:
        assert exporter.export(data) is MetricExportResult.SUCCESS

    expected = [MetricsData.FromString(encode_metrics(data).SerializeToString()) for data in sent]
    points = sum(map(item_count, expected))
    got: MetricsData = recorded.wait_for("metrics", points)
    assert _flat(got) == [item for data in expected for item in _flat(data)]
    metrics = {m.name: m for rm in got.resource_metrics for sm in rm.scope_metrics for m in sm.metrics}
    kinds = {name: metric.WhichOneof("data") for name, metric in metrics.items()}
    assert kinds == {
        "gen_ai.client.token.usage.total": "sum",
        "gen_ai.requests.in_flight": "sum",
        "gen_ai.client.operation.duration": "histogram",
        "gen_ai.latency.exponential": "exponential_histogram",
        "gen_ai.request.temperature": "gauge",
        "queue.depth": "gauge",
    }
    temporalities = {
        m.sum.aggregation_temporality
        for rm in got.resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
        if m.name == "gen_ai.client.token.usage.total"
    }
    assert temporalities == {
        AggregationTemporality.CUMULATIVE.value,
        AggregationTemporality.DELTA.value,
    }
    durations = metrics["gen_ai.client.operation.duration"].histogram.data_points
    exemplars = [exemplar for point in durations for exemplar in point.exemplars]
    assert exemplars and all(e.trace_id == TRACE_ID.to_bytes(16, "big") for e in exemplars)


def _summary() -> MetricsData:
    data = MetricsData()
    rm = data.resource_metrics.add()
    attribute = rm.resource.attributes.add()
    attribute.key, attribute.value.string_value = "service.name", "legacy-app"
    metric = rm.scope_metrics.add().metrics.add()
    metric.name, metric.unit = "rpc.latency", "ms"
    point = metric.summary.data_points.add()
    point.start_time_unix_nano, point.time_unix_nano = TIMESTAMP, TIMESTAMP + 10
    point.count, point.sum = 12, 340.5
    for quantile, value in ((0.5, 20.0), (0.99, 95.25)):
        entry = point.quantile_values.add()
        entry.quantile, entry.value = quantile, value
    label = point.attributes.add()
    label.key, label.value.string_value = "rpc.method", "Export"
    return data


def test_a_summary_posted_as_protobuf_arrives_exactly(collector: tuple[RunningService, Recorded]) -> None:
    service, recorded = collector
    summary = _summary()
    response = httpx.post(
        f"http://127.0.0.1:{service.port()}/v1/metrics",
        content=gzip.compress(summary.SerializeToString()),
        headers={"Content-Type": PROTOBUF, "Content-Encoding": "gzip"},
        timeout=CLIENT_TIMEOUT_SECONDS,
    )
    assert response.status_code == 200
    assert ExportMetricsServiceResponse.FromString(response.content) == ExportMetricsServiceResponse()
    assert recorded.wait_for("metrics", 1) == summary


def test_logs_as_otlp_json_arrive_exactly(collector: tuple[RunningService, Recorded]) -> None:
    service, recorded = collector
    records = _emit_logs(InMemoryLogRecordExporter())
    logs = LogsData.FromString(encode_logs(records).SerializeToString())
    response = httpx.post(
        f"http://127.0.0.1:{service.port()}/v1/logs",
        content=encode_otlp_json(logs),
        headers={"Content-Type": JSON},
        timeout=CLIENT_TIMEOUT_SECONDS,
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(JSON)
    assert response.json() == {}
    assert recorded.wait_for("logs", len(BODIES)) == logs
