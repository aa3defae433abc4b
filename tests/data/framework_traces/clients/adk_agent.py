"""A Google ADK weather agent with ADK's own OpenTelemetry tracing, driven by a recording plan.

The model is ADK's ``AnthropicLlm`` (Claude through the anthropic SDK): the proxy carries the Anthropic
Messages API, not yet the Gemini API. Run by ``record.py`` in a virtualenv of its own (see the README); it does
not import the project. It reads the plan (JSON) on stdin, talks to the model at ``GENAI_BASE_URL`` (the proxy),
and exports ADK's spans with the SDK's OTLP/HTTP exporter to ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` through the
globally registered tracer provider, as ADK expects, with message content on the spans
(``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT``, in the latest experimental shape). Each request
carries the current span's W3C ``traceparent`` (the OpenTelemetry propagation API in an httpx request hook).
One ADK session per run, one ``run_async`` per user turn. After each run it flushes and prints
``RUN-END <name> <outcome>``.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
from typing import Any

# Message content on the spans, in the conventions' current shape (read when ADK is imported).
os.environ.update(
    OTEL_SEMCONV_STABILITY_OPT_IN="gen_ai_latest_experimental",
    OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT="SPAN_ONLY",
)

import httpx2  # noqa: E402
from anthropic import AsyncAnthropic  # noqa: E402
from google.adk.agents import LlmAgent  # noqa: E402
from google.adk.agents.run_config import RunConfig  # noqa: E402
from google.adk.models.anthropic_llm import AnthropicLlm  # noqa: E402
from google.adk.runners import InMemoryRunner  # noqa: E402
from google.genai import types  # noqa: E402
from opentelemetry import trace  # noqa: E402
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter  # noqa: E402
from opentelemetry.propagate import inject  # noqa: E402
from opentelemetry.sdk.resources import Resource  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import BatchSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.id_generator import IdGenerator  # noqa: E402
from weather import forecast  # noqa: E402

MODEL = "claude-sonnet-4-20250514"


class SeededIds(IdGenerator):
    def __init__(self, seed: int) -> None:
        self._random = random.Random(seed)

    def generate_span_id(self) -> int:
        return self._random.getrandbits(64) or 1

    def generate_trace_id(self) -> int:
        return self._random.getrandbits(128) or 1


async def _traceparent(request: httpx2.Request) -> None:
    inject(request.headers)


def get_weather(city: str) -> dict[str, str]:
    """Current weather for a city."""
    report = forecast(city)
    return (
        {"status": "error", "error_message": report.text} if report.error else {"status": "ok", "report": report.text}
    )


def main() -> None:
    plan = json.load(sys.stdin)
    provider = TracerProvider(
        resource=Resource({"service.name": "weather-agent-google-adk"}), id_generator=SeededIds(plan["seed"])
    )
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    for run in plan["runs"]:
        outcome = asyncio.run(_run(run))
        provider.force_flush()
        print(f"RUN-END {run['name']} {outcome}", flush=True)
    provider.shutdown()


async def _run(run: dict[str, Any]) -> str:
    client = AsyncAnthropic(
        base_url=os.environ["GENAI_BASE_URL"].removesuffix("/v1"),
        api_key=os.environ["GENAI_API_KEY"],
        max_retries=0,
        default_headers={"x-mock-scenario": ",".join(run["scenarios"])},
        http_client=httpx2.AsyncClient(event_hooks={"request": [_traceparent]}),
    )
    agent = LlmAgent(
        name="weather_agent",
        model=AnthropicLlm(model=MODEL, client=client),
        instruction="Answer weather questions. Use get_weather for current conditions.",
        tools=[get_weather],
    )
    runner = InMemoryRunner(agent=agent, app_name="weather")
    session = await runner.session_service.create_session(app_name="weather", user_id="user")
    outcome = "answered"
    try:
        for turn in run["turns"]:
            message = types.Content(role="user", parts=[types.Part(text=turn)])
            async for event in runner.run_async(
                user_id="user",
                session_id=session.id,
                new_message=message,
                run_config=RunConfig(max_llm_calls=run["max_steps"]),
            ):
                if event.is_final_response() and event.content and event.content.parts:
                    outcome = f"answered: {(event.content.parts[0].text or '')[:60]}"
    except Exception as error:  # ADK raises LlmCallsLimitExceededError past max_llm_calls
        outcome = f"stopped: {type(error).__name__}: {error}"
    finally:
        await runner.close()
        await client.close()
    return outcome


if __name__ == "__main__":
    main()
