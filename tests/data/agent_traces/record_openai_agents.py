"""Record the OpenAI Agents SDK, instrumented by OpenInference, running against the mock OpenAI upstream.

Needs the framework and its instrumentation, which the project does not depend on (install them into the
venv only to re-record)::

    .venv/bin/pip install openai-agents==0.24.0 openinference-instrumentation-openai-agents==2.6.0
    .venv/bin/python -m tests.data.agent_traces.record_openai_agents

Two runs of one weather agent (a ``get_weather`` function tool) on the Responses API, served by
``tests/proxy/mock_upstream.py`` on loopback:

- ``openai_agents_healthy``: the mock calls the tool once, then answers from its result;
- ``openai_agents_loop``: the mock's ``tool_loop`` scenario calls the tool again after every result, with
  the same arguments, until the SDK's ``max_turns`` stops the run (``MaxTurnsExceeded``).

The spans are written exactly as the instrumentation emitted them (OpenInference attributes, not yet
normalised) through the SDK's OTLP encoder. Trace and span ids come from a seeded id generator; the
timestamps are the real ones, so re-recording changes only those (and durations).
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from importlib.metadata import version
from typing import Any

from agents import Agent, MaxTurnsExceeded, OpenAIResponsesModel, Runner, function_tool
from openai import AsyncOpenAI
from openinference.instrumentation.openai_agents import OpenAIAgentsInstrumentor
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator

from tests.data.agent_traces import DIRECTORY, dumps
from tests.data.agent_traces.make_traces import int_attribute, update_manifest
from tests.proxy.mock_upstream import SCENARIO_HEADER, MockUpstream, serve

API_KEY = "sk-test-agents"
MODEL = "gpt-4o-mini"
QUESTION = "What is the weather in Paris?"
MAX_TURNS = 3
PACKAGES = ("openai-agents", "openinference-instrumentation-openai-agents", "openai", "opentelemetry-sdk")
SOURCE = "openai-agents + openinference-instrumentation-openai-agents"


class SeededIds(IdGenerator):
    def __init__(self, seed: int) -> None:
        self._random = random.Random(seed)

    def generate_span_id(self) -> int:
        return self._random.getrandbits(64) or 1

    def generate_trace_id(self) -> int:
        return self._random.getrandbits(128) or 1


@function_tool
def get_weather(city: str) -> str:
    """Current weather for a city."""
    return f"Sunny, 24 C in {city}"


async def run_agent(base_url: str, scenario: str | None) -> str:
    headers = {SCENARIO_HEADER: scenario} if scenario else None
    client = AsyncOpenAI(base_url=f"{base_url}/v1", api_key=API_KEY, max_retries=0, default_headers=headers)
    agent = Agent(
        name="Weather agent",
        instructions="Answer weather questions. Use get_weather for current conditions.",
        tools=[get_weather],
        model=OpenAIResponsesModel(model=MODEL, openai_client=client),
    )
    try:
        result = await Runner.run(agent, QUESTION, max_turns=MAX_TURNS)
        return f"final output: {result.final_output}"
    except MaxTurnsExceeded as error:
        return f"stopped: {error}"
    finally:
        await client.close()


def record(name: str, scenario: str | None, seed: int) -> tuple[list[ReadableSpan], str]:
    exporter = InMemorySpanExporter()
    resource = Resource({"service.name": "weather-agent", "telemetry.sdk.language": "python"})
    provider = TracerProvider(resource=resource, id_generator=SeededIds(seed))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    instrumentor = OpenAIAgentsInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    try:
        mock = MockUpstream(openai_key=API_KEY)
        with serve(mock) as url:
            outcome = asyncio.run(run_agent(url, scenario))
    finally:
        instrumentor.uninstrument()
    provider.force_flush()
    spans = list(exporter.get_finished_spans())
    provider.shutdown()
    (DIRECTORY / f"{name}.json").write_text(dumps(encode_spans(spans)), encoding="utf-8")
    return spans, outcome


def _hex(span: ReadableSpan) -> tuple[str, str]:
    return format(span.context.span_id, "016x"), format(span.context.trace_id, "032x")


def _start(span: ReadableSpan) -> int:
    return span.start_time or 0


def _responses(spans: list[ReadableSpan]) -> list[ReadableSpan]:
    """The LLM spans (one per model call), in start order."""
    return sorted((s for s in spans if (s.attributes or {}).get("openinference.span.kind") == "LLM"), key=_start)


def entry(name: str, description: str, verdict: str, spans: list[ReadableSpan], findings: list[Any]) -> dict[str, Any]:
    kinds = Counter(str((s.attributes or {}).get("openinference.span.kind")) for s in spans)
    llm = _responses(spans)
    trace_ids = list(dict.fromkeys(format(s.context.trace_id, "032x") for s in sorted(spans, key=_start)))
    return {
        "name": name,
        "description": description,
        "verdict": verdict,
        "source": SOURCE,
        "trace_ids": trace_ids,
        "findings": findings,
        "totals": {
            "spans": len(spans),
            "llm_calls": kinds["LLM"],
            "tool_spans": kinds["TOOL"],
            "steps": kinds["LLM"] + kinds["TOOL"],
            "input_tokens": sum(int_attribute(s, "llm.token_count.prompt") for s in llm),
            "output_tokens": sum(int_attribute(s, "llm.token_count.completion") for s in llm),
        },
        "span_names": dict(sorted(Counter(s.name for s in spans).items())),
        "packages": {package: version(package) for package in PACKAGES},
        "notes": NOTES,
    }


NOTES = [
    "Spans as OpenInference emits them: genai_normalize must run first (openinference.span.kind AGENT -> "
    "invoke_agent, LLM -> chat, TOOL -> execute_tool; CHAIN spans ('turn', the inner 'Agent workflow') stay "
    "non-GenAI). The root 'Agent workflow' span (kind AGENT) and the 'Weather agent' span are both invoke_agent.",
    "The LLM spans ('response', Responses API) carry the tool calls the model asked for, with ids "
    "(llm.output_messages.0.message.tool_calls.N.tool_call.*), and the results sent back "
    "(llm.input_messages.N.message.tool_call_id). The get_weather TOOL spans carry tool.name and the "
    "arguments only as input.value, and no call id: genai_normalize maps tool.name to gen_ai.tool.name but "
    "not input.value to gen_ai.tool.call.arguments, so as things stand a detector sees these tool spans "
    "without arguments. Matching them to the calls the responses asked for (by name and arguments, or by "
    "order) is needed to count each call once and to not take the last call for unexecuted.",
    "The mock answers every response with the same ids (resp_mock_1); tool call ids are call_mock_N.",
]


def main() -> None:
    healthy, healthy_outcome = record("openai_agents_healthy", None, seed=20250601)
    looping, loop_outcome = record("openai_agents_loop", "tool_loop", seed=20250602)
    print(f"openai_agents_healthy: {len(healthy)} spans, {healthy_outcome}")
    print(f"openai_agents_loop: {len(looping)} spans, {loop_outcome}")
    responses = _responses(looping)
    assert len(responses) == MAX_TURNS, f"expected {MAX_TURNS} model calls, got {len(responses)}"
    third_id, third_trace = _hex(responses[2])
    loop_findings = [
        {
            "detector": "repeated_tool_call",
            "scope": "trace",
            "span_name": responses[2].name,
            "span_id": third_id,
            "trace_id": third_trace,
            "note": "The third 'response' span's output asks for get_weather {city: Paris} a third time "
            "(call_mock_3); it ends before the third get_weather span starts. The get_weather spans must not "
            "count again (see notes).",
        }
    ]
    update_manifest(
        [
            entry(
                "openai_agents_healthy",
                "OpenAI Agents SDK (Responses API) weather agent, OpenInference instrumentation: the model calls "
                "get_weather once, then answers from its result.",
                "healthy",
                healthy,
                [],
            ),
            entry(
                "openai_agents_loop",
                "The same agent against a model that calls get_weather {city: Paris} again after every result; "
                f"the SDK stops it at max_turns={MAX_TURNS} (MaxTurnsExceeded, the 'Weather agent' span ends in "
                "error). Three model calls, three tool runs.",
                "looping",
                looping,
                loop_findings,
            ),
        ],
        SOURCE,
    )


if __name__ == "__main__":
    main()
