"""Bad logs and metrics requests answered in OTLP's terms, the bounds they share with traces, and which paths exist.

The same answers as for /v1/traces: 400 with a google.rpc.Status (gRPC INVALID_ARGUMENT)
for what cannot be decoded, 413 for a body or a message count over the limits, 503 with
Retry-After (gRPC UNAVAILABLE) when the pipeline refuses; a signal in no pipeline is not served.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from google.rpc import code_pb2, status_pb2
from opentelemetry.proto.logs.v1.logs_pb2 import LogsData
from opentelemetry.proto.metrics.v1.metrics_pb2 import MetricsData

from collector.errors import RetryableError
from collector.receivers.otlp.codec import JSON, PROTOBUF
from collector.receivers.otlp.services import SERVICES
from collector.signals import Signal
from tests.conftest import RunningService
from tests.recording_exporter import Recorded, recording_collector, registry_with_recorder

CLIENT_TIMEOUT_SECONDS = 10.0
MAX_BODY_BYTES = 64 * 1024

CONFIG = f"""
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:0
      http:
        endpoint: 127.0.0.1:0
        max_request_body_size: {MAX_BODY_BYTES}
    limits:
      max_spans_per_request: 3
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

PATHS: dict[Signal, str] = {"logs": "/v1/logs", "metrics": "/v1/metrics"}


@pytest.fixture
def collector(tmp_path: Path) -> Iterator[tuple[RunningService, Recorded]]:
    with recording_collector(CONFIG, tmp_path) as running:
        yield running


def _logs(records: int) -> LogsData:
    logs = LogsData()
    scope = logs.resource_logs.add().scope_logs.add()
    for i in range(records):
        scope.log_records.add().body.string_value = f"record {i}"
    return logs


def _metrics(metrics: int) -> MetricsData:
    data = MetricsData()
    scope = data.resource_metrics.add().scope_metrics.add()
    for i in range(metrics):
        metric = scope.metrics.add()
        metric.name = f"m{i}"
        metric.gauge.data_points.add().as_int = i
    return data


def _request(signal: Signal, items: int) -> bytes:
    data = _logs(items) if signal == "logs" else _metrics(items)
    return data.SerializeToString()


def _post(service: RunningService, path: str, body: bytes, content_type: str = PROTOBUF) -> httpx.Response:
    return httpx.post(
        f"http://127.0.0.1:{service.port()}{path}",
        content=body,
        headers={"Content-Type": content_type},
        timeout=CLIENT_TIMEOUT_SECONDS,
    )


def _status(response: httpx.Response) -> status_pb2.Status:
    return status_pb2.Status.FromString(response.content)


def _grpc_call(service: RunningService, signal: Signal, body: bytes) -> grpc.RpcError | bytes:
    with grpc.insecure_channel(f"127.0.0.1:{service.port('otlp', 'grpc')}") as channel:
        call = channel.unary_unary(SERVICES[signal].grpc_method, request_serializer=None, response_deserializer=None)
        try:
            answer: bytes = call(body, timeout=CLIENT_TIMEOUT_SECONDS)
        except grpc.RpcError as exc:
            return exc
        return answer


@pytest.mark.parametrize("signal", ["logs", "metrics"])
def test_an_undecodable_body_is_400_with_a_status(collector: tuple[RunningService, Recorded], signal: Signal) -> None:
    service, _ = collector
    response = _post(service, PATHS[signal], b"\xff\xff\xff not protobuf")
    assert response.status_code == 400
    status = _status(response)
    assert status.code == code_pb2.INVALID_ARGUMENT and status.message.startswith("invalid protobuf body")
    as_json = _post(service, PATHS[signal], b"[]", JSON)
    field = "resourceLogs" if signal == "logs" else "resourceMetrics"
    assert (as_json.status_code, as_json.json()["message"]) == (
        400,
        f"invalid JSON body: expected an object with {field}",
    )


@pytest.mark.parametrize("signal", ["logs", "metrics"])
def test_an_undecodable_grpc_message_is_invalid_argument(
    collector: tuple[RunningService, Recorded], signal: Signal
) -> None:
    service, _ = collector
    error = _grpc_call(service, signal, b"\xff\xff\xff not protobuf")
    assert isinstance(error, grpc.RpcError) and error.code() is grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.parametrize("signal", ["logs", "metrics"])
def test_too_many_items_is_413_over_http_and_invalid_argument_over_grpc(
    collector: tuple[RunningService, Recorded], signal: Signal
) -> None:
    service, recorded = collector
    response = _post(service, PATHS[signal], _request(signal, 4))
    assert response.status_code == 413
    kind = "log records" if signal == "logs" else "metrics"
    assert _status(response).message == f"request holds more than 3 {kind} (max_spans_per_request)"
    error = _grpc_call(service, signal, _request(signal, 4))
    assert isinstance(error, grpc.RpcError) and error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert recorded.batches == {}
    # Within the limit, both transports take it.
    assert _post(service, PATHS[signal], _request(signal, 3)).status_code == 200
    assert _grpc_call(service, signal, _request(signal, 3)) == SERVICES[signal].answer().SerializeToString()


def test_a_body_over_the_size_limit_is_413(collector: tuple[RunningService, Recorded]) -> None:
    service, _ = collector
    logs = LogsData()
    logs.resource_logs.add().scope_logs.add().log_records.add().body.string_value = "x" * MAX_BODY_BYTES
    response = _post(service, PATHS["logs"], logs.SerializeToString())
    assert response.status_code == 413
    assert _status(response).code == code_pb2.INVALID_ARGUMENT


@pytest.mark.parametrize("signal", ["logs", "metrics"])
def test_a_refusing_pipeline_is_503_with_retry_after_and_unavailable(
    collector: tuple[RunningService, Recorded], signal: Signal
) -> None:
    service, recorded = collector
    recorded.refuse = RetryableError("backend busy", retry_after=2.0)
    response = _post(service, PATHS[signal], _request(signal, 1))
    assert (response.status_code, response.headers["retry-after"]) == (503, "2")
    assert _status(response).code == code_pb2.UNAVAILABLE
    error = _grpc_call(service, signal, _request(signal, 1))
    assert isinstance(error, grpc.RpcError) and error.code() is grpc.StatusCode.UNAVAILABLE
    recorded.refuse = None
    assert _post(service, PATHS[signal], _request(signal, 1)).status_code == 200
    assert recorded.wait_for(signal, 1) is not None


def test_a_signal_in_no_pipeline_is_not_served(tmp_path: Path) -> None:
    registry, _ = registry_with_recorder()
    config = CONFIG.split("    metrics:")[0]  # logs only
    service = RunningService(config, tmp_path, registry)
    try:
        assert _post(service, PATHS["metrics"], _request("metrics", 1)).status_code == 404
        assert _post(service, "/v1/traces", b"").status_code == 404
        error = _grpc_call(service, "metrics", _request("metrics", 1))
        assert isinstance(error, grpc.RpcError) and error.code() is grpc.StatusCode.UNIMPLEMENTED
        assert _post(service, PATHS["logs"], _request("logs", 1)).status_code == 200
    finally:
        service.stop()
