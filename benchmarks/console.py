"""The web console in headless Chromium on a large store: the overview, the trace list and a 2,000-span trace view.

The store is benchmarks/read_api.py's (``--spans`` GenAI spans, 5 million by
default, over ``--days`` days, made by its generator), plus one agent trace of
``--trace-spans`` spans (2,000: an agent, its chat calls with their messages
and its tool calls) sent over OTLP/HTTP to the running collector, which runs
the shipped config (benchmarks/harness.py's derived copy).

Each page is opened ``--repeats`` times in a fresh tab of one browser profile
(assets cached and revalidated, as a user's second visit) and timed from the
navigation's start to the console's ``console-ready`` mark (its data on
screen), then to the browser's next idle period (``requestIdleCallback``):
"rendered, browser idle". Aims: overview and trace list within 1 s, the
2,000-span trace within 1.5 s. Beside each, the baseline: the same API
requests made by a plain HTTP client, so the ratio is what the browser adds.
The page weight of a first visit (empty cache) is printed per page: the
console's own files and the API's answers, as transferred and as decoded.

    make bench-console
    python benchmarks/console.py [--spans 5000000] [--days 7] [--repeats 10] [--trace-spans 2000]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import harness
import httpx
import read_api
import report

sys.path.insert(0, str(harness.REPO_ROOT))

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest  # noqa: E402
from opentelemetry.proto.trace.v1.trace_pb2 import Span  # noqa: E402

from collector.extensions.api.params import format_timestamp  # noqa: E402
from tests.collector.extensions.api.console.browser import DESKTOP, chromium, new_context  # noqa: E402

NANOS = 1_000_000_000
TRACE_SPANS = 2_000
AIMS_MS = {"overview": 1000.0, "trace list": 1000.0, "trace view": 1500.0}
IDLE_TIMEOUT_MS = 10_000
STORE_WAIT_SECONDS = 120.0
POLL_SECONDS = 0.2
# Resolves with performance.now() at the console's ready mark and at the next idle period after it.
READY_AND_IDLE = """
async (idleTimeout) => {
  while (!performance.getEntriesByName("console-ready").length) await new Promise((r) => setTimeout(r, 5));
  const ready = performance.getEntriesByName("console-ready")[0].startTime;
  await new Promise((r) => requestIdleCallback(r, { timeout: idleTimeout }));
  return { ready, idle: performance.now() };
}
"""
# Bytes of the page and what it loaded: the console's files and the API's answers, transferred and decoded.
PAGE_WEIGHT = """
() => {
  const entries = [performance.getEntriesByType("navigation")[0], ...performance.getEntriesByType("resource")];
  const sum = (items, key) => items.reduce((total, item) => total + (item[key] || 0), 0);
  const api = entries.filter((e) => new URL(e.name).pathname.startsWith("/api/"));
  const files = entries.filter((e) => !new URL(e.name).pathname.startsWith("/api/"));
  return {
    files: files.length, files_transferred: sum(files, "transferSize"), files_decoded: sum(files, "decodedBodySize"),
    requests: api.length, api_transferred: sum(api, "transferSize"), api_decoded: sum(api, "decodedBodySize"),
  };
}
"""


def _attribute(span: Span, key: str, value: Any) -> None:
    pair = span.attributes.add()
    pair.key = key
    if isinstance(value, str):
        pair.value.string_value = value
    elif isinstance(value, float):
        pair.value.double_value = value
    else:
        pair.value.int_value = int(value)


def big_trace(spans: int, start_ns: int, seed: int = 7) -> tuple[str, ExportTraceServiceRequest]:
    """One agent trace of ``spans`` spans: the agent, then chat calls (with their messages) and tool calls in turn."""
    rng = random.Random(seed)
    trace_id = rng.randbytes(16)
    request = ExportTraceServiceRequest()
    resource = request.resource_spans.add()
    resource.resource.attributes.add(key="service.name").value.string_value = "deep-research-agent"
    scope = resource.scope_spans.add()
    root = scope.spans.add(trace_id=trace_id, span_id=rng.randbytes(8), name="invoke_agent researcher", kind=1)
    _attribute(root, "gen_ai.operation.name", "invoke_agent")
    _attribute(root, "gen_ai.agent.name", "researcher")
    at = start_ns
    for index in range(spans - 1):
        duration = rng.randint(50, 900) * 1_000_000
        span = scope.spans.add(trace_id=trace_id, span_id=rng.randbytes(8), parent_span_id=root.span_id)
        span.start_time_unix_nano, span.end_time_unix_nano = at, at + duration
        if index % 2 == 0:
            span.name, span.kind = "chat gpt-4o", 3
            messages = [
                {"role": "user", "parts": [{"type": "text", "content": f"Step {index}: read the next source."}]},
                {
                    "role": "tool",
                    "parts": [{"type": "tool_call_response", "id": f"call_{index}", "response": "x" * 200}],
                },
            ]
            reply = [{"role": "assistant", "parts": [
                {"type": "tool_call", "id": f"call_{index + 1}", "name": "fetch", "arguments": {"url": f"https://example.org/{index}"}}
            ]}]  # fmt: skip
            for key, value in (
                ("gen_ai.operation.name", "chat"), ("gen_ai.provider.name", "openai"),
                ("gen_ai.request.model", "gpt-4o"), ("gen_ai.usage.input_tokens", rng.randint(200, 4000)),
                ("gen_ai.usage.output_tokens", rng.randint(10, 300)),
                ("gen_ai.input.messages", json.dumps(messages)), ("gen_ai.output.messages", json.dumps(reply)),
            ):  # fmt: skip
                _attribute(span, key, value)
        else:
            span.name, span.kind = "execute_tool fetch", 1
            _attribute(span, "gen_ai.operation.name", "execute_tool")
            _attribute(span, "gen_ai.tool.name", "fetch")
            _attribute(span, "gen_ai.tool.call.arguments", json.dumps({"url": f"https://example.org/{index}"}))
        at += duration
    root.start_time_unix_nano, root.end_time_unix_nano = start_ns, at
    return trace_id.hex(), request


def send_big_trace(otlp_port: int, api: httpx.Client, spans: int, start_ns: int) -> str:
    trace_id, request = big_trace(spans, start_ns)
    answer = httpx.post(
        f"http://{harness.LOOPBACK}:{otlp_port}/v1/traces",
        content=request.SerializeToString(),
        headers={"Content-Type": "application/x-protobuf"},
        timeout=harness.CLIENT_TIMEOUT_SECONDS,
    )
    answer.raise_for_status()
    deadline = time.monotonic() + STORE_WAIT_SECONDS
    while time.monotonic() < deadline:  # across processes there is no event to await: the API is asked
        stored = api.get(f"/api/v1/traces/{trace_id}")
        if stored.status_code == 200 and stored.json()["summary"]["span_count"] >= spans:
            return trace_id
        time.sleep(POLL_SECONDS)
    raise RuntimeError(f"the {spans}-span trace was not stored within {STORE_WAIT_SECONDS:.0f}s")


def api_requests(page: str, window: dict[str, str], trace_id: str) -> list[tuple[str, dict[str, str]]]:
    """The API requests the console makes for ``page`` (static/js/pages/*.js), for the plain-client baseline."""
    if page == "overview":
        stats = [{}, {"bucket": "15minutes"}, {"bucket": "15minutes", "group_by": "model"}, {"group_by": "model"}]
        return [("/api/v1/about", {})] + [("/api/v1/stats", {**window, **extra}) for extra in stats]
    if page == "trace list":
        return [("/api/v1/about", {}), ("/api/v1/services", window), ("/api/v1/traces", {**window, "limit": "50"})]
    return [("/api/v1/about", {}), (f"/api/v1/traces/{trace_id}", {})]


def measure(api_url: str, trace_id: str, day_ns: int, repeats: int) -> None:
    window = {"start": format_timestamp(day_ns), "end": format_timestamp(day_ns + read_api.DAY)}
    query = f"start={window['start']}&end={window['end']}"
    pages = {"overview": f"/?{query}", "trace list": f"/traces?{query}", "trace view": f"/traces/{trace_id}"}
    figures = report.Figures()
    weights: dict[str, dict[str, int]] = {}
    with chromium() as browser, httpx.Client(base_url=api_url, timeout=harness.CLIENT_TIMEOUT_SECONDS) as client:
        for name, path in pages.items():
            cold = new_context(browser, viewport=DESKTOP)
            tab = cold.new_page()
            tab.goto(api_url + path)
            tab.evaluate(READY_AND_IDLE, IDLE_TIMEOUT_MS)
            weights[name] = tab.evaluate(PAGE_WEIGHT)
            cold.close()
        warm = new_context(browser, viewport=DESKTOP)
        for _ in range(repeats):
            for name, path in pages.items():
                tab = warm.new_page()
                tab.goto(api_url + path)
                times = tab.evaluate(READY_AND_IDLE, IDLE_TIMEOUT_MS)
                tab.close()
                figures.add(f"{name}: data on screen (ms)", times["ready"])
                figures.add(f"{name}: rendered, idle (ms)", times["idle"])
                started = time.perf_counter()
                for request_path, params in api_requests(name, window, trace_id):
                    client.get(request_path, params=params).raise_for_status()
                figures.add(f"{name}: API alone (ms)", (time.perf_counter() - started) * 1000)
        warm.close()
    print("\nTimes from navigation start, medians over the repeats:")
    figures.print(decimals=0)
    for name in pages:
        print(report.ratio_line(f"{name}: browser / API alone", figures[f"{name}: rendered, idle (ms)"],
                                figures[f"{name}: API alone (ms)"]))  # fmt: skip
        idle = report.summarize(figures[f"{name}: rendered, idle (ms)"]).median
        print(f"{name}: rendered and idle, median {idle:.0f} ms (aim <= {AIMS_MS[name]:.0f} ms)")
    print("\nPage weight, first visit (bytes transferred / decoded):")
    for name, weight in weights.items():
        files = f"{weight['files']} ({weight['files_transferred']:,} / {weight['files_decoded']:,})"
        answers = f"{weight['requests']} ({weight['api_transferred']:,} / {weight['api_decoded']:,})"
        print(f"{name:<12} console files: {files}, API answers: {answers}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spans", type=int, default=5_000_000)
    parser.add_argument("--days", type=int, default=7, help="days the spans are spread over")
    parser.add_argument("--repeats", type=int, default=10, help="times each page is opened")
    parser.add_argument("--trace-spans", type=int, default=TRACE_SPANS, help="spans of the trace the view opens")
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}")
    today = time.time_ns() // read_api.DAY * read_api.DAY
    first_ns = today - args.days * read_api.DAY
    with tempfile.TemporaryDirectory(prefix="console-bench-") as tmp:
        work = Path(tmp)
        store_dir = work / "data" / "clickhouse"
        started = time.perf_counter()
        with multiprocessing.get_context("spawn").Pool(1) as pool:
            pool.apply(read_api.build_store, (str(store_dir), args.spans, args.days, first_ns, 1))
        print(f"store made in {time.perf_counter() - started:.0f}s: {args.spans:,} spans over {args.days} days")
        config = harness.derive_config(work)
        collector = harness.start_collector(config, work)
        try:
            api_url = f"http://{harness.LOOPBACK}:{config.port('extensions.api')}"
            day = first_ns + (args.days // 2) * read_api.DAY
            with httpx.Client(base_url=api_url, timeout=harness.CLIENT_TIMEOUT_SECONDS) as client:
                trace_id = send_big_trace(
                    config.port("receivers.otlp.protocols.http"), client, args.trace_spans, day + 3600 * NANOS
                )
            print(f"trace view: {trace_id}, {args.trace_spans:,} spans")
            measure(api_url, trace_id, day, args.repeats)
        finally:
            collector.stop()


if __name__ == "__main__":
    main()
