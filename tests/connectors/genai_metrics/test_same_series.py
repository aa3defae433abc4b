"""The shipped config exposes, through the genai_metrics connector and a metrics pipeline, the Prometheus series
the prometheus exporter exposed from spans before connectors existed (tests/data/genai_metrics), value for value.

The series differ only in what the exposition format's rules add: the ``otel_scope_*`` labels of the
connector's scope, and no empty-valued labels (which Prometheus treats as absent anyway).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.connectors.genai_metrics.support import (
    emit_genai_metrics,
    prometheus_port,
    run_shipped_config,
    send_genai_spans,
)
from tests.exporters.prometheus_text import families, samples, scrape

EXPECTED = Path(__file__).parents[2] / "data" / "genai_metrics" / "shipped_config.prom"


@pytest.mark.parametrize("workers", [0, 2])
def test_the_shipped_config_exposes_the_same_series_as_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: int
) -> None:
    running = run_shipped_config(tmp_path, monkeypatch, workers)
    try:
        send_genai_spans(running)
        emit_genai_metrics(running)
        text = scrape(prometheus_port(running)).text
    finally:
        running.stop()
    expected = EXPECTED.read_text()
    assert samples(text, without_scope=True) == samples(expected)
    assert families(text) == families(expected)
    scopes = {dict(labels)["otel_scope_name"] for _, labels in samples(text)}
    assert scopes == {"genai_collector.genai_metrics"}
