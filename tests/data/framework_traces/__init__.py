"""Agent frameworks recorded as they ship, against the mock upstream through the proxy: spans and model calls.

Each framework's file ``<framework>.json`` holds its spans exactly as its OpenTelemetry SDK exported them
(OTLP/JSON, as ``tests/data/agent_traces``), for every run of the plan below; ``<framework>.calls.json``
holds the model calls it made through the proxy, each with the W3C traceparent it carried, so a test can
send them through a live proxy again and get the proxy's spans as children of the framework's own.
``manifest.json`` lists each run (``<framework>.<run>``): its traces, model calls, verdict and the findings
it must raise. ``record.py`` makes them; README.md says how and what each framework emits.

Usage::

    from tests.data import framework_traces

    for run in framework_traces.manifest():
        spans = framework_traces.spans_of(run)          # ExportTraceServiceRequest of the run's traces
        calls = framework_traces.calls_of(run)          # the model calls, in the order they were made
"""

from __future__ import annotations

import gzip
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal, cast

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from tests.data import agent_traces

DIRECTORY = Path(__file__).resolve().parent
CLIENTS = DIRECTORY / "clients"
MANIFEST = DIRECTORY / "manifest.json"
MODEL = "gpt-4o-mini"
PLAN_SEED = 20251206
# The model call whose reply asks for the same tool call a third time: where repeated_tool_call fires.
LOOP_REPEAT = 3

Verdict = Literal["healthy", "looping"]

# Findings a run raises that its manifest does not expect, and why they are left as they are.
KNOWN_EXTRA = {
    ("crewai.loop", "instruction_override"): "CrewAI's own last-iteration prompt says \"You'll ignore all previous "
    "instructions\": genai_security flags the framework's wording (only when max_iter runs out).",
    ("google_adk.loop", "unexecuted_tool_call"): "stopped by LlmCallsLimitExceededError, ADK's looping run also gets "
    "a conversation-scoped unexecuted_tool_call, with issue 14's other branch merged too (open)",
}
# With the proxy's spans too, findings still open (seen with issue 14's other branch merged), and why.
KNOWN_WITH_PROXY = {
    (run, "ignored_tool_error"): "CrewAI's tool spans carry no call id; with the proxy's spans the "
    "failed get_weather call and its corrected retry are read as an error sent again unchanged (open)"
    for run in ("crewai.retry", "crewai.parallel_retry")
}
# Expected findings the detectors miss, and why.
KNOWN_MISSES = {
    ("langgraph_langsmith.loop", "unexecuted_tool_call"): "LangSmith exports the graph's root run before its last "
    "model call; genai_loop_detection judges calls still pending when the agent span arrives, so the last model "
    "call's tool call, arriving later, is never judged.",
}


@dataclass(frozen=True)
class Call:
    """One model call as the client sent it to the proxy."""

    run: str
    path: str  # e.g. /v1/chat/completions
    traceparent: str  # the client's W3C traceparent (its span that made the call); "" when it sent none
    scenario: str  # the x-mock-scenario header
    body: Any  # the JSON body

    @property
    def span_id(self) -> str:
        return self.traceparent.split("-")[2] if self.traceparent else ""


@dataclass(frozen=True)
class Habits:
    """What a framework does that the expected findings depend on."""

    tool_span_name: str = ""  # its tool spans' name, when they run inside the model call's span
    stops_before_tools: bool = False  # at its step limit the last model call's tool calls never run
    # The span that sends the request is a client library's, inside the framework's model call span (which
    # holds the messages): the loop is named on that parent.
    call_in_client_span: bool = False


@dataclass(frozen=True)
class PlannedRun:
    """One agent run of the plan every framework plays: the user's turns and the model's behaviour."""

    name: str
    description: str
    verdict: Verdict
    turns: tuple[str, ...]
    scenarios: tuple[str, ...]
    max_steps: int = 6  # the framework's own limit on model calls per turn

    def plan(self) -> dict[str, Any]:
        return {"name": self.name, "turns": list(self.turns), "scenarios": list(self.scenarios),
                "max_steps": self.max_steps}  # fmt: skip

    def entry(
        self,
        framework: str,
        source: str,
        outcome: str,
        trace_ids: Sequence[str],
        calls: Sequence[Call],
        spans: Sequence[Span],
        model_spans: Sequence[str],
        habits: Habits,
    ) -> dict[str, Any]:
        """The run's manifest entry, its expected findings derived from the calls the framework made.

        ``model_spans`` (span ids, by start time) name the spans that made the model calls when the calls
        carry no traceparent.
        """
        findings = []
        if self.verdict == "looping":
            if len(calls) < LOOP_REPEAT:
                raise AssertionError(f"{framework}.{self.name}: {len(calls)} model calls, no loop to find")
            by_id = {span.span_id.hex(): span for span in spans}
            third_id = calls[LOOP_REPEAT - 1].span_id if calls[LOOP_REPEAT - 1].traceparent else None
            if third_id is None:
                if len(model_spans) != len(calls):
                    raise AssertionError(f"{framework}.{self.name}: {len(model_spans)} model spans, {len(calls)} calls")
                third_id = model_spans[LOOP_REPEAT - 1]
            third = by_id[third_id]
            if habits.call_in_client_span:
                third = by_id[third.parent_span_id.hex()]
            note = "The span that made the third model call: its reply asks for the same get_weather call a third time."
            # A tool run inside the model call's span (a stream whose tool calls run as they arrive) ends first.
            inner = [s for s in spans if s.parent_span_id == third.span_id and s.name == habits.tool_span_name]
            if inner:
                third = min(inner, key=lambda s: s.end_time_unix_nano)
                note = "The third tool run, inside the third model call's span (it ends first): the same " \
                    "get_weather call a third time."  # fmt: skip
            findings.append({
                "detector": "repeated_tool_call",
                "scope": "trace",
                "span_name": third.name,
                "span_id": third.span_id.hex(),
                "trace_id": third.trace_id.hex(),
                "note": note,
            })  # fmt: skip
            if habits.stops_before_tools:
                root = next(s for s in spans if not s.parent_span_id)
                findings.append({
                    "detector": "unexecuted_tool_call",
                    "scope": "trace",
                    "span_name": root.name,
                    "span_id": root.span_id.hex(),
                    "trace_id": root.trace_id.hex(),
                    "note": "At its limit the framework ends the run after the last model call, whose tool "
                    "call never runs.",
                })  # fmt: skip
        return {
            "name": f"{framework}.{self.name}",
            "framework": framework,
            "run": self.name,
            "description": self.description,
            "verdict": self.verdict,
            "source": source,
            "outcome": outcome,
            "trace_ids": list(trace_ids),
            "model_calls": len(calls),
            "findings": findings,
            "spans": len(spans),
            "span_names": dict(sorted(Counter(span.name for span in spans).items())),
        }


RUNS: tuple[PlannedRun, ...] = (
    PlannedRun("single", "One get_weather call, then the answer.", "healthy",
               ("What is the weather in Paris?",), ("args_from_prompt",)),
    PlannedRun("parallel_two", "Two get_weather calls in one reply (parallel tools), then the answer.", "healthy",
               ("Compare the weather in Paris and Rome.",), ("parallel_tools",)),
    PlannedRun("parallel_three", "Three parallel get_weather calls, then the answer.", "healthy",
               ("Which is warmest today: Oslo, Lisbon or Madrid?",), ("parallel_tools",)),
    PlannedRun("retry", "get_weather fails on a misspelt city; the model calls it again, corrected.", "healthy",
               ("What is the weather in Pariss?",), ("retry_on_error",)),
    PlannedRun("parallel_retry", "Two parallel calls, one fails; the model retries that one corrected.", "healthy",
               ("Compare Berlin and Romee.",), ("parallel_tools", "retry_on_error")),
    PlannedRun("long_conversation", "Four user turns, one city each, the history carried along.", "healthy",
               ("What is the weather in Berlin?", "And in Vienna?", "And in Tokyo?", "What about Rome?"),
               ("args_from_prompt",)),
    PlannedRun("shared_first_a", "Two turns; the first prompt is the one shared_first_b and _c start with.",
               "healthy", ("What is the weather in Paris?", "And in Madrid?"), ("args_from_prompt",)),
    PlannedRun("shared_first_b", "Two turns, the shared first prompt then Oslo.", "healthy",
               ("What is the weather in Paris?", "And in Oslo?"), ("args_from_prompt",)),
    PlannedRun("shared_first_c", "Two turns, the shared first prompt then Lisbon.", "healthy",
               ("What is the weather in Paris?", "And in Lisbon?"), ("args_from_prompt",)),
    PlannedRun("loop", "The model calls get_weather {city: Paris} again after every result, until the "
               f"framework's limit of {LOOP_REPEAT} model calls stops the run.", "looping",
               ("What is the weather in Paris?",), ("tool_loop",), max_steps=LOOP_REPEAT),
)  # fmt: skip


@dataclass(frozen=True)
class Recording:
    """One run of one framework, as ``manifest.json`` lists it."""

    name: str  # <framework>.<run>
    framework: str
    run: str
    description: str
    verdict: Verdict
    source: str
    outcome: str
    trace_ids: tuple[str, ...]
    model_calls: int
    findings: tuple[Mapping[str, str], ...]
    spans: int
    span_names: Mapping[str, int]


def manifest() -> list[Recording]:
    """Every recorded run, by framework then run name."""
    return list(_manifest())


def frameworks() -> dict[str, Mapping[str, Any]]:
    """The recorded frameworks: their source (framework and instrumentation) and package versions."""
    return dict(json.loads(MANIFEST.read_text(encoding="utf-8"))["frameworks"])


@cache
def _manifest() -> tuple[Recording, ...]:
    document = json.loads(MANIFEST.read_text(encoding="utf-8"))
    return tuple(
        Recording(
            name=str(entry["name"]),
            framework=str(entry["framework"]),
            run=str(entry["run"]),
            description=str(entry["description"]),
            verdict=cast(Verdict, entry["verdict"]),
            source=str(entry["source"]),
            outcome=str(entry["outcome"]),
            trace_ids=tuple(entry["trace_ids"]),
            model_calls=int(entry["model_calls"]),
            findings=tuple(entry["findings"]),
            spans=int(entry["spans"]),
            span_names=dict(entry["span_names"]),
        )
        for entry in document["recordings"]
    )


def spans_path(framework: str) -> Path:
    return DIRECTORY / f"{framework}.json.gz"


def calls_path(framework: str) -> Path:
    return DIRECTORY / f"{framework}.calls.json.gz"


def read_gzip(path: Path) -> str:
    return gzip.decompress(path.read_bytes()).decode("utf-8")


def write_gzip(path: Path, text: str) -> None:
    """``text`` gzipped with no timestamp, so recording the same spans again writes the same bytes."""
    path.write_bytes(gzip.compress(text.encode("utf-8"), compresslevel=9, mtime=0))


@cache
def load_framework(framework: str) -> ExportTraceServiceRequest:
    """Every span recorded for ``framework``, as the export requests carried them."""
    return agent_traces.loads(read_gzip(spans_path(framework)))


def spans_of(recording: Recording) -> ExportTraceServiceRequest:
    """The spans of one run (its traces), under their resources and scopes."""
    wanted = {bytes.fromhex(trace_id) for trace_id in recording.trace_ids}
    source = load_framework(recording.framework)
    request = ExportTraceServiceRequest()
    for resource_spans in source.resource_spans:
        for scope_spans in resource_spans.scope_spans:
            kept = [span for span in scope_spans.spans if span.trace_id in wanted]
            if kept:
                copy = request.resource_spans.add(
                    resource=resource_spans.resource, schema_url=resource_spans.schema_url
                )
                copy.scope_spans.add(scope=scope_spans.scope, schema_url=scope_spans.schema_url).spans.extend(kept)
    return request


@cache
def _calls(framework: str) -> tuple[Call, ...]:
    document = json.loads(read_gzip(calls_path(framework)))
    return tuple(Call(**call) for call in document)


def calls_of(recording: Recording) -> list[Call]:
    """The model calls of one run, in the order the framework made them."""
    return [call for call in _calls(recording.framework) if call.run == recording.run]


def dump_calls(calls: Sequence[Call]) -> str:
    """Calls as JSON, one call to a line."""
    lines = [json.dumps(call.__dict__, ensure_ascii=False, separators=(",", ":")) for call in calls]
    return "[\n" + ",\n".join(lines) + "\n]\n"
