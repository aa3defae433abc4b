"""The otlp (gRPC) and otlphttp exporters send logs and metrics to a second collector on loopback.

Each exporter has a sending queue per signal (on disk by default, beside the traces one:
``<queue>+logs``); what the second collector's pipeline gets is exactly what the first was sent.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from opentelemetry.proto.logs.v1.logs_pb2 import LogsData
from opentelemetry.proto.metrics.v1.metrics_pb2 import MetricsData

from collector.generated_metrics import EXPORTER_SENT_LOG_RECORDS, EXPORTER_SENT_METRIC_POINTS
from collector.receivers.otlp.codec import PROTOBUF
from tests.conftest import RunningService
from tests.recording_exporter import Recorded, registry_with_recorder

CLIENT_TIMEOUT_SECONDS = 10.0

BACKEND = """
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:0
      http:
        endpoint: 127.0.0.1:0
exporters:
  recording:
service:
  pipelines:
    logs:
      receivers: [otlp]
      exporters: [recording]
    metrics:
      receivers: [otlp]
      exporters: [recording]
"""

FRONT = """
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:0
exporters:
  otlp:
    endpoint: 127.0.0.1:{grpc_port}
    tls:
      insecure: true
    sending_queue:
      batch:
        flush_timeout: 20ms
  otlphttp:
    endpoint: http://127.0.0.1:{http_port}
    encoding: {encoding}
    sending_queue:
      batch:
        flush_timeout: 20ms
service:
  pipelines:
    logs/grpc:
      receivers: [otlp]
      exporters: [otlp]
    metrics/http:
      receivers: [otlp]
      exporters: [otlphttp]
"""


@pytest.fixture
def backend(tmp_path: Path) -> Iterator[tuple[RunningService, Recorded]]:
    registry, recorded = registry_with_recorder()
    service = RunningService(BACKEND, tmp_path / "backend", registry)
    try:
        yield service, recorded
    finally:
        service.stop()


def _logs() -> LogsData:
    logs = LogsData()
    resource_logs = logs.resource_logs.add()
    attribute = resource_logs.resource.attributes.add()
    attribute.key, attribute.value.string_value = "service.name", "front"
    scope = resource_logs.scope_logs.add()
    scope.scope.name = "tests"
    for i in range(3):
        record = scope.log_records.add()
        record.time_unix_nano = 1_700_000_000_000_000_000 + i
        record.severity_number = 17  # ERROR
        record.body.kvlist_value.values.add(key="n").value.int_value = i
        record.trace_id, record.span_id = bytes(range(16)), bytes(range(8))
    return logs


def _metrics() -> MetricsData:
    data = MetricsData()
    metric = data.resource_metrics.add().scope_metrics.add().metrics.add()
    metric.name = "gen_ai.client.operation.duration"
    point = metric.histogram.data_points.add()
    point.count, point.sum = 3, 4.5
    point.explicit_bounds.extend([1.0, 2.0])
    point.bucket_counts.extend([1, 1, 1])
    metric.histogram.aggregation_temporality = 2  # cumulative
    return data


@pytest.mark.parametrize("encoding", ["proto", "json"])
def test_logs_over_grpc_and_metrics_over_http_reach_the_second_collector(
    backend: tuple[RunningService, Recorded], tmp_path: Path, encoding: str
) -> None:
    second, recorded = backend
    config = FRONT.format(
        grpc_port=second.port("otlp", "grpc"), http_port=second.port("otlp", "http"), encoding=encoding
    )
    front = RunningService(config, tmp_path / "front")
    try:
        for path, data in (("/v1/logs", _logs()), ("/v1/metrics", _metrics())):
            response = httpx.post(
                f"http://127.0.0.1:{front.port()}{path}",
                content=data.SerializeToString(),
                headers={"Content-Type": PROTOBUF},
                timeout=CLIENT_TIMEOUT_SECONDS,
            )
            assert response.status_code == 200
        assert recorded.wait_for("logs", 3) == _logs()
        assert recorded.wait_for("metrics", 1) == _metrics()
        telemetry = front.service.telemetry
        queues = tmp_path / "queue"
        assert sorted(path.name for path in queues.iterdir()) == ["otlp+logs", "otlphttp+metrics"]
    finally:
        front.stop()
    assert telemetry.value(EXPORTER_SENT_LOG_RECORDS.name, exporter="otlp") == 3
    assert telemetry.value(EXPORTER_SENT_METRIC_POINTS.name, exporter="otlphttp") == 1
