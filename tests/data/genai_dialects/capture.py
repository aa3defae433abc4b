"""Capture the span attributes (and log records) that OpenAI instrumentations emit, as JSON fixtures.

Run from the repository root::

    .venv/bin/python tests/data/genai_dialects/capture.py

For each fixture a subprocess (instrumentors patch the ``openai`` module globally, so they must not share a process)
instruments the client with an SDK ``TracerProvider`` + ``InMemorySpanExporter`` (``SimpleSpanProcessor``) and a
``LoggerProvider`` + ``InMemoryLogRecordExporter``, runs four calls against the deterministic mock in
``tests.proxy.mock_upstream``, and writes ``<name>.json`` next to this script:

- ``chat``: non-streaming chat completion, system + user message, temperature 0.2, max_tokens 50
- ``chat_stream``: the same, streamed with ``stream_options={"include_usage": True}``
- ``chat_tool``: non-streaming chat completion offering one function tool (``get_weather``); the mock calls it
- ``embeddings``: one embeddings call with two inputs

Fixtures: ``openai_v2`` (opentelemetry-instrumentation-openai-v2, default semconv v1.30 path),
``openai_v2_latest`` (the same with ``OTEL_SEMCONV_STABILITY_OPT_IN=gen_ai_latest_experimental``),
``openinference`` (openinference-instrumentation-openai) and ``openllmetry`` (opentelemetry-instrumentation-openai).

Timestamps, trace/span ids and durations are dropped. The mock listens on a random port, so the port is replaced:
an int attribute equal to it becomes 0 and ``:<port>`` in strings becomes ``:MOCK_PORT``. Everything else is kept as
emitted (tuples become lists). Log records are attached to the span whose span id they carry.

``python capture.py --one <name> <output>`` runs one fixture in the current process (the parent run uses it; it
needs the environment the parent sets).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[2]

MODEL = "gpt-4o-mini"
EMBEDDING_MODEL = "text-embedding-3-small"
MESSAGES = [
    {"role": "system", "content": "You are a terse assistant."},
    {"role": "user", "content": "Say hello to the telemetry pipeline."},
]
TOOL_MESSAGES = [
    {"role": "system", "content": "You are a weather assistant."},
    {"role": "user", "content": "What is the weather in Paris?"},
]
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Get the current weather for a city.",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string", "description": "The city name."}},
                "required": ["city"],
            },
        },
    }
]
EMBEDDING_INPUTS = ["The quick brown fox.", "Jumps over the lazy dog."]

# Fixture name -> (distribution to report, environment switches). The switches were checked against the sources:
# - openai-v2 2.4b0 (with opentelemetry-util-genai 0.4b0, pinned by the test dependencies) has two paths. By
#   default it
#   follows semconv v1.30 and reads OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT as "true"/"false"; content
#   then goes to log records (gen_ai.system.message, gen_ai.user.message, gen_ai.choice), not to the span.
#   With OTEL_SEMCONV_STABILITY_OPT_IN=gen_ai_latest_experimental it uses util-genai's handler, and the same variable
#   must name a ContentCapturingMode (NO_CONTENT / SPAN_ONLY / EVENT_ONLY / SPAN_AND_EVENT; "true" is rejected with
#   a warning and means NO_CONTENT). SPAN_AND_EVENT puts gen_ai.input.messages etc. on the span and also emits the
#   gen_ai.client.inference.operation.details log record (OTEL_INSTRUMENTATION_GENAI_EMIT_EVENT defaults from it).
# - OpenLLMetry reads TRACELOOP_TRACE_CONTENT at call time (default "true"); its default use_attributes=True puts
#   content on span attributes, not on log events.
# - OpenInference captures content by default (OPENINFERENCE_HIDE_* unset).
INSTRUMENTATIONS: dict[str, tuple[str, dict[str, str]]] = {
    "openai_v2": (
        "opentelemetry-instrumentation-openai-v2",
        {"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "true"},
    ),
    "openai_v2_latest": (
        "opentelemetry-instrumentation-openai-v2",
        {
            "OTEL_SEMCONV_STABILITY_OPT_IN": "gen_ai_latest_experimental",
            "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "SPAN_AND_EVENT",
        },
    ),
    "openinference": ("openinference-instrumentation-openai", {}),
    "openllmetry": ("opentelemetry-instrumentation-openai", {"TRACELOOP_TRACE_CONTENT": "true"}),
}
# Settings that would change what an instrumentation emits; dropped from the inherited environment so each run
# gets exactly its own switches.
_SCRUBBED_ENV = {key for _, env in INSTRUMENTATIONS.values() for key in env} | {
    "OTEL_INSTRUMENTATION_GENAI_EMIT_EVENT",
    "OTEL_INSTRUMENTATION_GENAI_COMPLETION_HOOK",
    "OTEL_INSTRUMENTATION_GENAI_UPLOAD_BASE_PATH",
    "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS",
    "TRACELOOP_METRICS_ENABLED",
    "OPENINFERENCE_HIDE_INPUTS",
    "OPENINFERENCE_HIDE_OUTPUTS",
    "OPENINFERENCE_HIDE_INPUT_MESSAGES",
    "OPENINFERENCE_HIDE_OUTPUT_MESSAGES",
    "OPENINFERENCE_HIDE_INPUT_TEXT",
    "OPENINFERENCE_HIDE_OUTPUT_TEXT",
    "OPENINFERENCE_HIDE_EMBEDDING_VECTORS",
    "OPENINFERENCE_HIDE_LLM_INVOCATION_PARAMETERS",
}


def _instrumentor(name: str) -> Any:
    if name.startswith("openai_v2"):
        from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor
    elif name == "openinference":
        from openinference.instrumentation.openai import OpenAIInstrumentor
    elif name == "openllmetry":
        from opentelemetry.instrumentation.openai import OpenAIInstrumentor
    else:
        raise ValueError(f"unknown instrumentation {name!r}")
    return OpenAIInstrumentor()


def _calls(client: Any) -> list[tuple[str, Callable[[], None]]]:
    def chat() -> None:
        client.chat.completions.create(model=MODEL, messages=MESSAGES, temperature=0.2, max_tokens=50)

    def chat_stream() -> None:
        stream = client.chat.completions.create(
            model=MODEL,
            messages=MESSAGES,
            temperature=0.2,
            max_tokens=50,
            stream=True,
            stream_options={"include_usage": True},
        )
        for _ in stream:
            pass

    def chat_tool() -> None:
        client.chat.completions.create(model=MODEL, messages=TOOL_MESSAGES, tools=TOOLS)

    def embeddings() -> None:
        client.embeddings.create(model=EMBEDDING_MODEL, input=EMBEDDING_INPUTS)

    return [("chat", chat), ("chat_stream", chat_stream), ("chat_tool", chat_tool), ("embeddings", embeddings)]


def _scrub(value: Any, port: int) -> Any:
    """JSON-ready copy of an attribute value or log body: tuples as lists, the random mock port replaced."""
    if isinstance(value, str):
        return value.replace(f":{port}", ":MOCK_PORT")
    if isinstance(value, bool | float) or value is None:
        return value
    if isinstance(value, int):
        return 0 if value == port else value
    if isinstance(value, tuple | list):
        return [_scrub(v, port) for v in value]
    if isinstance(value, dict) or hasattr(value, "items"):
        return {str(k): _scrub(v, port) for k, v in value.items()}
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return repr(value)


def _attributes(attributes: Any, port: int) -> dict[str, Any]:
    return {key: _scrub(value, port) for key, value in sorted((attributes or {}).items())}


def _log(record: Any, port: int) -> dict[str, Any]:
    log = record.log_record
    severity = log.severity_number
    return {
        "event_name": log.event_name,
        "severity_number": severity.name if severity is not None else None,
        "severity_text": log.severity_text,
        "body": _scrub(log.body, port),
        "attributes": _attributes(log.attributes, port),
        "scope": record.instrumentation_scope.name if record.instrumentation_scope else None,
    }


def run_one(name: str, output: Path) -> None:
    """Instrument, make the four calls against the mock, and write the fixture (in this process)."""
    sys.path.insert(0, str(REPO_ROOT))
    import openai
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from tests.proxy.mock_upstream import MockUpstream, serve

    span_exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(span_exporter))
    log_exporter = InMemoryLogRecordExporter()
    logger_provider = LoggerProvider()
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(log_exporter))

    instrumentor = _instrumentor(name)
    instrumentor.instrument(tracer_provider=tracer_provider, logger_provider=logger_provider)

    spans: list[dict[str, Any]] = []
    with serve(MockUpstream()) as url:
        port = int(url.rsplit(":", 1)[1])
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="sk-test", max_retries=0)
        for call, run in _calls(client):
            run()
            tracer_provider.force_flush()
            logger_provider.force_flush()
            finished = sorted(span_exporter.get_finished_spans(), key=lambda s: s.start_time or 0)
            logs = list(log_exporter.get_finished_logs())
            span_exporter.clear()
            log_exporter.clear()
            for span in finished:
                span_id = span.context.span_id if span.context else None
                own = [r for r in logs if r.log_record.span_id == span_id]
                logs = [r for r in logs if r.log_record.span_id != span_id]
                spans.append(
                    {
                        "call": call,
                        "name": span.name,
                        "kind": span.kind.name,
                        "scope": span.instrumentation_scope.name if span.instrumentation_scope else None,
                        "status": span.status.status_code.name,
                        "attributes": _attributes(span.attributes, port),
                        "events": [
                            {"name": e.name, "attributes": _attributes(e.attributes, port)} for e in span.events
                        ],
                        "logs": [_log(r, port) for r in own],
                    }
                )
            if logs:  # log records tied to no span of this call
                orphans = [_log(r, port) for r in logs]
                spans.append(
                    {"call": call, "name": None, "kind": None, "attributes": {}, "events": [], "logs": orphans}
                )
    instrumentor.uninstrument()

    distribution, env = INSTRUMENTATIONS[name]
    document = {
        "instrumentation": distribution,
        "version": version(distribution),
        "openai_version": version("openai"),
        "util_genai_version": version("opentelemetry-util-genai") if name.startswith("openai_v2") else None,
        "environment": env,
        "spans": spans,
    }
    output.write_text(json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")


def main() -> int:
    started = time.monotonic()
    processes: dict[str, subprocess.Popen[bytes]] = {}
    for name, (_, switches) in INSTRUMENTATIONS.items():
        env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED_ENV}
        env |= switches
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH")) if p)
        command = [sys.executable, str(Path(__file__).resolve()), "--one", name, str(HERE / f"{name}.json")]
        processes[name] = subprocess.Popen(command, cwd=REPO_ROOT, env=env)
    failed = [name for name, process in processes.items() if process.wait(timeout=60) != 0]
    for name in INSTRUMENTATIONS:
        if name not in failed:
            print(f"wrote {HERE / f'{name}.json'}")
    print(f"done in {time.monotonic() - started:.1f} s")
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--one":
        run_one(sys.argv[2], Path(sys.argv[3]))
    else:
        sys.exit(main())
