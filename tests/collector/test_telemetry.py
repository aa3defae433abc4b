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


def test_a_workers_series_add_to_the_main_registry_and_its_counters_outlive_it() -> None:
    worker, main = Telemetry(), Telemetry()
    main.add("genai_security_findings", 1, detector="email")
    open_runs = [4.0]
    worker.add("genai_security_findings", 2, "Findings.", detector="email")
    worker.gauge("genai_loop_detection_open_runs", lambda: open_runs[0], scope="trace")
    main.absorb("worker-0", worker.changes())
    assert main.value("genai_security_findings", detector="email") == 3
    assert main.value("genai_loop_detection_open_runs", scope="trace") == 4

    # Only what moved travels the next time, and it replaces what the worker said before.
    worker.add("genai_security_findings", 5, detector="email")
    open_runs[0] = 1.0
    moved = worker.changes()
    assert moved == {
        "genai_security_findings": ("counter", "Findings.", {(("detector", "email"),): 7.0}),
        "genai_loop_detection_open_runs": ("gauge", "", {(("scope", "trace"),): 1.0}),
    }
    assert worker.changes() == {}
    main.absorb("worker-0", moved)
    assert main.value("genai_security_findings", detector="email") == 8
    assert "genai_security_findings_total{detector=\"email\"} 8" in main.render()

    # The worker exits: what it counted stays, what it held does not.
    main.retire("worker-0")
    assert main.value("genai_security_findings", detector="email") == 8
    assert main.value("genai_loop_detection_open_runs", scope="trace") == 0
    main.absorb("worker-0-again", {"genai_security_findings": ("counter", "", {(("detector", "email"),): 1.0})})
    assert main.value("genai_security_findings", detector="email") == 9
