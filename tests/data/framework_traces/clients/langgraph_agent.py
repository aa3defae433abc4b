"""A LangGraph ReAct weather agent (langchain-openai's ChatOpenAI), traced one of two ways, driven by a recording plan.

``LANGGRAPH_TRACING=openinference``: openinference-instrumentation-langchain's instrumentor on the SDK's tracer
provider. ``LANGGRAPH_TRACING=langsmith``: LangSmith's own OpenTelemetry export (``LANGSMITH_TRACING_MODE=otel``,
nothing sent to LangSmith), through the same globally registered tracer provider.

Run by ``record.py`` in a virtualenv of its own (see the README); it does not import the project. It reads the
plan (JSON) on stdin, talks to the model at ``GENAI_BASE_URL`` (the proxy) through the OpenAI Chat Completions
API, and exports spans with the SDK's OTLP/HTTP exporter to ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``. Each request
carries the current span's W3C ``traceparent`` (the OpenTelemetry propagation API in an httpx request hook),
so the proxy's span joins the agent's trace. After each run it flushes and prints ``RUN-END <name> <outcome>``.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
from typing import Any

import httpx2
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.propagate import inject
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.id_generator import IdGenerator

MODE = os.environ["LANGGRAPH_TRACING"]
if MODE == "langsmith":  # read when langsmith is imported
    os.environ.update(LANGSMITH_TRACING="true", LANGSMITH_TRACING_MODE="otel", LANGSMITH_API_KEY="unused")

from langchain_core.messages import BaseMessage  # noqa: E402
from langchain_core.tools import ToolException, tool  # noqa: E402
from langchain_openai import ChatOpenAI  # noqa: E402
from langgraph.errors import GraphRecursionError  # noqa: E402
from langgraph.prebuilt import create_react_agent  # noqa: E402
from weather import forecast  # noqa: E402


class SeededIds(IdGenerator):
    def __init__(self, seed: int) -> None:
        self._random = random.Random(seed)

    def generate_span_id(self) -> int:
        return self._random.getrandbits(64) or 1

    def generate_trace_id(self) -> int:
        return self._random.getrandbits(128) or 1


async def _traceparent(request: httpx2.Request) -> None:
    inject(request.headers)


@tool(parse_docstring=False)
def get_weather(city: str) -> str:
    """Current weather for a city."""
    report = forecast(city)
    if report.error:
        raise ToolException(report.text)
    return report.text


get_weather.handle_tool_error = True


def main() -> None:
    plan = json.load(sys.stdin)
    provider = TracerProvider(
        resource=Resource({"service.name": f"weather-agent-langgraph-{MODE}"}), id_generator=SeededIds(plan["seed"])
    )
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    if MODE == "openinference":
        from openinference.instrumentation.langchain import LangChainInstrumentor

        LangChainInstrumentor().instrument(tracer_provider=provider)
    for run in plan["runs"]:
        outcome = asyncio.run(_run(plan, run))
        if MODE == "langsmith":
            from langchain_core.tracers.langchain import wait_for_all_tracers

            wait_for_all_tracers()
        provider.force_flush()
        print(f"RUN-END {run['name']} {outcome}", flush=True)
    provider.shutdown()


async def _run(plan: dict[str, Any], run: dict[str, Any]) -> str:
    http = httpx2.AsyncClient(event_hooks={"request": [_traceparent]})
    model = ChatOpenAI(
        model=plan["model"],
        base_url=os.environ["GENAI_BASE_URL"],
        api_key=os.environ["GENAI_API_KEY"],
        max_retries=0,
        default_headers={"x-mock-scenario": ",".join(run["scenarios"])},
        http_async_client=http,
    )
    agent = create_react_agent(
        model,
        [get_weather],
        prompt="Answer weather questions. Use get_weather for current conditions.",
        name="weather_agent",
    )
    messages: list[BaseMessage | dict[str, str]] = []
    outcome = "answered"
    try:
        for turn in run["turns"]:
            messages.append({"role": "user", "content": turn})
            # A ReAct step is two supersteps (the model, then the tools).
            state = await agent.ainvoke({"messages": messages}, {"recursion_limit": 2 * run["max_steps"]})
            messages = list(state["messages"])
            # Out of steps, the prebuilt agent answers so itself rather than raising.
            if "need more steps" in str(messages[-1].content):
                outcome = f"stopped: {messages[-1].content}"
    except GraphRecursionError as error:
        outcome = f"stopped: {str(error).splitlines()[0]}"
    finally:
        await http.aclose()
    return outcome


if __name__ == "__main__":
    main()
