"""Pipelines per signal in a running service: named ones, a receiver fanning out to several, per-signal counts.

One otlp receiver serves traces, logs and metrics at once (one listener); each signal's
pipelines get only that signal, and an exporter named in pipelines of two signals is an
exporter per signal.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from opentelemetry.proto.logs.v1.logs_pb2 import LogsData
from opentelemetry.proto.metrics.v1.metrics_pb2 import MetricsData

from collector.component import ComponentID
from collector.generated_metrics import (
    EXPORTER_QUEUE_SIZE,
    EXPORTER_SENT_LOG_RECORDS,
    PROCESSOR_INCOMING_LOG_RECORDS,
    RECEIVER_ACCEPTED_LOG_RECORDS,
    RECEIVER_ACCEPTED_METRIC_POINTS,
    RECEIVER_ACCEPTED_SPANS,
)
from collector.receivers.otlp.codec import PROTOBUF
from tests.conftest import RunningService, make_traces
from tests.recording_exporter import Recorded, recording_collector, registry_with_recorder

CLIENT_TIMEOUT_SECONDS = 10.0

CONFIG = """
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:0
processors:
  batch:
    timeout: 10ms
exporters:
  recording/all:
  recording/audit:
  recording/traces:
  otlphttp/unreachable:
    endpoint: http://127.0.0.1:9
    sending_queue:
      storage: memory
    retry_on_failure:
      enabled: false
service:
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [recording/traces]
    logs:
      receivers: [otlp]
      exporters: [recording/all]
    logs/audit:
      receivers: [otlp]
      processors: [batch]
      exporters: [recording/audit, otlphttp/unreachable]
    metrics/app:
      receivers: [otlp]
      exporters: [recording/all]
"""


@pytest.fixture
def collector(tmp_path: Path) -> Iterator[tuple[RunningService, Recorded]]:
    with recording_collector(CONFIG, tmp_path) as running:
        yield running


def _post(service: RunningService, path: str, body: bytes) -> httpx.Response:
    return httpx.post(
        f"http://127.0.0.1:{service.port()}{path}",
        content=body,
        headers={"Content-Type": PROTOBUF},
        timeout=CLIENT_TIMEOUT_SECONDS,
    )


def _logs(records: int) -> LogsData:
    logs = LogsData()
    scope = logs.resource_logs.add().scope_logs.add()
    for i in range(records):
        scope.log_records.add().body.string_value = f"record {i}"
    return logs


def _metrics() -> MetricsData:
    data = MetricsData()
    metric = data.resource_metrics.add().scope_metrics.add().metrics.add()
    metric.name = "gen_ai.client.token.usage"
    for value in (1, 2):
        metric.sum.data_points.add().as_int = value
    return data


def test_each_signal_reaches_its_own_pipelines(collector: tuple[RunningService, Recorded]) -> None:
    service, recorded = collector
    logs, metrics, traces = _logs(3), _metrics(), make_traces(2)
    assert _post(service, "/v1/logs", logs.SerializeToString()).status_code == 200
    assert _post(service, "/v1/metrics", metrics.SerializeToString()).status_code == 200
    assert _post(service, "/v1/traces", traces.SerializeToString()).status_code == 200

    # Fanned out to both logs pipelines, each its own copy; metrics and traces to theirs only.
    assert recorded.wait_for("logs", 3, "recording/all") == logs
    assert recorded.wait_for("logs", 3, "recording/audit") == logs
    assert recorded.wait_for("metrics", 2, "recording/all") == metrics
    assert recorded.wait_for("traces", 2, "recording/traces") == traces
    assert set(recorded.batches) == {
        ("recording/all", "logs"),
        ("recording/audit", "logs"),
        ("recording/all", "metrics"),
        ("recording/traces", "traces"),
    }

    telemetry = service.service.telemetry
    labels = {"receiver": "otlp", "transport": "http"}
    assert telemetry.value(RECEIVER_ACCEPTED_LOG_RECORDS.name, **labels) == 3
    assert telemetry.value(RECEIVER_ACCEPTED_METRIC_POINTS.name, **labels) == 2
    assert telemetry.value(RECEIVER_ACCEPTED_SPANS.name, **labels) == 2
    assert telemetry.value(PROCESSOR_INCOMING_LOG_RECORDS.name, processor="batch") == 3
    assert telemetry.value(EXPORTER_SENT_LOG_RECORDS.name, exporter="otlphttp/unreachable") == 0
    assert telemetry.value(EXPORTER_QUEUE_SIZE.name, exporter="otlphttp/unreachable", data_type="logs") >= 0


def test_an_exporter_in_two_signals_is_one_per_signal(collector: tuple[RunningService, Recorded]) -> None:
    service = collector[0].service
    recording_all = ComponentID("recording", "all")
    assert service.exporters_of("logs")[recording_all] is not service.exporters_of("metrics")[recording_all]
    assert recording_all not in service.exporters_of("traces")
    # One otlp receiver, its one listener taking all three signals (the test above posts them to one port).
    assert list(service.receivers) == [ComponentID("otlp")]


WITH_WORKERS = """
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:0
processors:
  memory_limiter:
    limit_percentage: 95
  genai_normalize:
  batch:
    timeout: 10ms
exporters:
  recording:
service:
  workers: 1
  pipelines:
    traces:
      receivers: [otlp]
      processors: [memory_limiter, genai_normalize]
      exporters: [recording]
    logs:
      receivers: [otlp]
      processors: [memory_limiter, batch]
      exporters: [recording]
"""


def test_logs_run_in_the_main_process_beside_traces_in_the_workers(tmp_path: Path) -> None:
    registry, recorded = registry_with_recorder()
    service = RunningService(WITH_WORKERS, tmp_path, registry)
    try:
        assert _post(service, "/v1/logs", _logs(2).SerializeToString()).status_code == 200
        assert _post(service, "/v1/traces", make_traces(3).SerializeToString()).status_code == 200
        assert recorded.wait_for("logs", 2) == _logs(2)
        assert len(recorded.wait_for("traces", 3).resource_spans[0].scope_spans[0].spans) == 3
    finally:
        service.stop()
