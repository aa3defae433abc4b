"""Self-metrics: declared counters and gauges, rendered in the Prometheus text format, summed across processes."""

from __future__ import annotations

import pytest

from collector.extensions.api.generated_metrics import ApiSelfMetrics
from collector.generated_metrics import EXPORTER_QUEUE_SIZE, RECEIVER_REFUSED_SPANS, PipelineSelfMetrics
from collector.runtime import frames
from collector.telemetry import Counter, Gauge, MetricSpec, Snapshot, Telemetry
from processors.genai_loop_detection.generated_metrics import LOOP_DETECTION_OPEN_RUNS, GenaiLoopDetectionSelfMetrics
from processors.genai_security.generated_metrics import SECURITY_FINDINGS, GenaiSecuritySelfMetrics


def test_counters_and_gauges_render_with_their_help_type_and_unit() -> None:
    telemetry = Telemetry()
    pipeline, api = PipelineSelfMetrics(telemetry), ApiSelfMetrics(telemetry)
    accepted = pipeline.receiver_accepted_spans.bind(receiver="otlp", transport="http")
    accepted.add(3)
    pipeline.receiver_accepted_spans.add(2, receiver="otlp", transport="http")
    pipeline.exporter_queue_size.watch(lambda: 7.0, exporter='click"house')
    api.api_request_seconds.add(0.25, operation="search")
    assert telemetry.render() == (
        "# HELP genai_api_request_seconds_total Seconds spent answering api requests, by operation "
        "(divide by genai_api_requests).\n"
        "# TYPE genai_api_request_seconds_total counter\n"
        "# UNIT genai_api_request_seconds_total seconds\n"
        'genai_api_request_seconds_total{operation="search"} 0.25\n'
        "# HELP otelcol_exporter_queue_size Items the sending queue holds, waiting and in flight: spans, or (with "
        "data_type) log records or metric points.\n"
        "# TYPE otelcol_exporter_queue_size gauge\n"
        'otelcol_exporter_queue_size{exporter="click\\"house"} 7\n'
        "# HELP otelcol_receiver_accepted_spans_total Spans a receiver handed to its pipeline and every exporter's "
        "queue took.\n"
        "# TYPE otelcol_receiver_accepted_spans_total counter\n"
        'otelcol_receiver_accepted_spans_total{receiver="otlp",transport="http"} 5\n'
    )
    assert telemetry.value(EXPORTER_QUEUE_SIZE.name, exporter='click"house') == 7
    assert telemetry.value("never_declared") == 0


def test_an_optional_label_is_carried_only_by_the_series_given_it() -> None:
    telemetry = Telemetry()
    refused = PipelineSelfMetrics(telemetry).receiver_refused_spans
    refused.add(2, receiver="otlp", transport="grpc")
    refused.add(1, receiver="otlp", transport="grpc", reason="max_attributes")
    assert telemetry.value(RECEIVER_REFUSED_SPANS.name, receiver="otlp", transport="grpc") == 2
    text = telemetry.render()
    assert 'otelcol_receiver_refused_spans_total{receiver="otlp",transport="grpc"} 2\n' in text
    assert 'otelcol_receiver_refused_spans_total{reason="max_attributes",receiver="otlp",transport="grpc"} 1\n' in text


def test_a_label_the_metric_does_not_declare_is_refused_at_the_call() -> None:
    findings = GenaiSecuritySelfMetrics(Telemetry()).security_findings
    with pytest.raises(TypeError):
        findings.add(1, processor="genai_security", detector="email", tenant="a")  # type: ignore[call-arg]


def test_one_name_declared_twice_differently_or_as_the_other_kind_is_refused() -> None:
    telemetry = Telemetry()
    GenaiSecuritySelfMetrics(telemetry)
    GenaiSecuritySelfMetrics(telemetry)  # the same declaration again is the same family
    other_help = MetricSpec(SECURITY_FINDINGS.name, "counter", "Something else.", "{findings}", ("detector",))
    with pytest.raises(ValueError, match="declared twice"):
        Counter(telemetry, other_help)
    with pytest.raises(ValueError, match="not a gauge"):
        Gauge(telemetry, SECURITY_FINDINGS)


def test_a_workers_series_cross_processes_add_up_and_its_counters_outlive_it() -> None:
    worker, main = Telemetry(), Telemetry()
    GenaiSecuritySelfMetrics(main).security_findings.add(1, processor="genai_security", detector="email")
    findings = GenaiSecuritySelfMetrics(worker).security_findings.bind(processor="genai_security", detector="email")
    open_runs = [4.0]
    loops = GenaiLoopDetectionSelfMetrics(worker)
    loops.loop_detection_open_runs.watch(lambda: open_runs[0], processor="genai_loop_detection", scope="trace")
    findings.add(2)

    def send(changes: Snapshot) -> Snapshot:
        """The changes as a worker's TELEMETRY frame carries them to the main process (pickled)."""
        return frames.read_result(b"".join(frames.telemetry_update(changes))).telemetry

    main.absorb("worker-0", send(worker.changes()))
    findings_labels = {"processor": "genai_security", "detector": "email"}
    runs_labels = {"processor": "genai_loop_detection", "scope": "trace"}
    assert main.value(SECURITY_FINDINGS.name, **findings_labels) == 3
    assert main.value(LOOP_DETECTION_OPEN_RUNS.name, **runs_labels) == 4
    # The main process never declared the loop detector's gauge; its HELP crossed with the series.
    assert f"# HELP genai_loop_detection_open_runs {LOOP_DETECTION_OPEN_RUNS.help}\n" in main.render()

    # Only what moved travels the next time, and it replaces what the worker said before.
    findings.add(5)
    open_runs[0] = 1.0
    moved = worker.changes()
    assert moved == {
        SECURITY_FINDINGS.name: (SECURITY_FINDINGS, {(("detector", "email"), ("processor", "genai_security")): 7.0}),
        LOOP_DETECTION_OPEN_RUNS.name: (
            LOOP_DETECTION_OPEN_RUNS,
            {(("processor", "genai_loop_detection"), ("scope", "trace")): 1.0},
        ),
    }
    assert worker.changes() == {}
    main.absorb("worker-0", send(moved))
    assert main.value(SECURITY_FINDINGS.name, **findings_labels) == 8
    assert 'genai_security_findings_total{detector="email",processor="genai_security"} 8' in main.render()

    # The worker exits: what it counted stays, what it held does not.
    main.retire("worker-0")
    assert main.value(SECURITY_FINDINGS.name, **findings_labels) == 8
    assert main.value(LOOP_DETECTION_OPEN_RUNS.name, **runs_labels) == 0
    again = Telemetry()
    GenaiSecuritySelfMetrics(again).security_findings.add(1, **findings_labels)
    main.absorb("worker-0-again", send(again.changes()))
    assert main.value(SECURITY_FINDINGS.name, **findings_labels) == 9
