"""Connector mistakes in a config: each one line naming its YAML path, as the OpenTelemetry Collector refuses them."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
import yaml

import connectors.forward
from collector.config.problems import ConfigError
from collector.config.service import parse_config
from collector.registry import Registry, default_registry

RECEIVERS_AND_EXPORTERS = """
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:0
exporters:
  debug:
"""


def _problems(yaml_text: str, registry: Registry | None = None) -> list[str]:
    with pytest.raises(ConfigError) as error:
        parse_config(yaml.safe_load(RECEIVERS_AND_EXPORTERS + yaml_text), registry or default_registry())
    return [str(problem) for problem in error.value.problems]


CASES: list[tuple[str, str, list[str]]] = [
    (
        "used as an exporter only",
        """
connectors:
  forward:
service:
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [debug, forward]
""",
        [
            'service.pipelines.traces.exporters[1]: connector "forward" is used as exporter only; '
            "list it as receiver of a traces pipeline (receivers)"
        ],
    ),
    (
        "used as a receiver only",
        """
connectors:
  genai_metrics:
service:
  pipelines:
    metrics:
      receivers: [genai_metrics]
      exporters: [debug]
""",
        [
            'service.pipelines.metrics.receivers[0]: connector "genai_metrics" is used as receiver only; '
            "list it as exporter of a traces pipeline (exporters)"
        ],
    ),
    (
        "a signal it does not take",
        """
connectors:
  genai_metrics:
service:
  pipelines:
    logs:
      receivers: [otlp]
      exporters: [genai_metrics]
    metrics:
      receivers: [genai_metrics]
      exporters: [debug]
""",
        [
            'service.pipelines.logs.exporters[0]: connector "genai_metrics" does not take logs; '
            "it joins traces to metrics"
        ],
    ),
    (
        "a pair of signals it does not join",
        """
connectors:
  genai_metrics:
service:
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [genai_metrics]
    traces/out:
      receivers: [genai_metrics]
      exporters: [debug]
""",
        [
            'service.pipelines.traces/out.receivers[0]: connector "genai_metrics" does not emit traces; '
            "it joins traces to metrics"
        ],
    ),
    (
        "no pair of the pipelines it is in that it joins",
        """
connectors:
  forward:
service:
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [forward]
    logs:
      receivers: [forward]
      exporters: [debug]
""",
        [
            'service.pipelines.traces.exporters[0]: connector "forward" as exporter of a traces pipeline has no '
            "receiver pipeline of a signal it joins to traces (it joins traces to traces, logs to logs, metrics "
            "to metrics; its receiver pipelines carry logs)",
            'service.pipelines.logs.receivers[0]: connector "forward" as receiver of a logs pipeline has no '
            "exporter pipeline of a signal it joins to logs (it joins traces to traces, logs to logs, metrics to "
            "metrics; its exporter pipelines carry traces)",
        ],
    ),
    (
        "an unknown connector type",
        """
connectors:
  spanmetrics:
service:
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [debug]
""",
        [
            'connectors.spanmetrics: unknown connector type "spanmetrics"; '
            "known: forward, genai_evaluation, genai_metrics"
        ],
    ),
    (
        "a cycle through two connectors",
        """
connectors:
  forward:
  forward/back:
service:
  pipelines:
    traces:
      receivers: [otlp, forward/back]
      exporters: [debug, forward]
    traces/again:
      receivers: [forward]
      exporters: [forward/back]
""",
        [
            "service.pipelines.traces.exporters[1]: the pipelines form a cycle through connectors "
            "(traces → forward → traces/again → forward/back → traces); data would go round forever"
        ],
    ),
    (
        "a pipeline feeding itself",
        """
connectors:
  forward:
service:
  pipelines:
    logs:
      receivers: [otlp, forward]
      exporters: [debug, forward]
""",
        [
            "service.pipelines.logs.exporters[1]: the pipelines form a cycle through connectors "
            "(logs → forward → logs); data would go round forever"
        ],
    ),
    (
        "a connector that is not defined",
        """
service:
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [forward]
""",
        ['service.pipelines.traces.exporters[0]: exporter "forward" is not defined in the exporters section'],
    ),
]


@pytest.mark.parametrize(("yaml_text", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_each_connector_mistake_is_one_line_naming_its_yaml_path(yaml_text: str, expected: list[str]) -> None:
    assert _problems(yaml_text) == expected


def test_a_connector_and_an_exporter_may_not_share_an_id() -> None:
    registry: Any = default_registry()
    registry = dataclasses.replace(registry, connectors={**registry.connectors, "debug": connectors.forward.factory})
    problems = _problems(
        """
connectors:
  debug:
service:
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [debug]
""",
        registry,
    )
    assert problems[0] == (
        'connectors.debug: "debug" is also the id of exporter exporters.debug; a pipeline could not tell them '
        "apart: rename one"
    )


def test_a_connector_joining_pipelines_is_valid() -> None:
    config = parse_config(
        yaml.safe_load(
            RECEIVERS_AND_EXPORTERS
            + """
connectors:
  genai_metrics:
  forward:
service:
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [forward, genai_metrics]
    traces/copy:
      receivers: [forward]
      exporters: [debug]
    metrics:
      receivers: [genai_metrics]
      exporters: [debug]
"""
        ),
        default_registry(),
    )
    assert [str(c.id) for c in config.used("connectors")] == ["forward", "genai_metrics"]
    assert [str(c.id) for c in config.used("exporters")] == ["debug"]
    assert [str(c.id) for c in config.used("receivers")] == ["otlp"]
