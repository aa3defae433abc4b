"""Logs and metrics from the OpenTelemetry JS SDK's own OTLP exporters (HTTP/JSON, HTTP/protobuf, gRPC).

``tests/js/signals_client.mjs`` sends a fixed set of log records and metrics through the
exporter of each transport (installed from ``tests/js/package-lock.json`` by ``make js-deps``);
what the collector hands its exporters is checked field by field: severity, a body of each
AnyValue kind, attributes, trace context and event name on logs; cumulative and delta sums,
gauges, explicit and exponential histograms on metrics. (The JS SDK records no exemplars and
makes no summaries: the Python SDK's test covers exemplars, and summaries are posted as protobuf there.)
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, LogsData, SeverityNumber
from opentelemetry.proto.metrics.v1.metrics_pb2 import AggregationTemporality, Metric, MetricsData

from collector.pdata import any_value
from tests.conftest import RunningService
from tests.recording_exporter import Recorded, recording_collector

JS_DIR = Path(__file__).resolve().parents[3] / "js"
CLIENT = JS_DIR / "signals_client.mjs"
CLIENT_TIMEOUT_SECONDS = 60.0
TRANSPORTS = ("http-json", "http-proto", "grpc")
TRACE_ID = bytes.fromhex("5b8efff798038103d269b633813fc60c")
SPAN_ID = bytes.fromhex("eee19b7ec3c1b174")
TIMESTAMP = 1_700_000_000_123_456_789
BODIES: list[Any] = [
    "a string",
    42,
    2.5,
    True,
    b"\x00\xffb",
    ["a", 1, 2.5, False],
    {"role": "user", "content": [{"type": "text", "text": "hi"}], "n": 3},
]
BODY_KINDS = ["string_value", "int_value", "double_value", "bool_value", "bytes_value", "array_value", "kvlist_value"]
# The points the client records, per attribute set (model, index).
CLAUDE = (("gen_ai.request.model", "claude"), ("index", 0))
GPT = (("gen_ai.request.model", "gpt-4o"), ("index", 1))

CONFIG = """
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


@pytest.fixture
def collector(tmp_path: Path) -> Iterator[tuple[RunningService, Recorded]]:
    if not (JS_DIR / "node_modules").is_dir() or shutil.which("node") is None:
        pytest.fail("the JS SDK is not installed: run `make js-deps` (node and npm from Debian, then npm ci)")
    with recording_collector(CONFIG, tmp_path) as running:
        yield running


def _send(service: RunningService, signal: str, transport: str) -> None:
    port = service.port("otlp", "grpc" if transport == "grpc" else "http")
    result = subprocess.run(
        ["node", str(CLIENT), signal, transport, f"http://127.0.0.1:{port}"],
        capture_output=True,
        text=True,
        timeout=CLIENT_TIMEOUT_SECONDS,
        cwd=JS_DIR,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]


def _resource_and_scope(resource: Any, scope: Any) -> None:
    assert {kv.key: any_value(kv.value) for kv in resource.attributes}["service.name"] == "js-signals-test"
    assert (scope.name, scope.version) == ("tests.js.signals", "1.2.3")


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_js_sdk_log_records_arrive_with_every_field(collector: tuple[RunningService, Recorded], transport: str) -> None:
    service, recorded = collector
    _send(service, "logs", transport)

    got: LogsData = recorded.wait_for("logs", len(BODIES))
    records: list[LogRecord] = []
    for resource_logs in got.resource_logs:
        for scope_logs in resource_logs.scope_logs:
            _resource_and_scope(resource_logs.resource, scope_logs.scope)
            records.extend(scope_logs.log_records)
    assert [record.body.WhichOneof("value") for record in records] == BODY_KINDS
    assert [any_value(record.body) for record in records] == BODIES
    for index, record in enumerate(records):
        assert (record.time_unix_nano, record.observed_time_unix_nano) == (TIMESTAMP + index, TIMESTAMP + 1000 + index)
        assert (record.severity_number, record.severity_text) == (SeverityNumber.SEVERITY_NUMBER_WARN, "WARN")
        assert (record.trace_id, record.span_id, record.flags & 0xFF) == (TRACE_ID, SPAN_ID, 1)
        assert record.event_name == "gen_ai.client.inference.operation.details"
        attributes = {kv.key: kv.value for kv in record.attributes}
        assert {key: any_value(value) for key, value in attributes.items()} == {
            "gen_ai.provider.name": "openai",
            "index": index,
            "ratio": 0.5,
            "ok": True,
            "tags": ["a", "b"],
        }
        assert attributes["index"].WhichOneof("value") == "int_value"
        assert attributes["ratio"].WhichOneof("value") == "double_value"


def _points_by_attributes(points: Any) -> dict[tuple[tuple[str, Any], ...], Any]:
    return {tuple((kv.key, any_value(kv.value)) for kv in point.attributes): point for point in points}


def _number(point: Any) -> float | int:
    return point.as_int if point.WhichOneof("value") == "as_int" else point.as_double


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_js_sdk_metrics_arrive_with_every_field(collector: tuple[RunningService, Recorded], transport: str) -> None:
    service, recorded = collector
    _send(service, "metrics", transport)

    # Two collections (cumulative, then delta) of 6 metrics: 2 points each, the observable gauge's too.
    got: MetricsData = recorded.wait_for("metrics", 2 * 6 * 2)
    exports: list[dict[str, Metric]] = []
    for resource_metrics in got.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            _resource_and_scope(resource_metrics.resource, scope_metrics.scope)
            exports.append({metric.name: metric for metric in scope_metrics.metrics})
    assert len(exports) == 2
    cumulative, delta = exports
    expected_kinds = {
        "gen_ai.client.token.usage.total": "sum",
        "gen_ai.requests.in_flight": "sum",
        "gen_ai.client.operation.duration": "histogram",
        "gen_ai.latency.exponential": "exponential_histogram",
        "gen_ai.request.temperature": "gauge",
        "queue.depth": "gauge",
    }
    for metrics, temporality in (
        (cumulative, AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE),
        (delta, AggregationTemporality.AGGREGATION_TEMPORALITY_DELTA),
    ):
        assert {name: metric.WhichOneof("data") for name, metric in metrics.items()} == expected_kinds
        tokens = metrics["gen_ai.client.token.usage.total"]
        assert (tokens.unit, tokens.sum.is_monotonic, tokens.sum.aggregation_temporality) == (
            "{token}",
            True,
            temporality,
        )
        assert {key: _number(p) for key, p in _points_by_attributes(tokens.sum.data_points).items()} == {
            CLAUDE: 400,
            GPT: 600,
        }
        in_flight = metrics["gen_ai.requests.in_flight"].sum
        assert not in_flight.is_monotonic
        assert {key: _number(p) for key, p in _points_by_attributes(in_flight.data_points).items()} == {
            CLAUDE: -2,
            GPT: 2,
        }
        histogram = metrics["gen_ai.client.operation.duration"]
        assert histogram.unit == "s" and histogram.histogram.aggregation_temporality == temporality
        points = _points_by_attributes(histogram.histogram.data_points)
        for key, values, buckets in ((CLAUDE, (0.05, 1.7), [1, 0, 1, 0]), (GPT, (0.4, 12.0), [0, 1, 0, 1])):
            point = points[key]
            assert list(point.explicit_bounds) == [0.1, 1.0, 10.0]
            assert list(point.bucket_counts) == buckets
            assert (point.count, point.sum, point.min, point.max) == (2, sum(values), min(values), max(values))
            assert point.start_time_unix_nano <= point.time_unix_nano
        exponential = metrics["gen_ai.latency.exponential"].exponential_histogram
        assert exponential.aggregation_temporality == temporality
        for key, values in _points_by_attributes(exponential.data_points).items():
            expected = (0.05, 1.7) if key == CLAUDE else (0.4, 12.0)
            assert (values.count, values.sum, values.min, values.max) == (2, sum(expected), *sorted(expected))
            assert sum(values.positive.bucket_counts) + values.zero_count == 2
        gauge = _points_by_attributes(metrics["gen_ai.request.temperature"].gauge.data_points)
        assert {key: _number(p) for key, p in gauge.items()} == {CLAUDE: 0.1 * 2, GPT: 0.1 * 3}
        queue = _points_by_attributes(metrics["queue.depth"].gauge.data_points)
        assert {key: _number(p) for key, p in queue.items()} == {(("queue", "a"),): 7, (("queue", "b"),): 3.5}
