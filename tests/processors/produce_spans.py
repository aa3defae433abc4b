"""Run as a script: the official openai client, instrumented by one real instrumentation, calling an upstream.

    python -m tests.processors.produce_spans INSTRUMENTATION BASE_URL OTLP_TRACES_URL

INSTRUMENTATION is openai_v2, openinference or openllmetry. Spans go over OTLP/HTTP with the SDK's exporter.
Each instrumentation patches the openai module for the whole process, hence one process per instrumentation.
"""

from __future__ import annotations

import os
import sys
from typing import Any

MESSAGES: list[Any] = [
    {"role": "system", "content": "You are a terse assistant."},
    {"role": "user", "content": "Say hello to the telemetry pipeline."},
]
TOOLS: list[Any] = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather for a city.",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        },
    }
]


def _instrumentor(name: str) -> Any:
    if name == "openai_v2":
        os.environ["OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"] = "true"
        from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor
    elif name == "openinference":
        from openinference.instrumentation.openai import OpenAIInstrumentor
    else:
        os.environ["TRACELOOP_TRACE_CONTENT"] = "true"
        from opentelemetry.instrumentation.openai import OpenAIInstrumentor
    return OpenAIInstrumentor()


def main(name: str, base_url: str, traces_url: str) -> None:
    import openai
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": f"app-{name}"}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=traces_url)))
    trace.set_tracer_provider(provider)
    _instrumentor(name).instrument(tracer_provider=provider)

    client = openai.OpenAI(base_url=f"{base_url}/v1", api_key="sk-test", max_retries=0)
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, temperature=0.2, max_tokens=50)
    stream = client.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    for _ in stream:
        pass
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, tools=TOOLS)
    client.embeddings.create(model="text-embedding-3-small", input=["a", "b"])
    provider.shutdown()


if __name__ == "__main__":
    main(*sys.argv[1:4])
