"""A call recorded by opentelemetry-instrumentation-openai-v2 with its content in log events only (no content on the
span), through a running collector into the store: the Read API's trace view shows the call's messages on its span,
and its calls (genai_calls) with them, whichever of span and events arrived first, each in its own batch. The same
call with its content on the span shows the same.

The real openai SDK calls the mock upstream (tests.proxy.mock_upstream) in a process of its own (the instrumentation
patches the openai module for the whole process): tests.collector.extensions.api.produce_content_events.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from collector import semconv
from collector.component import ComponentID
from tests.conftest import RunningService
from tests.proxy.mock_upstream import MockUpstream, serve

REPO_ROOT = Path(__file__).resolve().parents[4]
WAIT_SECONDS = 30.0
POLL_SECONDS = 0.02
PRODUCER_TIMEOUT_SECONDS = 120.0
CLIENT_TIMEOUT_SECONDS = 10.0
# The mock's reply after a tool result (tests.proxy.mock_upstream.reply_text).
REPLY = 'Thanks! The tool said: {"city": "Paris", "sky": "sunny"}'
INPUT_MESSAGES = [
    {"role": "system", "parts": [{"type": "text", "content": "You are a terse assistant."}]},
    {"role": "user", "parts": [{"type": "text", "content": "What is the weather in Paris?"}]},
    {
        "role": "assistant",
        "parts": [{"type": "tool_call", "id": "call_1", "name": "get_weather", "arguments": {"city": "Paris"}}],
    },
    {
        "role": "tool",
        "parts": [{"type": "tool_call_response", "id": "call_1", "response": '{"city": "Paris", "sky": "sunny"}'}],
    },
]


def _config(chdb_dir: Path, keys_file: Path) -> str:
    return f"""
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:0
exporters:
  clickhouse:
    endpoint: chdb://{chdb_dir}
    sending_queue:
      batch:
        flush_timeout: 50ms
extensions:
  api:
    endpoint: 127.0.0.1:0
    grpc_endpoint: 127.0.0.1:0
    keys_file: {keys_file}
service:
  extensions: [api]
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [clickhouse]
    logs:
      receivers: [otlp]
      exporters: [clickhouse]
"""


@pytest.fixture(scope="module")
def upstream() -> Iterator[str]:
    with serve(MockUpstream()) as url:
        yield url


def _wait_for(collector: RunningService, counter: str, at_least: float) -> None:
    """Bounded wait until the clickhouse exporter has stored ``at_least`` items (its own sent counter)."""
    telemetry = collector.service.telemetry
    deadline = time.monotonic() + WAIT_SECONDS
    while telemetry.value(counter, exporter="clickhouse") < at_least:
        if time.monotonic() > deadline:
            raise AssertionError(f"{counter} did not reach {at_least} in {WAIT_SECONDS}s")
        time.sleep(POLL_SECONDS)


def _produce(collector: RunningService, upstream: str, mode: str, order: str) -> dict[str, Any]:
    """Run the producer; once its first signal is stored, let it send the second; wait until that is stored."""
    otlp = f"http://127.0.0.1:{collector.port()}"
    command = [sys.executable, "-m", "tests.collector.extensions.api.produce_content_events", mode, upstream, otlp]
    with subprocess.Popen(
        [*command, order], cwd=REPO_ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as producer:
        assert producer.stdin is not None and producer.stdout is not None
        try:
            assert producer.stdout.readline().strip() == "first sent"
            first, second = ("spans", "log_records") if order == "spans_first" else ("log_records", "spans")
            if mode != "span":  # content on the span: there are no events to send
                _wait_for(collector, f"otelcol_exporter_sent_{first}", 1)
                # Nothing of the second signal is in the store yet: it has not been sent.
                telemetry = collector.service.telemetry
                assert telemetry.value(f"otelcol_exporter_sent_{second}", exporter="clickhouse") == 0
            producer.stdin.write("go\n")
            producer.stdin.flush()
            produced: dict[str, Any] = json.loads(producer.stdout.readline())
            assert producer.wait(PRODUCER_TIMEOUT_SECONDS) == 0
        finally:
            if producer.poll() is None:
                producer.kill()
    _wait_for(collector, "otelcol_exporter_sent_spans", 1)
    if produced["events"]:
        _wait_for(collector, "otelcol_exporter_sent_log_records", len(produced["events"]))
    return produced


def _span_attributes(trace: dict[str, Any], span_id: str) -> dict[str, Any]:
    for resource_spans in trace["resourceSpans"]:
        for scope_spans in resource_spans["scopeSpans"]:
            for span in scope_spans["spans"]:
                if span["spanId"] == span_id:
                    return {kv["key"]: next(iter(kv["value"].values())) for kv in span["attributes"]}
    raise AssertionError(f"span {span_id} is not in the trace")


EXPECTED_EVENTS = {
    "details": ["gen_ai.client.inference.operation.details"],
    "per_message": [
        "gen_ai.system.message",
        "gen_ai.user.message",
        "gen_ai.assistant.message",
        "gen_ai.tool.message",
        "gen_ai.choice",
    ],
    "span": [],
}


@pytest.mark.parametrize(
    ("mode", "order"),
    [
        ("per_message", "spans_first"),
        ("per_message", "events_first"),
        ("details", "spans_first"),
        ("details", "events_first"),
        ("span", "spans_first"),
    ],
)
def test_a_calls_content_is_with_it_in_the_trace_view_and_the_calls(
    mode: str, order: str, upstream: str, chdb_path: Path, tmp_path: Path
) -> None:
    collector = RunningService(_config(chdb_path, tmp_path / "keys.json"), tmp_path)
    try:
        produced = _produce(collector, upstream, mode, order)
        [call] = produced["calls"]
        assert produced["events"] == EXPECTED_EVENTS[mode]
        store = collector.service.exporters[ComponentID("clickhouse")].sender  # type: ignore[attr-defined]
        # The span carries content only when the instrumentation put it there; events are stored once in otel_logs.
        [[span_keys]] = store.query(
            f"SELECT mapKeys(SpanAttributes) FROM otel_traces WHERE SpanId = '{call['span_id']}'"
        ).rows
        on_span = {semconv.INPUT_MESSAGES, semconv.OUTPUT_MESSAGES} & set(span_keys)
        assert on_span == ({semconv.INPUT_MESSAGES, semconv.OUTPUT_MESSAGES} if mode == "span" else set())
        [[events]] = store.query(
            f"SELECT count() FROM otel_logs WHERE TraceId = '{call['trace_id']}' AND SpanId = '{call['span_id']}'"
        ).rows
        assert events == len(EXPECTED_EVENTS[mode])

        api = f"http://127.0.0.1:{collector.api_port()}/api/v1"
        response = httpx.get(f"{api}/traces/{call['trace_id']}", timeout=CLIENT_TIMEOUT_SECONDS)
        assert response.status_code == 200, response.text
        attributes = _span_attributes(response.json()["trace"], call["span_id"])
        calls = httpx.get(f"{api}/calls", params={"content": "true"}, timeout=CLIENT_TIMEOUT_SECONDS)
        assert calls.status_code == 200, calls.text
        without = httpx.get(f"{api}/calls", timeout=CLIENT_TIMEOUT_SECONDS)
    finally:
        collector.stop()
    output = [{"role": "assistant", "parts": [{"type": "text", "content": REPLY}], "finish_reason": "stop"}]
    assert json.loads(attributes[semconv.INPUT_MESSAGES]) == INPUT_MESSAGES
    assert json.loads(attributes[semconv.OUTPUT_MESSAGES]) == output
    [listed] = calls.json()["calls"]
    assert (listed["trace_id"], listed["span_id"]) == (call["trace_id"], call["span_id"])
    assert listed["content"] == {semconv.INPUT_MESSAGES: INPUT_MESSAGES, semconv.OUTPUT_MESSAGES: output}
    assert "content" not in without.json()["calls"][0]
