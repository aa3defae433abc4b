"""A one-agent CrewAI crew answering weather questions, traced by OpenInference, driven by a recording plan.

openinference-instrumentation-crewai traces the crew, its tasks and tools; openinference-instrumentation-openai
the model calls CrewAI's native OpenAI provider makes. Run by ``record.py`` in a virtualenv of its own (see the
README); it does not import the project. It reads the plan (JSON) on stdin, talks to the model at
``GENAI_BASE_URL`` (the proxy) through the OpenAI Chat Completions API, and exports spans with the SDK's
OTLP/HTTP exporter to ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``. Each request carries the current span's W3C
``traceparent`` (the OpenTelemetry propagation API, in CrewAI's own transport interceptor), so the proxy's span
joins the crew's trace. Each user turn is one crew kickoff, with the earlier turns and answers in the task.
After each run it flushes and prints ``RUN-END <name> <outcome>``.
"""

from __future__ import annotations

import json
import os
import random
import sys
from typing import Any

os.environ.update(CREWAI_DISABLE_TELEMETRY="true", CREWAI_TRACING_ENABLED="false", CREWAI_STORAGE_DIR="/tmp/crewai")

import httpx  # noqa: E402
from crewai import LLM, Agent, Crew, Task  # noqa: E402
from crewai.llms.hooks.base import BaseInterceptor  # noqa: E402
from crewai.tools import tool  # noqa: E402
from openinference.instrumentation.crewai import CrewAIInstrumentor  # noqa: E402
from openinference.instrumentation.openai import OpenAIInstrumentor  # noqa: E402
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter  # noqa: E402
from opentelemetry.propagate import inject  # noqa: E402
from opentelemetry.sdk.resources import Resource  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import BatchSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.id_generator import IdGenerator  # noqa: E402
from weather import forecast  # noqa: E402


class SeededIds(IdGenerator):
    def __init__(self, seed: int) -> None:
        self._random = random.Random(seed)

    def generate_span_id(self) -> int:
        return self._random.getrandbits(64) or 1

    def generate_trace_id(self) -> int:
        return self._random.getrandbits(128) or 1


class TraceContext(BaseInterceptor[httpx.Request, httpx.Response]):
    def on_outbound(self, message: httpx.Request) -> httpx.Request:
        inject(message.headers)
        return message

    def on_inbound(self, message: httpx.Response) -> httpx.Response:
        return message

    async def aon_outbound(self, message: httpx.Request) -> httpx.Request:
        return self.on_outbound(message)

    async def aon_inbound(self, message: httpx.Response) -> httpx.Response:
        return message


@tool("get_weather")
def get_weather(city: str) -> str:
    """Current weather for a city."""
    report = forecast(city)
    if report.error:
        raise ValueError(report.text)
    return report.text


def main() -> None:
    plan = json.load(sys.stdin)
    provider = TracerProvider(
        resource=Resource({"service.name": "weather-agent-crewai"}), id_generator=SeededIds(plan["seed"])
    )
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    CrewAIInstrumentor().instrument(tracer_provider=provider)
    OpenAIInstrumentor().instrument(tracer_provider=provider)
    for run in plan["runs"]:
        outcome = _run(plan, run)
        provider.force_flush()
        print(f"RUN-END {run['name']} {outcome}", flush=True)
    provider.shutdown()


def _run(plan: dict[str, Any], run: dict[str, Any]) -> str:
    llm = LLM(
        model=f"openai/{plan['model']}",
        base_url=os.environ["GENAI_BASE_URL"],
        api_key=os.environ["GENAI_API_KEY"],
        max_retries=0,
        default_headers={"x-mock-scenario": ",".join(run["scenarios"])},
        interceptor=TraceContext(),
    )
    agent = Agent(
        role="Weather reporter",
        goal="Answer weather questions. Use get_weather for current conditions.",
        backstory="You report the weather.",
        tools=[get_weather],
        llm=llm,
        max_iter=run["max_steps"],
        verbose=False,
    )
    earlier: list[str] = []
    outcome = "answered"
    for turn in run["turns"]:
        history = "".join(f"\n{line}" for line in earlier)
        task = Task(
            description=f"{history}\nUser: {turn}" if history else turn,
            expected_output="A short answer.",
            agent=agent,
        )
        answer = str(Crew(agents=[agent], tasks=[task], verbose=False).kickoff())
        earlier += [f"User: {turn}", f"Assistant: {answer}"]
        outcome = f"answered: {answer[:60]}"
    return outcome


if __name__ == "__main__":
    main()
