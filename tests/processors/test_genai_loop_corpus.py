"""genai_loop_detection on the recorded agent traces: the manifest's findings exactly, in order and out of it.

Each recording runs through genai_normalize then genai_loop_detection, as in the
shipped pipeline: the framework recordings (OpenInference spans of the OpenAI
Agents SDK) are only understood once normalised.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import TracesData

from collector.component import ComponentSettings
from collector.config.decode import decode
from collector.findings import findings_on
from processors.genai_loop_detection import GenAiLoopDetectionProcessor
from processors.genai_loop_detection.config import GenAiLoopDetectionConfig
from processors.genai_normalize import GenAiNormalizeConfig, GenAiNormalizeProcessor
from tests.conftest import RecordingConsumer
from tests.data import agent_traces

RECORDINGS = agent_traces.manifest()
# Found: (detector, scope, span id hex).
Found = list[tuple[str, str, str]]


def _run(
    make_settings: Callable[..., ComponentSettings], requests: list[ExportTraceServiceRequest], config: dict[str, Any]
) -> Found:
    downstream = RecordingConsumer()
    detector = GenAiLoopDetectionProcessor(
        make_settings("genai_loop_detection", "processor"),
        decode(GenAiLoopDetectionConfig, config, "processors.genai_loop_detection"),
        downstream,
    )
    normalize = GenAiNormalizeProcessor(make_settings("genai_normalize", "processor"), GenAiNormalizeConfig(), detector)

    async def send() -> None:
        for request in requests:
            await normalize.consume(TracesData(resource_spans=request.resource_spans))

    asyncio.run(send())
    return [
        (finding["gen_ai.security.detector.id"], str(finding["gen_ai.security.loop.scope"]), span.span_id.hex())
        for span in downstream.spans()
        for finding in findings_on(span)
    ]


def _one_request_per_span(request: ExportTraceServiceRequest) -> list[ExportTraceServiceRequest]:
    """Each span in its own request, in file order (the order spans ended), as a SimpleSpanProcessor sends them."""
    requests: list[ExportTraceServiceRequest] = []
    for resource_spans in request.resource_spans:
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                single = ExportTraceServiceRequest()
                copy = single.resource_spans.add(resource=resource_spans.resource, schema_url=resource_spans.schema_url)
                copy.scope_spans.add(scope=scope_spans.scope).spans.append(span)
                requests.append(single)
    return requests


def _configs(recording: agent_traces.Recording) -> list[dict[str, Any]]:
    """The default settings, then each distinct setting the manifest's findings name."""
    configs: list[dict[str, Any]] = [{}]
    for finding in recording.findings:
        if finding.config and dict(finding.config) not in configs:
            configs.append(dict(finding.config))
    return configs


@pytest.mark.parametrize("recording", RECORDINGS, ids=[r.name for r in RECORDINGS])
def test_findings_match_the_manifest_with_spans_in_the_order_they_ended(
    make_settings: Callable[..., ComponentSettings], recording: agent_traces.Recording
) -> None:
    request = agent_traces.load(recording.name)
    for config in _configs(recording):
        expected = sorted((f.detector, f.scope, f.span_id) for f in recording.findings if dict(f.config) == config)
        assert sorted(_run(make_settings, _one_request_per_span(request), config)) == expected, config


ORDER_FREE = {"repeated_tool_call", "call_cycle", "repeated_request", "ignored_tool_error"}


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("recording", RECORDINGS, ids=[r.name for r in RECORDINGS])
def test_out_of_order_and_across_requests_the_same_loops_are_found(
    make_settings: Callable[..., ComponentSettings], recording: agent_traces.Recording, seed: int
) -> None:
    request = agent_traces.load(recording.name)
    parts = agent_traces.split_shuffled(request, parts=3, seed=seed)
    for config in _configs(recording):
        found = _run(make_settings, parts, config)
        expected = Counter(
            (f.detector, f.scope)
            for f in recording.findings
            if dict(f.config) == config and (f.detector in ORDER_FREE or f.detector.endswith("_budget"))
        )
        got = Counter((detector, scope) for detector, scope, _ in found if detector != "unexecuted_tool_call")
        assert got == expected, config
