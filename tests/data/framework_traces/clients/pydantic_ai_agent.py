"""A pydantic-ai weather agent with pydantic-ai's own OpenTelemetry instrumentation, driven by a recording plan.

Run by ``record.py`` in a virtualenv of its own (see the README); it does not import the project. It reads the
plan (JSON) on stdin, talks to the model at ``GENAI_BASE_URL`` (the proxy) through the OpenAI Chat Completions
API, and exports its spans with the SDK's OTLP/HTTP exporter to ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``. Each
request carries the current span's W3C ``traceparent`` (the OpenTelemetry propagation API, in an httpx
request hook), so the proxy's span joins the agent's trace. After each run it flushes the exporter and prints
``RUN-END <name>``.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
from typing import Any

import httpx2
from openai import AsyncOpenAI
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.propagate import inject
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.id_generator import IdGenerator
from pydantic_ai import Agent, ModelRetry
from pydantic_ai.exceptions import UsageLimitExceeded
from pydantic_ai.messages import ModelMessage
from pydantic_ai.models.instrumented import InstrumentationSettings
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.providers.openai import OpenAIProvider
from pydantic_ai.usage import UsageLimits
from weather import forecast


class SeededIds(IdGenerator):
    def __init__(self, seed: int) -> None:
        self._random = random.Random(seed)

    def generate_span_id(self) -> int:
        return self._random.getrandbits(64) or 1

    def generate_trace_id(self) -> int:
        return self._random.getrandbits(128) or 1


async def _traceparent(request: httpx2.Request) -> None:
    inject(request.headers)


def main() -> None:
    plan = json.load(sys.stdin)
    provider = TracerProvider(
        resource=Resource({"service.name": "weather-agent-pydantic-ai"}), id_generator=SeededIds(plan["seed"])
    )
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    for run in plan["runs"]:
        outcome = asyncio.run(_run(plan, run, provider))
        provider.force_flush()
        print(f"RUN-END {run['name']} {outcome}", flush=True)
    provider.shutdown()


async def _run(plan: dict[str, Any], run: dict[str, Any], provider: TracerProvider) -> str:
    http = httpx2.AsyncClient(event_hooks={"request": [_traceparent]})
    client = AsyncOpenAI(
        base_url=os.environ["GENAI_BASE_URL"],
        api_key=os.environ["GENAI_API_KEY"],
        max_retries=0,
        http_client=http,
        default_headers={"x-mock-scenario": ",".join(run["scenarios"])},
    )
    model = OpenAIChatModel(plan["model"], provider=OpenAIProvider(openai_client=client))
    agent = Agent(
        model,
        instructions="Answer weather questions. Use get_weather for current conditions.",
        name="weather_agent",
    )
    agent.instrument = InstrumentationSettings(tracer_provider=provider)

    @agent.tool_plain
    def get_weather(city: str) -> str:
        """Current weather for a city."""
        report = forecast(city)
        if report.error:
            raise ModelRetry(report.text)
        return report.text

    history: list[ModelMessage] = []
    outcome = "answered"
    try:
        for turn in run["turns"]:
            result = await agent.run(
                turn, message_history=history, usage_limits=UsageLimits(request_limit=run["max_steps"])
            )
            history = result.all_messages()
    except UsageLimitExceeded as error:
        outcome = f"stopped: {error}"
    finally:
        await client.close()
    return outcome


if __name__ == "__main__":
    main()
