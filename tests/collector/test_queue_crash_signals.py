"""Logs and metrics in the disk sending queue across kill -9: acknowledged, killed, restarted, sent once each.

A collector takes OTLP logs and metrics over HTTP and exports them with otlphttp to a backend
that is not there yet, so everything it acknowledges waits in its queues' write-ahead logs
(``<queue>+logs``, ``<queue>+metrics``). It is killed with SIGKILL, the backend comes up, and
a new collector on the same directories sends what the first one acknowledged: every log
record and data point, each exactly once (nothing was delivered before the kill, so a second
copy could only come from the replay), and each to its own signal's pipeline.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import httpx
from opentelemetry.proto.logs.v1.logs_pb2 import LogsData
from opentelemetry.proto.metrics.v1.metrics_pb2 import MetricsData

from collector.receivers.otlp.codec import PROTOBUF
from collector.signals import OtlpData, Signal
from tests.collector.test_cli_run import CollectorProcess
from tests.conftest import free_port
from tests.recording_exporter import Recorded, recording_collector

REQUESTS = 6
ITEMS_PER_REQUEST = 25
ITEM_ID = "test.item.id"
CLIENT_TIMEOUT_SECONDS = 30.0

FRONT = """
receivers:
  otlp:
    protocols:
      http: {{endpoint: "${{env:GENAI_COLLECTOR_OTLP_HTTP_ENDPOINT}}"}}
exporters:
  otlphttp:
    endpoint: http://127.0.0.1:{backend}
    timeout: 1s
    sending_queue:
      directory: {queue}
      batch: {{flush_timeout: 20ms, min_size: 10}}
    retry_on_failure: {{initial_interval: 50ms, max_interval: 200ms, max_elapsed_time: 10m}}
service:
  pipelines:
    logs: {{receivers: [otlp], exporters: [otlphttp]}}
    metrics: {{receivers: [otlp], exporters: [otlphttp]}}
"""

BACKEND = """
receivers:
  otlp:
    protocols:
      http: {{endpoint: "127.0.0.1:{port}"}}
exporters:
  recording:
service:
  pipelines:
    logs: {{receivers: [otlp], exporters: [recording]}}
    metrics: {{receivers: [otlp], exporters: [recording]}}
"""


def _logs(ids: list[str]) -> LogsData:
    logs = LogsData()
    scope = logs.resource_logs.add().scope_logs.add()
    for item in ids:
        record = scope.log_records.add(time_unix_nano=1, event_name="gen_ai.client.inference.operation.details")
        record.attributes.add(key=ITEM_ID).value.string_value = item
    return logs


def _metrics(ids: list[str]) -> MetricsData:
    metrics = MetricsData()
    metric = metrics.resource_metrics.add().scope_metrics.add().metrics.add(name="gen_ai.client.requests")
    metric.sum.is_monotonic = True
    for item in ids:
        point = metric.sum.data_points.add(time_unix_nano=1, as_int=1)
        point.attributes.add(key=ITEM_ID).value.string_value = item
    return metrics


def _ids(data: OtlpData) -> list[str]:
    if isinstance(data, LogsData):
        items = [r for rl in data.resource_logs for sl in rl.scope_logs for r in sl.log_records]
    else:
        assert isinstance(data, MetricsData)
        items = [
            p for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics for p in m.sum.data_points
        ]
    return [kv.value.string_value for item in items for kv in item.attributes if kv.key == ITEM_ID]


def test_logs_and_metrics_acknowledged_before_kill_9_arrive_once_each_after_the_restart(tmp_path: Path) -> None:
    backend_port = free_port()
    config = tmp_path / "front.yaml"
    config.write_text(FRONT.format(backend=backend_port, queue=tmp_path / "queue"))
    first = CollectorProcess(tmp_path, config)
    acknowledged: dict[Signal, list[str]] = {"logs": [], "metrics": []}
    try:
        with httpx.Client(timeout=CLIENT_TIMEOUT_SECONDS) as client:
            for number in range(REQUESTS):
                for signal, build in (("logs", _logs), ("metrics", _metrics)):
                    ids = [f"{signal}-{number}-{index}" for index in range(ITEMS_PER_REQUEST)]
                    response = client.post(
                        f"http://127.0.0.1:{first.http_port}/v1/{signal}",
                        content=build(ids).SerializeToString(),
                        headers={"Content-Type": PROTOBUF},
                    )
                    assert response.status_code == 200, response.text
                    acknowledged[signal].extend(ids)
    finally:
        first.process.kill()  # SIGKILL: nothing drained, nothing flushed
        first.process.wait(30)
    assert (tmp_path / "queue+logs").is_dir() and (tmp_path / "queue+metrics").is_dir()

    backend_config = BACKEND.format(port=backend_port)
    with recording_collector(backend_config, tmp_path / "backend") as (_, recorded):
        second = CollectorProcess(tmp_path, config)
        try:
            for signal in ("logs", "metrics"):
                recorded.wait_for(signal, len(acknowledged[signal]))
        finally:
            assert second.stop() == 0  # drained: anything sent twice would be sent by now
        got = _received(recorded)
    for signal, ids in acknowledged.items():
        counts = Counter(got[signal])
        assert set(counts) == set(ids), f"{signal}: lost {sorted(set(ids) - set(counts))[:5]}"
        assert max(counts.values()) == 1, f"{signal}: sent twice: {[i for i, n in counts.items() if n > 1][:5]}"


def _received(recorded: Recorded) -> dict[Signal, list[str]]:
    with recorded.changed:
        return {
            signal: [item for batch in recorded.batches.get(("recording", signal), []) for item in _ids(batch)]
            for signal in ("logs", "metrics")
        }
