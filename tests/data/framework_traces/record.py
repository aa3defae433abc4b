"""Record agent frameworks, each running as it ships, against the mock upstream through the proxy.

Usage (each framework lives in a virtualenv or node_modules of its own, outside the repository; the README
lists the exact versions and the commands that make them)::

    .venv/bin/python -m tests.data.framework_traces.record pydantic_ai --runtime /path/to/venv/bin/python
    .venv/bin/python -m tests.data.framework_traces.record vercel_ai --runtime /path/to/node_modules

For one framework this:

1. serves ``tests/proxy/mock_upstream.py`` and the proxy (``ProxyService`` in-process, content capture on)
   on loopback, the proxy's upstream being the mock, and an OTLP/HTTP endpoint that keeps every export
   request exactly as it arrived;
2. runs the framework's client (``clients/``) with the plan below on stdin: ``GENAI_BASE_URL`` points the
   model at the proxy, ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` its OpenTelemetry SDK's exporter at the
   endpoint. The client flushes its exporter after each run and says so, so spans are told apart by run;
3. writes ``<framework>.json``: the export requests' spans, untouched (OTLP/JSON, the format of
   ``tests/data/agent_traces``); ``<framework>.calls.json``: each model call as the client sent it to the
   proxy (path, body, its W3C traceparent and scenario header), so a test can send the same calls through a
   live proxy again; and the framework's entries of ``manifest.json``.

A client's traceparent is recovered without touching the proxy: the proxy replaces it by its own span's
context when it forwards the call, and that span's parent is what the client sent.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan

from collector.config.types import HostPort
from proxy.config import ProxyConfig
from tests.data import agent_traces
from tests.data.framework_traces import (
    CLIENTS,
    MANIFEST,
    MODEL,
    PLAN_SEED,
    RUNS,
    Call,
    Habits,
    calls_path,
    dump_calls,
    spans_path,
    write_gzip,
)
from tests.proxy.mock_upstream import SCENARIO_HEADER, MockUpstream, RecordedRequest, serve
from tests.proxy.support import running_proxy, upstreams_for

API_KEY = "sk-test-recording"
CLIENT_TIMEOUT_SECONDS = 600.0


@dataclass(frozen=True)
class Framework:
    """How to run one framework's client, and what to say about the recording."""

    client: str  # file under clients/
    packages: tuple[str, ...]  # distributions (or npm packages) whose versions the manifest records
    source: str  # the framework and the instrumentation that emitted the spans
    # The attribute (key, value) of the span that makes a model call, to find it by order when the
    # instrumentation does not make that span current during the HTTP request (no traceparent is sent).
    model_span: tuple[str, str] = ("", "")
    node: bool = False
    env: tuple[tuple[str, str], ...] = ()
    habits: Habits = Habits()


FRAMEWORKS: dict[str, Framework] = {
    "pydantic_ai": Framework(
        "pydantic_ai_agent.py",
        ("pydantic-ai-slim", "openai", "opentelemetry-sdk", "opentelemetry-exporter-otlp-proto-http"),
        "pydantic-ai (its own instrumentation)",
    ),
    "langgraph_openinference": Framework(
        "langgraph_agent.py",
        (
            "langgraph",
            "langchain-core",
            "langchain-openai",
            "openinference-instrumentation-langchain",
            "openai",
            "opentelemetry-sdk",
        ),
        "LangGraph + openinference-instrumentation-langchain",
        model_span=("openinference.span.kind", "LLM"),
        env=(("LANGGRAPH_TRACING", "openinference"),),
        habits=Habits(stops_before_tools=True),
    ),
    "langgraph_langsmith": Framework(
        "langgraph_agent.py",
        ("langgraph", "langchain-core", "langchain-openai", "langsmith", "openai", "opentelemetry-sdk"),
        "LangGraph + LangSmith's OpenTelemetry export",
        model_span=("langsmith.span.kind", "llm"),
        env=(("LANGGRAPH_TRACING", "langsmith"),),
        habits=Habits(stops_before_tools=True),
    ),
    "vercel_ai": Framework(
        "vercel_agent.mjs",
        ("ai", "@ai-sdk/openai", "@opentelemetry/sdk-trace-node", "@opentelemetry/exporter-trace-otlp-proto"),
        "Vercel AI SDK (experimental_telemetry)",
        node=True,
        habits=Habits(tool_span_name="ai.toolCall"),
    ),
    "crewai": Framework(
        "crewai_agent.py",
        ("crewai", "openinference-instrumentation-crewai", "openinference-instrumentation-openai", "openai"),
        "CrewAI + openinference-instrumentation-crewai and -openai",
        model_span=("openinference.span.kind", "LLM"),
    ),
    "google_adk": Framework(
        "adk_agent.py",
        ("google-adk", "anthropic", "opentelemetry-sdk", "opentelemetry-exporter-otlp-proto-http"),
        "Google ADK (its own instrumentation)",
        habits=Habits(call_in_client_span=True),
    ),
}


class OtlpCapture:
    """An OTLP/HTTP traces endpoint on loopback that keeps every export request as it arrived."""

    def __init__(self) -> None:
        self.requests: list[ExportTraceServiceRequest] = []
        self._lock = threading.Lock()
        capture = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (the stdlib's name)
                body = _read_body(self)
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                with capture._lock:
                    capture.requests.append(request)
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)

    @contextmanager
    def running(self) -> Iterator[str]:
        thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{self._server.server_address[1]}/v1/traces"
        finally:
            self._server.shutdown()
            self._server.server_close()

    def taken(self, start: int) -> list[ExportTraceServiceRequest]:
        with self._lock:
            return list(self.requests[start:])


def _read_body(handler: BaseHTTPRequestHandler) -> bytes:
    """The request body, sized by content-length or sent in chunks (the JavaScript exporter chunks)."""
    if handler.headers.get("transfer-encoding", "").lower() != "chunked":
        return handler.rfile.read(int(handler.headers.get("content-length", "0")))
    body = b""
    while True:
        size = int(handler.rfile.readline().split(b";")[0].strip(), 16)
        if size == 0:
            handler.rfile.readline()
            return body
        body += handler.rfile.read(size)
        handler.rfile.readline()


@dataclass
class RunRecord:
    name: str
    outcome: str
    requests: list[ExportTraceServiceRequest]
    model_calls: list[RecordedRequest]


def record(name: str, runtime: Path) -> None:
    framework = FRAMEWORKS[name]
    mock = MockUpstream()
    capture = OtlpCapture()
    config = ProxyConfig(endpoint=HostPort("127.0.0.1", 0), upstreams=upstreams_for(""), capture_content=True)
    runs: list[RunRecord] = []
    with serve(mock) as upstream, capture.running() as otlp:
        with running_proxy(replace(config, upstreams=upstreams_for(upstream))) as proxy:
            env = {
                **{k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR")},
                "GENAI_BASE_URL": f"{proxy.url}/v1",
                "GENAI_API_KEY": API_KEY,
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": otlp,
                **dict(framework.env),
            }
            if framework.node:
                env["NODE_PATH"] = str(runtime)
                command = ["node", str(CLIENTS / framework.client)]
            else:
                command = [str(runtime), str(CLIENTS / framework.client)]
            plan = {"model": MODEL, "seed": PLAN_SEED, "runs": [run.plan() for run in RUNS]}
            process = subprocess.Popen(
                command, cwd=CLIENTS, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
            )
            assert process.stdin is not None and process.stdout is not None
            process.stdin.write(json.dumps(plan))
            process.stdin.close()
            exported, called = 0, 0
            for line in process.stdout:
                print(line.rstrip(), file=sys.stderr)
                if not line.startswith("RUN-END "):
                    continue
                run_name, _, outcome = line.removeprefix("RUN-END ").strip().partition(" ")
                requests = capture.taken(exported)
                model_calls = list(mock.requests[called:])
                exported, called = exported + len(requests), called + len(model_calls)
                runs.append(RunRecord(run_name, outcome, requests, model_calls))
            if process.wait(CLIENT_TIMEOUT_SECONDS) != 0:
                raise SystemExit(f"{framework.client} exited with {process.returncode}")
            proxy_spans = proxy.sink.wait(len(mock.requests))
    _write(name, framework, runs, proxy_spans, _versions(framework, runtime))


def _client_traceparent(request: RecordedRequest, proxy_spans: list[ReadableSpan]) -> str:
    """The traceparent the client sent (the parent of the proxy span whose context went upstream), or ""."""
    sent_up = request.headers.get("traceparent", "")
    span_id = int(sent_up.split("-")[2], 16)
    proxy_ids = {span.context.span_id for span in proxy_spans}
    for span in proxy_spans:
        if span.context.span_id == span_id:
            parent = span.parent
            # A proxy span's parent can be the proxy's own earlier call of the conversation (it chains calls
            # whose history continues one), which is not what the client sent.
            if parent is None or parent.span_id in proxy_ids:
                return ""
            return f"00-{parent.trace_id:032x}-{parent.span_id:016x}-01"
    raise AssertionError(f"no proxy span for {request.path}")


def _write(
    name: str, framework: Framework, runs: list[RunRecord], proxy_spans: list[ReadableSpan], packages: dict[str, str]
) -> None:
    merged = ExportTraceServiceRequest()
    calls: list[Call] = []
    entries: list[dict[str, Any]] = []
    planned = {run.name: run for run in RUNS}
    for run in runs:
        for request in run.requests:
            merged.resource_spans.extend(request.resource_spans)
        run_calls = [
            Call(
                run=run.name,
                path=request.path,
                traceparent=_client_traceparent(request, proxy_spans),
                scenario=request.headers.get(SCENARIO_HEADER, ""),
                body=request.json(),
            )
            for request in run.model_calls
        ]
        calls.extend(run_calls)
        spans = [span for request in run.requests for span in agent_traces.spans(request)]
        trace_ids = list(dict.fromkeys(s.trace_id.hex() for s in sorted(spans, key=lambda s: s.start_time_unix_nano)))
        model_spans = [
            span.span_id.hex()
            for span in sorted(spans, key=lambda s: s.start_time_unix_nano)
            if any(a.key == framework.model_span[0] and a.value.string_value == framework.model_span[1]
                   for a in span.attributes)
        ]  # fmt: skip
        entry = planned[run.name].entry(
            name, framework.source, run.outcome, trace_ids, run_calls, spans, model_spans, framework.habits
        )
        entries.append(entry)
    write_gzip(spans_path(name), agent_traces.dumps(merged))
    write_gzip(calls_path(name), dump_calls(calls))
    document: dict[str, Any] = json.loads(MANIFEST.read_text(encoding="utf-8")) if MANIFEST.exists() else {}
    frameworks = document.get("frameworks", {})
    frameworks[name] = {"source": framework.source, "packages": packages}
    recordings = [e for e in document.get("recordings", []) if e["framework"] != name] + entries
    document = {
        "about": "Agent frameworks recorded against tests/proxy/mock_upstream.py through the proxy. See README.md.",
        "frameworks": dict(sorted(frameworks.items())),
        "recordings": sorted(recordings, key=lambda e: (e["framework"], e["name"])),
    }
    MANIFEST.write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def _versions(framework: Framework, runtime: Path) -> dict[str, str]:
    if framework.node:
        found = {}
        for package in framework.packages:
            manifest = json.loads((runtime / package / "package.json").read_text(encoding="utf-8"))
            found[package] = str(manifest["version"])
        return found
    script = (
        "import json, sys; from importlib.metadata import version; "
        "print(json.dumps({p: version(p) for p in sys.argv[1:]}))"
    )
    output = subprocess.run(
        [str(runtime), "-c", script, *framework.packages], check=True, capture_output=True, text=True
    ).stdout
    return {str(k): str(v) for k, v in json.loads(output).items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("framework", choices=sorted(FRAMEWORKS))
    parser.add_argument("--runtime", type=Path, required=True, help="the venv's python, or the node_modules directory")
    arguments = parser.parse_args()
    record(arguments.framework, arguments.runtime)


if __name__ == "__main__":
    main()
