"""The framework recordings are whole: every run's traces and calls are in its framework's files, as emitted."""

from __future__ import annotations

from collections import Counter

import pytest

from tests.data import agent_traces, framework_traces

RUNS = framework_traces.manifest()
FRAMEWORKS = sorted(framework_traces.frameworks())
# The instrumentation scope every framework's spans come from (unnormalised, as its SDK exported them).
SCOPES = {
    "pydantic_ai": {"pydantic-ai"},
    "vercel_ai": {"ai"},
    "langgraph_openinference": {"openinference.instrumentation.langchain"},
    "langgraph_langsmith": {"langsmith"},
    "crewai": {"openinference.instrumentation.crewai", "openinference.instrumentation.openai"},
    "google_adk": {"gcp.vertex.agent", "com.anthropic.sdk.python"},
}


def test_every_framework_plays_the_whole_plan() -> None:
    assert set(FRAMEWORKS) == set(SCOPES)
    for framework in FRAMEWORKS:
        assert sorted(run.run for run in RUNS if run.framework == framework) == sorted(
            planned.name for planned in framework_traces.RUNS
        )
        assert framework_traces.frameworks()[framework]["packages"]
    names = {path.name for path in framework_traces.DIRECTORY.glob("*.json.gz")}
    expected = {f"{f}.json.gz" for f in FRAMEWORKS} | {f"{f}.calls.json.gz" for f in FRAMEWORKS}
    assert names == expected


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_runs_hold_their_traces_and_calls(framework: str) -> None:
    request = framework_traces.load_framework(framework)
    spans = agent_traces.spans(request)
    assert len({span.span_id for span in spans}) == len(spans)
    scopes = {scope.scope.name for resource in request.resource_spans for scope in resource.scope_spans}
    assert scopes == SCOPES[framework]
    runs = [run for run in RUNS if run.framework == framework]
    assert sum(run.spans for run in runs) == len(spans)  # every span belongs to one run
    for run in runs:
        run_spans = agent_traces.spans(framework_traces.spans_of(run))
        assert len(run_spans) == run.spans
        assert Counter(span.name for span in run_spans) == Counter(run.span_names)
        by_id = {span.span_id.hex(): span for span in run_spans}
        for span in run_spans:  # every parent is in the run
            assert not span.parent_span_id or span.parent_span_id.hex() in by_id
        calls = framework_traces.calls_of(run)
        assert len(calls) == run.model_calls >= 2
        for call in calls:  # a call's traceparent names the framework's span that made it
            assert not call.traceparent or call.span_id in by_id
        for finding in run.findings:
            assert by_id[str(finding["span_id"])].name == finding["span_name"]
        assert (run.verdict == "healthy") == (not run.findings)


def test_files_are_canonical_otlp_json() -> None:
    for framework in FRAMEWORKS:
        text = framework_traces.read_gzip(framework_traces.spans_path(framework))
        assert agent_traces.dumps(agent_traces.loads(text)) == text
