"""Pipelines joined by connectors in a running collector: traces to traces through forward, one connector feeding
two pipelines (each with its own copy when a processor may change it), traces to metrics flushed at shutdown
through a processor of the metrics pipeline, and the connectors' self-metrics."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from opentelemetry.proto.metrics.v1.metrics_pb2 import MetricsData

from collector.component import ComponentID
from collector.config.service import PipelineConfig, parse_config
from collector.pdata import span_count
from collector.pipeline_graph import ConnectorInstance, PipelineGraph
from collector.registry import default_registry
from tests.conftest import RunningService
from tests.connectors.genai_metrics.support import send_genai_spans
from tests.connectors.genai_spans import SPANS
from tests.exporters.prometheus_text import parse_metrics
from tests.recording_exporter import registry_with_recorder

OTLP = """
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:0
"""


def _attributes(traces: Any) -> list[dict[str, str]]:
    return [
        {pair.key: pair.value.string_value for pair in span.attributes}
        for rs in traces.resource_spans
        for ss in rs.scope_spans
        for span in ss.spans
    ]


def test_forward_feeds_two_traces_pipelines_each_with_its_own_copy(tmp_path: Path) -> None:
    registry, recorded = registry_with_recorder()
    config = (
        OTLP
        + """
processors:
  genai_normalize:
exporters:
  recording/up:
  recording/normalized:
  recording/raw:
connectors:
  forward:
service:
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [recording/up, forward]
    traces/normalized:
      receivers: [forward]
      processors: [genai_normalize]
      exporters: [recording/normalized]
    traces/raw:
      receivers: [forward]
      exporters: [recording/raw]
"""
    )
    running = RunningService(config, tmp_path, registry)
    tapped: list[int] = []
    running.service.tap.subscribe(lambda traces: tapped.append(span_count(traces)))
    try:
        send_genai_spans(running)
        count = len(SPANS)
        up = recorded.wait_for("traces", count, "recording/up")
        normalized = recorded.wait_for("traces", count, "recording/normalized")
        raw = recorded.wait_for("traces", count, "recording/raw")
        own, _ = parse_metrics(running.service.telemetry.render())
    finally:
        running.stop()
    # v1.41.0's name for cache writes became the newest in the normalised pipeline only.
    old, new = "gen_ai.usage.cache_creation.input_tokens", "gen_ai.usage.cache_write.input_tokens"
    assert sum(old in a for a in _attributes(up)) == 1
    assert _attributes(raw) == _attributes(up)
    assert not any(old in a for a in _attributes(normalized))
    assert sum(new in a for a in _attributes(normalized)) == sum(new in a for a in _attributes(up)) + 1
    assert own[("otelcol_exporter_sent_spans_total", frozenset({("exporter", "forward")}))] == count
    accepted = frozenset({("receiver", "forward"), ("transport", "connector")})
    assert own[("otelcol_receiver_accepted_spans_total", accepted)] == count
    assert sum(tapped) == count  # the live stream shows each span once, not once per pipeline it went through


def test_genai_metrics_flushes_at_shutdown_into_two_metrics_pipelines_through_their_processors(
    tmp_path: Path,
) -> None:
    registry, recorded = registry_with_recorder()
    config = (
        OTLP
        + """
processors:
  batch:
exporters:
  recording/batched:
  recording/direct:
connectors:
  genai_metrics:
    interval: 1h  # only the shutdown emits
service:
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [genai_metrics]
    metrics/batched:
      receivers: [genai_metrics]
      processors: [batch]
      exporters: [recording/batched]
    metrics/direct:
      receivers: [genai_metrics]
      exporters: [recording/direct]
"""
    )
    running = RunningService(config, tmp_path, registry)
    try:
        send_genai_spans(running)
    finally:
        running.stop()
    batched: MetricsData = recorded.wait_for("metrics", 1, "recording/batched")
    direct: MetricsData = recorded.wait_for("metrics", 1, "recording/direct")
    assert batched == direct
    names = {m.name for rm in direct.resource_metrics for sm in rm.scope_metrics for m in sm.metrics}
    assert "gen_ai.client.inference.duration" in names


def test_levels_put_each_connector_between_the_pipelines_it_joins() -> None:

    config = parse_config(
        yaml.safe_load(
            OTLP
            + """
exporters:
  debug:
connectors:
  forward:
  genai_metrics:
service:
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [forward]
    traces/b:
      receivers: [forward]
      exporters: [genai_metrics]
    metrics:
      receivers: [otlp, genai_metrics]
      exporters: [debug]
"""
        ),
        default_registry(),
    )
    registry = default_registry()
    graph = PipelineGraph(
        config.pipelines, {cid: registry.connectors[cid.type] for cid in config.components["connectors"]}
    )
    forward = ConnectorInstance(ComponentID("forward"), "traces", "traces")
    genai = ConnectorInstance(ComponentID("genai_metrics"), "traces", "metrics")
    assert graph.levels() == [["traces"], [forward], ["traces/b"], [genai], ["metrics"]]
    assert graph.feeds == {forward: ["traces/b"], genai: ["metrics"]}
    assert graph.cycles() == []


def test_levels_refuse_a_cycle() -> None:
    forward = ComponentID("forward")
    looping = PipelineConfig("traces", (ComponentID("otlp"), forward), (), (ComponentID("debug"), forward), "traces")
    graph = PipelineGraph({"traces": looping}, {forward: default_registry().connectors["forward"]})
    assert graph.cycles() == [["traces", "forward", "traces"]]
    with pytest.raises(ValueError, match="cycle"):
        graph.levels()
