"""The agent-trace corpus is whole: every file loads, and every span the manifest names is in its file."""

from __future__ import annotations

from collections import Counter

import pytest
from google.protobuf import json_format
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

from tests.data import agent_traces
from tests.data.agent_traces import make_traces

RECORDINGS = agent_traces.manifest()
NAMES = [recording.name for recording in RECORDINGS]
DETECTORS = {
    "repeated_tool_call",
    "call_cycle",
    "repeated_request",
    "step_budget",
    "token_budget",
    "cost_budget",
    "unexecuted_tool_call",
    "ignored_tool_error",
    "latency_outlier",
}


def test_manifest_covers_every_file() -> None:
    files = {path.stem for path in agent_traces.DIRECTORY.glob("*.json") if path.name != "manifest.json"}
    assert files == set(NAMES)
    assert len(NAMES) == len(set(NAMES))
    verdicts = Counter(recording.verdict for recording in RECORDINGS)
    assert verdicts["healthy"] >= 4 and verdicts["looping"] >= 7 and verdicts["over_budget"] >= 1
    assert any(recording.source != make_traces.SOURCE for recording in RECORDINGS)


@pytest.mark.parametrize("name", NAMES)
def test_recording_matches_its_manifest_entry(name: str) -> None:
    recording = agent_traces.recording(name)
    request = agent_traces.load(name)
    spans = agent_traces.spans(request)
    by_id = {span.span_id.hex(): span for span in spans}
    assert len(by_id) == len(spans) == recording.totals["spans"]
    assert Counter(span.name for span in spans) == Counter(recording.span_names)
    assert list(
        dict.fromkeys(span.trace_id.hex() for span in sorted(spans, key=lambda s: s.start_time_unix_nano))
    ) == list(recording.trace_ids)
    for span in spans:  # every parent is in the file
        assert not span.parent_span_id or span.parent_span_id.hex() in by_id
    assert (recording.verdict == "healthy") == (not recording.findings)
    for finding in recording.findings:
        assert finding.detector in DETECTORS
        assert finding.scope in ("trace", "conversation")
        found = by_id.get(finding.span_id)
        assert found is not None, f"{finding.detector}: no span {finding.span_id} in {name}"
        assert found.name == finding.span_name
        assert found.trace_id.hex() == finding.trace_id
    if recording.verdict == "over_budget":
        assert recording.findings and not recording.findings_with_defaults()


@pytest.mark.parametrize("name", NAMES)
def test_files_are_canonical_otlp_json(name: str) -> None:
    # Hex ids and integer enums, as OTLP/JSON has them: writing the loaded request gives the same text back.
    text = (agent_traces.DIRECTORY / f"{name}.json").read_text(encoding="utf-8")
    assert agent_traces.dumps(agent_traces.loads(text)) == text


def test_framework_recordings_hold_the_instrumentations_spans() -> None:
    framework = [recording for recording in RECORDINGS if recording.source != make_traces.SOURCE]
    assert framework
    for recording in framework:
        assert recording.packages
        request = agent_traces.load(recording.name)
        scopes = {scope.scope.name for resource in request.resource_spans for scope in resource.scope_spans}
        assert scopes == {"openinference.instrumentation.openai_agents"}
        kinds = Counter(
            attribute.value.string_value
            for span in agent_traces.spans(request)
            for attribute in span.attributes
            if attribute.key == "openinference.span.kind"
        )
        # Unnormalised, as emitted: no gen_ai.operation.name yet.
        assert not any(
            attribute.key == "gen_ai.operation.name"
            for span in agent_traces.spans(request)
            for attribute in span.attributes
        )
        assert kinds["LLM"] == recording.totals["llm_calls"] and kinds["TOOL"] == recording.totals["tool_spans"]
        assert kinds["AGENT"] >= 2
        names = {span.name for span in agent_traces.spans(request)}
        assert {"Agent workflow", "Weather agent", "response", "get_weather"} <= names


def test_split_shuffled_deals_every_span_once() -> None:
    request = agent_traces.load("loop_call_cycle")
    original = [span.span_id for span in agent_traces.spans(request)]
    parts = agent_traces.split_shuffled(request, parts=4, seed=3)
    assert len(parts) == 4 and all(agent_traces.spans(part) for part in parts)
    dealt = [span.span_id for part in parts for span in agent_traces.spans(part)]
    assert sorted(dealt) == sorted(original) and dealt != original
    again = agent_traces.split_shuffled(request, parts=4, seed=3)
    assert [json_format.MessageToDict(p) for p in again] == [json_format.MessageToDict(p) for p in parts]
    for part in parts:
        resource = part.resource_spans[0]
        assert resource.resource == request.resource_spans[0].resource
        assert resource.scope_spans[0].scope == request.resource_spans[0].scope_spans[0].scope
    assert [len(agent_traces.spans(p)) for p in agent_traces.split_shuffled(request, parts=40)].count(0) > 0


@pytest.mark.parametrize("scenario", make_traces.SCENARIOS, ids=lambda s: s.__name__)
def test_synthetic_recordings_are_up_to_date(scenario: make_traces.Scenario) -> None:
    # Fixed seeds and times: building a scenario again gives its file (else re-run make_traces).
    book = scenario()
    try:
        rebuilt = agent_traces.dumps(encode_spans(book.finished()))
    finally:
        book.provider.shutdown()
    assert rebuilt == (agent_traces.DIRECTORY / f"{book.name}.json").read_text(encoding="utf-8")
