"""Run as a script: an app with its own GenAI instrumentation whose openai client goes through the GenAI proxy.

    python -m tests.processors.app_through_proxy PROXY_URL OTLP_TRACES_URL

The app's spans (the openai-v2 instrumentation's, one per call) go over OTLP/HTTP
with the SDK's exporter; its HTTP client sends each request's ``traceparent``, as
an app propagating its trace context does, so the proxy's span of a call is the
child of the app's span of the same call. One process: the instrumentation
patches the openai module for the whole process.
"""

from __future__ import annotations

import sys
from typing import Any

MESSAGES: list[Any] = [{"role": "user", "content": "Say hello to the telemetry pipeline."}]


def main(proxy_url: str, traces_url: str) -> None:
    import httpx
    import openai
    from opentelemetry import propagate, trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": "app-through-proxy"}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=traces_url)))
    trace.set_tracer_provider(provider)
    OpenAIInstrumentor().instrument(tracer_provider=provider)

    def send_trace_context(request: httpx.Request) -> None:
        propagate.inject(request.headers)

    http_client = httpx.Client(event_hooks={"request": [send_trace_context]})
    client = openai.OpenAI(base_url=f"{proxy_url}/v1", api_key="sk-test", max_retries=0, http_client=http_client)
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=50)
    stream = client.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    for _ in stream:
        pass
    client.embeddings.create(model="text-embedding-3-small", input=["a", "b"])
    provider.shutdown()


if __name__ == "__main__":
    main(*sys.argv[1:3])
