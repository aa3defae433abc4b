"""The genai_metrics connector in a running collector: the shipped config on free ports, the fixed span set sent by
the SDK, the connector made to emit, the prometheus exporter read."""

from __future__ import annotations

from pathlib import Path

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace.export import SpanExportResult

from collector.component import ComponentID
from collector.pipeline_graph import ConnectorInstance
from tests.conftest import REPO_ROOT, RunningService
from tests.connectors.genai_spans import genai_spans

SHIPPED_CONFIG = REPO_ROOT / "otel-config.yaml"
WORKERS_SETTING = "${env:GENAI_COLLECTOR_WORKERS:-auto}"
GENAI_METRICS = ConnectorInstance(ComponentID("genai_metrics"), "traces", "metrics")


def run_shipped_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: int) -> RunningService:
    """The shipped config with ``workers`` worker processes, its endpoints on port 0 and its store under tmp_path."""
    for name in (
        "OTLP_GRPC_ENDPOINT", "OTLP_HTTP_ENDPOINT", "PROXY_ENDPOINT", "PROMETHEUS_ENDPOINT", "ADMIN_ENDPOINT",
        "API_ENDPOINT", "API_GRPC_ENDPOINT",
    ):  # fmt: skip
        monkeypatch.setenv(f"GENAI_COLLECTOR_{name}", "127.0.0.1:0")
    monkeypatch.setenv("GENAI_COLLECTOR_CLICKHOUSE_ENDPOINT", f"chdb://{tmp_path / 'clickhouse'}")
    monkeypatch.chdir(tmp_path)
    text = SHIPPED_CONFIG.read_text()
    assert WORKERS_SETTING in text
    # The environment gives strings; service.workers takes a number, so it is set in the text.
    return RunningService(text.replace(WORKERS_SETTING, str(workers)), tmp_path)


def send_genai_spans(running: RunningService) -> None:
    """The fixed span set through the OpenTelemetry SDK's OTLP/HTTP exporter; accepted before this returns."""
    exporter = OTLPSpanExporter(endpoint=f"http://127.0.0.1:{running.port()}/v1/traces")
    try:
        assert exporter.export(genai_spans()) == SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()


def emit_genai_metrics(running: RunningService) -> None:
    """Make the genai_metrics connector emit now, rather than at its next interval."""
    running._call(running.service.connectors[GENAI_METRICS].emit())  # type: ignore[attr-defined]


def prometheus_port(running: RunningService) -> int:
    return int(running.service.exporters_of("metrics")[ComponentID("prometheus")].port)  # type: ignore[attr-defined]


def exposed(running: RunningService, exporter: str = "prometheus") -> str:
    """What the prometheus exporter ``exporter`` of the metrics pipelines serves now (after a shutdown too)."""
    return str(running.service.exporters_of("metrics")[ComponentID.parse(exporter)].render())  # type: ignore[attr-defined]


def emitted_and_exposed(running: RunningService) -> str:
    """The connector's metrics emitted now, as the prometheus exporter then serves them."""
    emit_genai_metrics(running)
    return exposed(running)
