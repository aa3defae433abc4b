"""Run as a script: the official openai client, instrumented by opentelemetry-instrumentation-openai-v2 with its
content in log events only, calling an upstream; its spans and log records then go to a collector in the given order.

    python -m tests.collector.extensions.api.produce_content_events MODE BASE_URL OTLP_HTTP_URL ORDER

MODE ``per_message``: the instrumentation's default conventions with content capture on: one event per message
(gen_ai.system.message, gen_ai.user.message, gen_ai.assistant.message, gen_ai.tool.message, gen_ai.choice).
MODE ``details``: the latest experimental conventions, content ``event_only``: one
gen_ai.client.inference.operation.details event per call.
MODE ``span``: the latest experimental conventions, content ``span_only``: the content on the span, no events.

ORDER ``spans_first`` or ``events_first``: the first signal is sent (the SDK's OTLP/HTTP exporter, one request),
then the script prints a line and waits for one on stdin before sending the other, so the caller can see the first
stored before the second arrives. The last line printed is the calls' trace and span ids, as JSON.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

SYSTEM = "You are a terse assistant."
USER = "What is the weather in Paris?"
TOOL_RESULT = '{"city": "Paris", "sky": "sunny"}'
MESSAGES: list[Any] = [
    {"role": "system", "content": SYSTEM},
    {"role": "user", "content": USER},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
        ],
    },
    {"role": "tool", "tool_call_id": "call_1", "content": TOOL_RESULT},
]


LATEST_CONTENT_MODES = {"details": "event_only", "span": "span_only"}


def _configure(mode: str) -> None:
    if mode in LATEST_CONTENT_MODES:
        os.environ["OTEL_SEMCONV_STABILITY_OPT_IN"] = "gen_ai_latest_experimental"
        os.environ["OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"] = LATEST_CONTENT_MODES[mode]
    else:
        os.environ.pop("OTEL_SEMCONV_STABILITY_OPT_IN", None)
        os.environ["OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"] = "true"


def main(mode: str, base_url: str, otlp_url: str, order: str) -> None:
    _configure(mode)
    import openai
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import (
        InMemoryLogRecordExporter,
        LogRecordExportResult,
        SimpleLogRecordProcessor,
    )
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    resource = Resource.create({"service.name": f"weather-{mode}"})
    spans, records = InMemorySpanExporter(), InMemoryLogRecordExporter()
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    logger_provider = LoggerProvider(resource=resource)
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(records))
    OpenAIInstrumentor().instrument(tracer_provider=tracer_provider, logger_provider=logger_provider)

    client = openai.OpenAI(base_url=f"{base_url}/v1", api_key="sk-test", max_retries=0)
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=50)
    tracer_provider.shutdown()
    logger_provider.shutdown()

    def send_spans() -> None:
        exporter = OTLPSpanExporter(endpoint=f"{otlp_url}/v1/traces", timeout=10)
        assert exporter.export(spans.get_finished_spans()) == SpanExportResult.SUCCESS
        exporter.shutdown()

    def send_events() -> None:
        if not records.get_finished_logs():
            return
        exporter = OTLPLogExporter(endpoint=f"{otlp_url}/v1/logs", timeout=10)
        assert exporter.export(records.get_finished_logs()) == LogRecordExportResult.SUCCESS
        exporter.shutdown()

    first, second = (send_spans, send_events) if order == "spans_first" else (send_events, send_spans)
    first()
    print("first sent", flush=True)
    sys.stdin.readline()
    second()
    calls = [
        {"trace_id": f"{span.context.trace_id:032x}", "span_id": f"{span.context.span_id:016x}"}
        for span in spans.get_finished_spans()
    ]
    print(json.dumps({"calls": calls, "events": [r.log_record.event_name for r in records.get_finished_logs()]}))


if __name__ == "__main__":
    main(*sys.argv[1:5])
