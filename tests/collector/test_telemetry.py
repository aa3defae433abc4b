"""Self-metrics in the Prometheus text format."""

from __future__ import annotations

from collector.telemetry import Telemetry


def test_counters_and_gauges_render_in_prometheus_text() -> None:
    telemetry = Telemetry()
    telemetry.add("otelcol_receiver_accepted_spans", 3, "Spans accepted.", receiver="otlp", transport="http")
    telemetry.add("otelcol_receiver_accepted_spans", 2, receiver="otlp", transport="http")
    telemetry.gauge("otelcol_exporter_queue_size", lambda: 7.0, exporter='click"house')
    assert telemetry.render() == (
        "# TYPE otelcol_exporter_queue_size gauge\n"
        'otelcol_exporter_queue_size{exporter="click\\"house"} 7\n'
        "# HELP otelcol_receiver_accepted_spans_total Spans accepted.\n"
        "# TYPE otelcol_receiver_accepted_spans_total counter\n"
        'otelcol_receiver_accepted_spans_total{receiver="otlp",transport="http"} 5\n'
    )
    assert telemetry.value("otelcol_receiver_accepted_spans", receiver="otlp", transport="http") == 5
    assert telemetry.value("otelcol_exporter_queue_size", exporter='click"house') == 7
    assert telemetry.value("never_touched") == 0
