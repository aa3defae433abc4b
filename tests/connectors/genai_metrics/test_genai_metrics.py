"""The genai_metrics connector: spans in from the OpenTelemetry SDK's exporter, GenAI client metrics out as OTLP
(names, units, temporality, buckets and values), with and without worker processes; v1.41.0's metrics; the
series bound; emits on the interval and at shutdown; a refused emit; config mistakes."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.metrics.v1.metrics_pb2 import AggregationTemporality, Metric, MetricsData
from opentelemetry.proto.trace.v1.trace_pb2 import Span as ProtoSpan

from collector import __version__
from collector.component import ComponentID, ComponentSettings
from collector.config.decode import decode
from collector.config.problems import ConfigError
from collector.errors import RetryableError
from collector.pdata import set_any_value
from collector.telemetry import Telemetry
from connectors.genai_metrics import SCOPE_NAME, GenAiMetricsConnector
from connectors.genai_metrics.config import GenAiMetricsConfig
from connectors.genai_metrics.metrics import COST_BUCKETS, DURATION_BUCKETS, TOKEN_BUCKETS
from connectors.genai_metrics.spans import MAX_LABEL_CHARS, call_facts
from tests.conftest import RunningService
from tests.connectors.genai_metrics.support import emit_genai_metrics, emitted_and_exposed, send_genai_spans
from tests.exporters.prometheus_text import samples
from tests.recording_exporter import registry_with_recorder

CUMULATIVE = AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE
V1_41 = Path(__file__).parents[2] / "data" / "genai_metrics" / "semconv_v1_41.prom"


def _config(workers: int = 0, exporter: str = "recording", settings: str = "") -> str:
    return f"""
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:0
exporters:
  recording:
  prometheus:
    endpoint: 127.0.0.1:0
connectors:
  genai_metrics:
{settings}
service:
  workers: {workers}
  pipelines:
    traces:
      receivers: [otlp]
      processors: [genai_normalize]
      exporters: [genai_metrics]
    metrics:
      receivers: [genai_metrics]
      exporters: [{exporter}]
processors:
  genai_normalize:
"""


def _emitted(workers: int, tmp_path: Path) -> MetricsData:
    registry, recorded = registry_with_recorder()
    running = RunningService(_config(workers), tmp_path, registry)
    try:
        send_genai_spans(running)
        emit_genai_metrics(running)
        return recorded.wait_for("metrics", 1)  # type: ignore[no-any-return]
    finally:
        running.stop()


def _by_name(data: MetricsData) -> dict[str, Metric]:
    [resource_metrics] = data.resource_metrics
    [scope_metrics] = resource_metrics.scope_metrics
    return {metric.name: metric for metric in scope_metrics.metrics}


def _point_attributes(point: Any) -> dict[str, Any]:
    return {pair.key: pair.value.string_value or pair.value.bool_value for pair in point.attributes}


def _bounds(metric: Metric) -> tuple[float, ...]:
    """A histogram's bucket boundaries, the same for each of its points; none for a sum."""
    bounds = {tuple(point.explicit_bounds) for point in metric.histogram.data_points}
    assert len(bounds) <= 1
    return bounds.pop() if bounds else ()


def _without_times(data: MetricsData) -> bytes:
    copy = MetricsData()
    copy.CopyFrom(data)
    for metric in copy.resource_metrics[0].scope_metrics[0].metrics:
        for point in (*metric.sum.data_points, *metric.histogram.data_points):
            point.start_time_unix_nano = point.time_unix_nano = 0
    return copy.SerializeToString()


def test_the_otlp_metrics_of_a_fixed_span_set_with_and_without_workers(tmp_path: Path) -> None:
    in_process, in_workers = _emitted(0, tmp_path / "0"), _emitted(2, tmp_path / "2")
    assert _without_times(in_workers) == _without_times(in_process)

    [resource_metrics] = in_process.resource_metrics
    assert not resource_metrics.resource.attributes
    scope = resource_metrics.scope_metrics[0].scope
    assert (scope.name, scope.version) == (SCOPE_NAME, __version__)
    metrics = _by_name(in_process)
    shapes = {name: (metric.unit, metric.WhichOneof("data"), _bounds(metric)) for name, metric in metrics.items()}
    tokens, seconds = tuple(map(float, TOKEN_BUCKETS)), tuple(DURATION_BUCKETS)
    assert shapes == {
        "gen_ai.client.inference.usage.input_tokens": ("{token}", "sum", ()),
        "gen_ai.client.inference.usage.output_tokens": ("{token}", "sum", ()),
        "gen_ai.client.inference.usage.cache_read.input_tokens": ("{token}", "sum", ()),
        "gen_ai.client.inference.usage.cache_write.input_tokens": ("{token}", "sum", ()),
        "gen_ai.client.inference.usage.reasoning.output_tokens": ("{token}", "sum", ()),
        "gen_ai.client.inference.operation.input_tokens": ("{token}", "histogram", tokens),
        "gen_ai.client.inference.operation.output_tokens": ("{token}", "histogram", tokens),
        "gen_ai.client.inference.duration": ("s", "histogram", seconds),
        "gen_ai.client.inference.time_to_first_chunk": ("s", "histogram", seconds),
        "gen_ai.client.embeddings.duration": ("s", "histogram", seconds),
        "gen_ai.client.embeddings.operation.input_tokens": ("{token}", "histogram", tokens),
        "gen_ai.client.operation.cost": ("", "histogram", tuple(COST_BUCKETS)),
        "gen_ai.invocation.duration": ("s", "histogram", seconds),
        "gen_ai.execute_tool.duration": ("s", "histogram", seconds),
    }
    for metric in metrics.values():
        data = metric.sum if metric.WhichOneof("data") == "sum" else metric.histogram
        assert data.aggregation_temporality == CUMULATIVE
        assert all(p.start_time_unix_nano <= p.time_unix_nano for p in data.data_points)
    assert all(metrics[name].sum.is_monotonic for name, shape in shapes.items() if shape[1] == "sum")

    team_a = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o",
        "service.name": "support-bot",
        "tenant.id": "team-a",
    }
    inputs = {
        point.as_double: _point_attributes(point)
        for point in metrics["gen_ai.client.inference.usage.input_tokens"].sum.data_points
    }
    assert inputs[200.0] == {**team_a, "gen_ai.token.modality": "image"}
    assert inputs[60.0] == {**team_a, "gen_ai.token.modality": "text"}
    assert inputs[140.0] == {**team_a, "gen_ai.token.modality": "unknown"}
    # A failed call without usage counts 0 tokens, and has no tenant: an empty attribute is left out.
    failed = {**team_a, "service.name": "batch-job", "gen_ai.token.modality": "unknown"}
    del failed["tenant.id"]
    assert inputs[0.0] == failed

    durations = metrics["gen_ai.client.inference.duration"].histogram.data_points
    ok = next(p for p in durations if _point_attributes(p) == team_a)
    # 1.5 s and 0.02 s: in the buckets of 0.02 and 2.56.
    assert (ok.count, ok.sum, list(ok.bucket_counts)) == (2, 1.52, [0, 1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0])
    timeout = next(p for p in durations if _point_attributes(p).get("error.type") == "timeout")
    assert (timeout.count, timeout.sum) == (1, 30.0)
    assert sum(p.count for p in durations) == 7  # seven inference calls; the duplicate record is not counted


def test_v1_41_metrics_are_exposed_as_before(tmp_path: Path) -> None:
    config = _config(exporter="prometheus", settings="    semconv: v1.41").replace(
        "      processors: [genai_normalize]\n", ""
    )
    running = RunningService(config, tmp_path, registry_with_recorder()[0])
    try:
        send_genai_spans(running)
        text = emitted_and_exposed(running)
    finally:
        running.stop()
    assert samples(text, without_scope=True) == samples(V1_41.read_text())


def test_series_beyond_max_series_go_to_one_overflow_series_and_are_counted(tmp_path: Path) -> None:
    config = _config(exporter="prometheus", settings="    max_series: 2")
    running = RunningService(config, tmp_path, registry_with_recorder()[0])
    try:
        send_genai_spans(running)
        found = samples(emitted_and_exposed(running), without_scope=True)
        own = running.service.telemetry.render()
    finally:
        running.stop()
    counts = {
        labels: value
        for (name, labels), value in found.items()
        if name == "gen_ai_client_inference_duration_seconds_count"
    }
    overflow = frozenset({("otel_metric_overflow", "true")})
    assert len(counts) == 3 and overflow in counts  # two series, and the overflow one
    assert sum(counts.values()) == 7  # every call counted, in its series or the overflow one
    assert 'genai_metrics_overflow_observations_total{connector="genai_metrics"' in own


def test_the_connector_emits_on_its_interval(tmp_path: Path) -> None:
    registry, recorded = registry_with_recorder()
    running = RunningService(_config(settings="    interval: 50ms"), tmp_path, registry)
    try:
        send_genai_spans(running)
        emitted = recorded.wait_for("metrics", 1)  # no emit asked for: the timer's
    finally:
        running.stop()
    assert "gen_ai.client.inference.duration" in _by_name(emitted)


class _Refusing:
    def __init__(self) -> None:
        self.refuse = True
        self.received: list[MetricsData] = []

    async def consume(self, data: MetricsData) -> None:
        if self.refuse:
            raise RetryableError("the metrics pipeline is full")
        self.received.append(data)


def test_a_refused_emit_is_counted_and_the_next_carries_the_same_totals() -> None:
    from tests.connectors.genai_spans import genai_spans

    telemetry = Telemetry()
    settings = ComponentSettings(ComponentID("genai_metrics"), "connector", logging.getLogger("test"), telemetry)
    downstream = _Refusing()
    connector = GenAiMetricsConnector(settings, GenAiMetricsConfig(), downstream)

    async def scenario() -> None:
        await connector.consume(_as_otlp(genai_spans()))
        await connector.emit()
        assert connector.health_problems() == [
            "the metrics pipelines refused the last emit (the metrics pipeline is full); the next carries the same "
            "totals"
        ]
        downstream.refuse = False
        await connector.emit()
        assert connector.health_problems() == []
        await connector.shutdown()  # before start: nothing more is emitted

    asyncio.run(scenario())
    assert 'genai_metrics_emit_failures_total{connector="genai_metrics"} 1' in telemetry.render()
    [delivered] = downstream.received
    durations = _by_name(delivered)["gen_ai.client.inference.duration"].histogram.data_points
    assert sum(p.count for p in durations) == 7


def _as_otlp(spans: list[Any]) -> Any:
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from opentelemetry.proto.trace.v1.trace_pb2 import TracesData

    return TracesData.FromString(encode_spans(spans).SerializeToString())


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ({"interval": "0s"}, "connectors.genai_metrics.interval: must be more than 0"),
        ({"max_series": 0}, "connectors.genai_metrics.max_series: must be at least 1"),
        ({"semconv": "1.38"}, "connectors.genai_metrics.semconv: "),
        ({"endpoint": "127.0.0.1:8889"}, "connectors.genai_metrics.endpoint: unknown key"),
    ],
)
def test_config_mistakes(raw: dict[str, Any], problem: str) -> None:
    with pytest.raises(ConfigError) as error:
        decode(GenAiMetricsConfig, raw, "connectors.genai_metrics")
    [line] = [str(p) for p in error.value.problems]
    assert line.startswith(problem), line


def test_defaults() -> None:
    config = decode(GenAiMetricsConfig, None, "connectors.genai_metrics")
    assert (config.interval, config.max_series, config.semconv) == (15.0, 2000, "latest")


def test_non_finite_amounts_are_not_observed_and_long_labels_are_cut() -> None:
    span = ProtoSpan(start_time_unix_nano=1, end_time_unix_nano=2)
    for key, value in (
        ("gen_ai.operation.name", "chat"),
        ("gen_ai.request.model", "m" * 100_000),
        ("gen_ai.usage.cost.amount", float("nan")),
        ("gen_ai.usage.input_tokens", float("inf")),
        ("gen_ai.usage.output_tokens", 7),
    ):
        set_any_value(span.attributes.add(key=key).value, value)
    facts = call_facts(span, "svc")
    assert facts is not None
    assert (facts.cost, facts.input_tokens, facts.output_tokens) == (None, None, 7.0)
    assert facts.labels[2] == "m" * MAX_LABEL_CHARS
