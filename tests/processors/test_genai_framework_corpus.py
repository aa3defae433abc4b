"""Recorded agent frameworks through the shipped GenAI processors: no finding on healthy runs, the loop on looping ones.

Every run of tests/data/framework_traces goes through genai_normalize, genai_cost, genai_security and
genai_loop_detection (the shipped order and settings), one span per request in the order the spans ended, as
an SDK's exporter delivers them. Twice: the framework's own spans alone, and together with the proxy's spans
for the same model calls (the calls sent through a live proxy again; the proxy's span is a child of the
framework's span that made the call, where the framework sent a traceparent). The proxy's spans carry the
response ids the framework's spans recorded (the mock answers a replayed call with the id it gave while
recording). Once a run's spans have passed, its collector's clock moves past ``late_span_wait`` and one more
(empty) request passes, as later traffic would: a finding raised then rides on a span of its own, under the span
it concerns. The false-positive rate of each detector over the healthy runs and the recall on the looping ones
are printed at the end of the run.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import replace

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span, TracesData

from collector.component import ComponentSettings
from collector.config.types import HostPort
from collector.findings import DETECTOR, FINDING_EVENT, findings_on
from processors.genai_cost import GenAiCostProcessor
from processors.genai_cost.config import GenAiCostConfig
from processors.genai_dedup import GenAiDedupProcessor
from processors.genai_dedup.config import GenAiDedupConfig
from processors.genai_loop_detection import GenAiLoopDetectionProcessor
from processors.genai_loop_detection.config import GenAiLoopDetectionConfig
from processors.genai_normalize import GenAiNormalizeConfig, GenAiNormalizeProcessor
from processors.genai_security import GenAiSecurityProcessor
from processors.genai_security.config import GenAiSecurityConfig
from proxy.config import ProxyConfig
from tests.conftest import ManualClock, RecordingConsumer
from tests.data import framework_traces
from tests.data.framework_traces.replay import replay
from tests.proxy.mock_upstream import MockUpstream, serve
from tests.proxy.support import RunningProxy, running_proxy, upstreams_for

RUNS = framework_traces.manifest()
MIN_HEALTHY_RUNS = 50
REPORT: list[str] = []
# (variant, run name) → the findings raised: (detector, scope, span id hex)
RESULTS: dict[tuple[str, str], list[tuple[str, str, str]]] = {}
VARIANTS = ("framework", "framework+proxy")


@pytest.fixture(scope="module")
def proxy() -> Iterator[RunningProxy]:
    mock = MockUpstream()
    with serve(mock) as upstream:
        config = ProxyConfig(endpoint=HostPort("127.0.0.1", 0), upstreams=upstreams_for(upstream), capture_content=True)
        with running_proxy(replace(config)) as running:
            yield running


def _pipeline(
    make_settings: Callable[..., ComponentSettings], downstream: RecordingConsumer, clock: ManualClock
) -> GenAiNormalizeProcessor:
    """The shipped order: normalize, dedup, cost, security, loop detection."""
    loops = GenAiLoopDetectionProcessor(
        make_settings("genai_loop_detection", "processor"), GenAiLoopDetectionConfig(), downstream, clock
    )
    security = GenAiSecurityProcessor(
        make_settings("genai_security", "processor"), GenAiSecurityConfig(actions={"secret": "mask"}), loops
    )
    cost = GenAiCostProcessor(make_settings("genai_cost", "processor"), GenAiCostConfig(), security)
    dedup = GenAiDedupProcessor(make_settings("genai_dedup", "processor"), GenAiDedupConfig(), cost)
    return GenAiNormalizeProcessor(make_settings("genai_normalize", "processor"), GenAiNormalizeConfig(), dedup)


def _one_span_per_request(request: ExportTraceServiceRequest) -> list[TracesData]:
    traces = []
    for resource_spans in request.resource_spans:
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                single = TracesData()
                copy = single.resource_spans.add(resource=resource_spans.resource, schema_url=resource_spans.schema_url)
                copy.scope_spans.add(scope=scope_spans.scope).spans.append(span)
                traces.append(single)
    return traces


def _proxy_spans(proxy: RunningProxy, recording: framework_traces.Recording) -> ExportTraceServiceRequest:
    before = len(proxy.sink.spans)
    calls = framework_traces.calls_of(recording)
    replay(calls, proxy.url)
    spans = proxy.sink.wait(before + len(calls))[before:]
    return encode_spans(spans)


def _findings(
    make_settings: Callable[..., ComponentSettings], requests: list[TracesData]
) -> list[tuple[str, str, str]]:
    downstream = RecordingConsumer()
    clock = ManualClock()
    pipeline = _pipeline(make_settings, downstream, clock)

    async def send() -> None:
        for traces in requests:
            await pipeline.consume(traces)
        clock.now += GenAiLoopDetectionConfig().late_span_wait + 1
        await pipeline.consume(TracesData())

    asyncio.run(send())
    return [
        (str(finding[DETECTOR]), str(finding.get("gen_ai.security.loop.scope", "")), _concerned(span).hex())
        for span in downstream.spans()
        for finding in findings_on(span)
    ]


def _concerned(span: Span) -> bytes:
    """The span a finding is about: the one it is on, or for a finding on a span of its own, that span's parent."""
    return span.parent_span_id if span.name == FINDING_EVENT else span.span_id


def test_the_corpus_holds_enough_healthy_runs_of_every_framework() -> None:
    healthy = [run for run in RUNS if run.verdict == "healthy"]
    assert len(healthy) >= MIN_HEALTHY_RUNS
    assert set(framework_traces.frameworks()) == {run.framework for run in RUNS}
    for framework in framework_traces.frameworks():
        verdicts = {run.verdict for run in RUNS if run.framework == framework}
        assert verdicts == {"healthy", "looping"}, framework


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("recording", RUNS, ids=[run.name for run in RUNS])
def test_findings_are_exactly_the_expected_ones(
    make_settings: Callable[..., ComponentSettings],
    proxy: RunningProxy,
    recording: framework_traces.Recording,
    variant: str,
) -> None:
    requests = _one_span_per_request(framework_traces.spans_of(recording))
    if variant == "framework+proxy":
        # The proxy's spans arrive as the calls complete, before the framework's exporter sends its batch.
        requests = _one_span_per_request(_proxy_spans(proxy, recording)) + requests
    found = _findings(make_settings, requests)
    RESULTS[(variant, recording.name)] = found
    expected = sorted((str(f["detector"]), str(f["scope"]), str(f["span_id"])) for f in recording.findings)
    if variant == "framework+proxy":
        # The detectors count: a loop may be named on either span of a call, and is rightly raised again in the
        # proxy's own trace or conversation when the calls carried no traceparent or the proxy grouped them.
        found, expected = sorted({(f[0], "", "") for f in found}), sorted({(f[0], "", "") for f in expected})
    assert sorted(found) == expected


def test_false_positive_rate_and_recall_per_detector() -> None:
    """The figures, over what the parametrised test saw (run after it, as pytest orders this module).

    Per detector that fired or was expected anywhere (no other detector fired): on the healthy runs, how many
    raised it (false positives); on the looping runs, how many of its expected findings were raised (recall).
    """
    healthy = [run for run in RUNS if run.verdict == "healthy"]
    looping = [run for run in RUNS if run.verdict == "looping"]
    for variant in VARIANTS:
        results = {name: found for (v, name), found in RESULTS.items() if v == variant}
        if len(results) != len(RUNS):
            pytest.skip("the corpus test did not run in full")
        flagged: Counter[str] = Counter(detector for run in healthy for detector in {f[0] for f in results[run.name]})
        expected: Counter[str] = Counter()
        recalled: Counter[str] = Counter()
        for run in looping:
            raised = {f[:2] for f in results[run.name]}
            for finding in run.findings:
                expected[str(finding["detector"])] += 1
                recalled[str(finding["detector"])] += (str(finding["detector"]), str(finding["scope"])) in raised
        REPORT.append(f"{variant}: {len(healthy)} healthy runs, {len(looping)} looping runs")
        REPORT.append(f"  {'detector':<24} {'false positives (healthy)':>26} {'recall (looping)':>18}")
        for detector in sorted(set(flagged) | set(expected)):
            fp = f"{flagged[detector]}/{len(healthy)} = {flagged[detector] / len(healthy):.3f}"
            recall = f"{recalled[detector]}/{expected[detector]}" if expected[detector] else "-"
            REPORT.append(f"  {detector:<24} {fp:>26} {recall:>18}")
        runs_recalled = sum(1 for run in looping if all(
            (str(f["detector"]), str(f["scope"])) in {g[:2] for g in results[run.name]} for f in run.findings
        ))  # fmt: skip
        REPORT.append(f"  looping runs with every expected finding: {runs_recalled}/{len(looping)}")
        assert not flagged  # no detector fires on a healthy run
        assert recalled == expected


def pytest_report_table() -> list[str]:
    """The table the test run prints (see tests/conftest.py's terminal summary)."""
    return REPORT
