"""The debug exporter prints what reaches it at the chosen verbosity, for every signal."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from opentelemetry.proto.logs.v1.logs_pb2 import LogsData
from opentelemetry.proto.metrics.v1.metrics_pb2 import MetricsData

from collector.component import ComponentSettings
from collector.generated_metrics import EXPORTER_SENT_LOG_RECORDS, EXPORTER_SENT_METRIC_POINTS
from exporters.debug import DebugConfig, DebugExporter
from tests.conftest import make_traces


@pytest.mark.parametrize(("verbosity", "lines"), [("basic", 1), ("normal", 3), ("detailed", 2)])
def test_verbosity_levels(
    verbosity: str, lines: int, make_settings: Callable[..., ComponentSettings], caplog: pytest.LogCaptureFixture
) -> None:
    exporter = DebugExporter(make_settings("debug"), DebugConfig(verbosity=verbosity))  # type: ignore[arg-type]
    traces = make_traces(2, name="chat gpt-4o")
    with caplog.at_level("INFO"):
        asyncio.run(exporter.consume(traces))
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == lines
    assert messages[0] == "Traces: 1 resource spans, 2 spans"
    span = traces.resource_spans[0].scope_spans[0].spans[0]
    if verbosity == "normal":
        assert messages[1] == f"  chat gpt-4o trace_id={span.trace_id.hex()} span_id={span.span_id.hex()}"
    if verbosity == "detailed":
        assert 'name: "chat gpt-4o"' in messages[1] and 'string_value: "test-service"' in messages[1]


def _logs() -> LogsData:
    logs = LogsData()
    scope = logs.resource_logs.add().scope_logs.add()
    record = scope.log_records.add()
    record.severity_text, record.body.string_value, record.trace_id = "ERROR", "model timed out", bytes(range(16))
    scope.log_records.add().body.int_value = 7  # no severity text: its number is shown
    return logs


def _metrics() -> MetricsData:
    metrics = MetricsData()
    metric = metrics.resource_metrics.add().scope_metrics.add().metrics.add()
    metric.name = "gen_ai.client.token.usage"
    metric.histogram.data_points.add().count = 3
    metric.histogram.data_points.add().count = 1
    return metrics


def test_logs_and_metrics_print_at_each_verbosity(
    make_settings: Callable[..., ComponentSettings], caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings("debug")
    with caplog.at_level("INFO"):
        asyncio.run(DebugExporter(settings, DebugConfig(verbosity="normal"), "logs").consume(_logs()))
        asyncio.run(DebugExporter(settings, DebugConfig(verbosity="normal"), "metrics").consume(_metrics()))
        asyncio.run(DebugExporter(settings, DebugConfig(verbosity="detailed"), "logs").consume(_logs()))
    messages = [r.getMessage() for r in caplog.records]
    assert messages[:6] == [
        "Logs: 1 resource logs, 2 log records",
        f"  ERROR 'model timed out' trace_id={bytes(range(16)).hex()}",
        "  UNSPECIFIED 7",
        "Metrics: 1 resource metrics, 1 metrics, 2 data points",
        "  gen_ai.client.token.usage histogram 2 data points",
        "Logs: 1 resource logs, 2 log records",
    ]
    assert 'string_value: "model timed out"' in messages[6]
    sent = settings.telemetry
    assert sent.value(EXPORTER_SENT_LOG_RECORDS.name, exporter="debug") == 4
    assert sent.value(EXPORTER_SENT_METRIC_POINTS.name, exporter="debug") == 2
