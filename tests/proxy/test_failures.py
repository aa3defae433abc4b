"""How the proxy fails: upstream errors verbatim, timeouts, disconnects, bad input, and telemetry that never blocks."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

from collector import semconv
from collector.component import ComponentID
from collector.config.types import Duration
from collector.errors import PermanentError, RetryableError
from collector.runtime import pool as pool_module
from collector.runtime.generated_metrics import COLLECTOR_WORKER_REFUSED_SPANS
from collector.telemetry import Telemetry
from proxy import export
from proxy.config import ProxyConfig, RetrySettings, TimeoutSettings, UpstreamConfig
from proxy.generated_metrics import PROXY_SPANS_DROPPED, PROXY_SPANS_SENT
from tests.collector.runtime.gate import HOLD, registry_with_gate
from tests.conftest import RunningService, make_traces, query_store
from tests.proxy.mock_upstream import MockUpstream, serve
from tests.proxy.support import RunningProxy, attributes, running_proxy, upstreams_for

KEY = "sk-test"
CHAT = "/v1/chat/completions"
MESSAGES = [{"role": "user", "content": "hello there"}]
CHAT_BODY: dict[str, Any] = {"model": "gpt-4o-mini", "messages": MESSAGES}
ANTHROPIC_HEADERS = {"x-api-key": KEY, "anthropic-version": "2023-06-01"}
# Disconnects must reach the upstream within this long.
CANCEL_WITHIN_SECONDS = 1.0
WAIT_SECONDS = 60.0
PROTOBUF = {"Content-Type": "application/x-protobuf"}


@pytest.fixture(scope="module")
def mock() -> Iterator[MockUpstream]:
    upstream = MockUpstream(stall_seconds=20)
    with serve(upstream) as url:
        upstream.url = url  # type: ignore[attr-defined]
        yield upstream


def _config(mock: MockUpstream, **changes: Any) -> ProxyConfig:
    return replace(ProxyConfig(upstreams=upstreams_for(mock.url)), **changes)  # type: ignore[attr-defined]


@pytest.fixture
def proxy(mock: MockUpstream) -> Iterator[RunningProxy]:
    mock.reset()
    with running_proxy(_config(mock)) as running:
        yield running


def _post(base: str, path: str, body: Any, scenario: str = "", **headers: str) -> httpx.Response:
    sent = {"Authorization": f"Bearer {KEY}", **headers}
    if scenario:
        sent["x-mock-scenario"] = scenario
    with httpx.Client(timeout=15) as client:
        if isinstance(body, bytes):
            return client.post(f"{base}{path}", content=body, headers=sent)
        return client.post(f"{base}{path}", json=body, headers=sent)


@pytest.mark.parametrize("scenario", ["error_429", "error_500", "error_400"])
def test_upstream_errors_go_back_verbatim(mock: MockUpstream, proxy: RunningProxy, scenario: str) -> None:
    direct = _post(mock.url, CHAT, CHAT_BODY, scenario)  # type: ignore[attr-defined]
    proxied = _post(proxy.url, CHAT, CHAT_BODY, scenario)

    assert proxied.status_code == direct.status_code >= 400
    assert proxied.content == direct.content
    assert proxied.headers.get("retry-after") == direct.headers.get("retry-after")
    span = proxy.sink.wait(1)[0]
    assert attributes(span)[semconv.ERROR_TYPE] == str(direct.status_code)
    assert span.status.status_code.name == "ERROR"


def test_an_error_inside_a_stream_marks_the_span(mock: MockUpstream, proxy: RunningProxy) -> None:
    proxied = _post(proxy.url, CHAT, {**CHAT_BODY, "stream": True}, "stream_error")

    assert proxied.status_code == 200
    assert attributes(proxy.sink.wait(1)[0])[semconv.ERROR_TYPE] == "server_error"


def test_an_upstream_that_sends_no_headers_in_time_gets_504(mock: MockUpstream) -> None:
    mock.reset()
    config = _config(mock, timeouts=TimeoutSettings(read=Duration(0.3)))
    with running_proxy(config) as proxy:
        openai_answer = _post(proxy.url, CHAT, CHAT_BODY, "stall_headers")
        anthropic_answer = _post(
            proxy.url,
            "/v1/messages",
            {"model": "claude-sonnet-4-6", "max_tokens": 8, "messages": MESSAGES},
            "stall_headers",
            **ANTHROPIC_HEADERS,
        )
        spans = proxy.sink.wait(2)

    assert openai_answer.status_code == anthropic_answer.status_code == 504
    assert openai_answer.json()["error"]["type"] == "timeout"
    assert anthropic_answer.json()["error"]["type"] == "timeout_error"
    assert [attributes(s)[semconv.ERROR_TYPE] for s in spans] == ["504", "504"]


def test_an_unreachable_upstream_gets_502() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: connections are refused
        upstream = UpstreamConfig(name="down", kind="openai", base_url=f"http://127.0.0.1:{port}/v1")
        with running_proxy(ProxyConfig(upstreams=(upstream,))) as proxy:
            with pytest.raises(openai.InternalServerError) as failure:
                openai.OpenAI(base_url=f"{proxy.url}/v1", api_key=KEY, max_retries=0).chat.completions.create(
                    model="gpt-4o-mini",
                    messages=MESSAGES,  # type: ignore[arg-type]
                )
            span = proxy.sink.wait(1)[0]

    assert failure.value.status_code == 502
    assert attributes(span)[semconv.ERROR_TYPE] == "502"


def test_a_stream_that_stalls_mid_way_ends_and_is_recorded(mock: MockUpstream) -> None:
    mock.reset()
    with running_proxy(_config(mock, timeouts=TimeoutSettings(read=Duration(0.3)))) as proxy:
        proxied = _post(proxy.url, CHAT, {**CHAT_BODY, "stream": True}, "stall")
        span = proxy.sink.wait(1)[0]

    assert proxied.status_code == 200
    assert proxied.content.startswith(b"data: ")
    values = attributes(span)
    assert values[semconv.ERROR_TYPE] == "timeout"
    assert values[semconv.RESPONSE_FINISH_REASONS] == ("error",)


def test_a_client_leaving_mid_stream_cancels_the_upstream_and_still_records(
    mock: MockUpstream, proxy: RunningProxy
) -> None:
    client = openai.OpenAI(base_url=f"{proxy.url}/v1", api_key=KEY, max_retries=0)
    stream = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=MESSAGES,  # type: ignore[arg-type]
        stream=True,
        extra_headers={"x-mock-scenario": "stall"},
    )
    first = next(iter(stream))
    left = time.monotonic()
    stream.close()

    assert mock.wait_for_disconnect(CANCEL_WITHIN_SECONDS)
    assert time.monotonic() - left < CANCEL_WITHIN_SECONDS
    values = attributes(proxy.sink.wait(1)[0])
    assert first.choices
    assert values[semconv.ERROR_TYPE] == "cancelled"
    assert values[semconv.USAGE_SOURCE] == "estimated"  # the usage chunk never came; what was delivered is counted
    assert values[semconv.USAGE_INPUT_TOKENS] > 0


def test_a_client_leaving_before_the_first_token_cancels_the_upstream(mock: MockUpstream, proxy: RunningProxy) -> None:
    with httpx.Client(timeout=0.3) as client, pytest.raises(httpx.ReadTimeout):
        client.post(
            f"{proxy.url}{CHAT}",
            json={**CHAT_BODY, "stream": True},
            headers={"Authorization": f"Bearer {KEY}", "x-mock-scenario": "stall_headers"},
        )
    left = time.monotonic()

    assert mock.wait_for_disconnect(CANCEL_WITHIN_SECONDS)
    assert time.monotonic() - left < CANCEL_WITHIN_SECONDS
    assert attributes(proxy.sink.wait(1)[0])[semconv.ERROR_TYPE] == "cancelled"


def test_telemetry_that_fails_never_fails_the_call(mock: MockUpstream, proxy: RunningProxy) -> None:
    proxy.sink.fail = True
    answers = [_post(proxy.url, CHAT, CHAT_BODY) for _ in range(3)]

    assert [a.status_code for a in answers] == [200, 200, 200]
    deadline = time.monotonic() + 5
    while proxy.telemetry.value("genai_proxy_spans_dropped", reason="export_failed") < 3:
        assert time.monotonic() < deadline, "dropped spans were not counted"
        time.sleep(0.01)


def test_telemetry_that_stalls_never_delays_the_call(mock: MockUpstream) -> None:
    mock.reset()
    with running_proxy(_config(mock, span_queue_size=2)) as proxy:
        proxy.sink.stall.set()
        answers = [_post(proxy.url, CHAT, CHAT_BODY) for _ in range(5)]
        dropped = proxy.telemetry.value("genai_proxy_spans_dropped", reason="queue_full")
        proxy.sink.stall.clear()

    assert [a.status_code for a in answers] == [200] * 5
    # One span is in the stalled send, two wait in the queue, the rest are dropped and counted.
    assert dropped == 2


def test_retries_before_the_first_byte_when_enabled(mock: MockUpstream) -> None:
    mock.reset()
    retry = RetrySettings(enabled=True, max_attempts=3, max_backoff=Duration(0.05))
    with running_proxy(_config(mock, retry=retry)) as proxy:
        answer = _post(proxy.url, CHAT, CHAT_BODY, "error_then_ok")
    assert answer.status_code == 200
    assert len(mock.requests_to(CHAT)) == 2


def test_no_retries_by_default(mock: MockUpstream, proxy: RunningProxy) -> None:
    answer = _post(proxy.url, CHAT, CHAT_BODY, "error_then_ok")
    assert answer.status_code == 503
    assert len(mock.requests_to(CHAT)) == 1


@pytest.mark.parametrize(
    ("path", "headers", "error_type"),
    [(CHAT, {}, "invalid_request_error"), ("/v1/messages", ANTHROPIC_HEADERS, "invalid_request_error")],
)
def test_a_body_that_is_not_json_gets_400_in_the_providers_format(
    proxy: RunningProxy, path: str, headers: dict[str, str], error_type: str
) -> None:
    answer = _post(proxy.url, path, b"{not json", **headers)
    assert answer.status_code == 400
    body = answer.json()
    assert (body["error"]["type"], body["error"]["message"]) == (error_type, "the request body is not valid JSON")


def test_a_body_over_the_limit_gets_413(mock: MockUpstream) -> None:
    with running_proxy(_config(mock, max_request_body_size=1024)) as proxy:
        answer = _post(proxy.url, CHAT, {**CHAT_BODY, "padding": "x" * 2048})
        anthropic_answer = _post(proxy.url, "/v1/messages", {"padding": "x" * 2048}, **ANTHROPIC_HEADERS)
    assert answer.status_code == anthropic_answer.status_code == 413
    assert answer.json()["error"]["code"] == "request_too_large"
    assert anthropic_answer.json()["error"]["type"] == "request_too_large"


def test_a_model_no_upstream_serves_gets_404_naming_the_upstreams(proxy: RunningProxy) -> None:
    with pytest.raises(openai.NotFoundError) as openai_failure:
        openai.OpenAI(base_url=f"{proxy.url}/v1", api_key=KEY, max_retries=0).chat.completions.create(
            model="llama-3-70b",
            messages=MESSAGES,  # type: ignore[arg-type]
        )
    with pytest.raises(anthropic.NotFoundError) as anthropic_failure:
        anthropic.Anthropic(base_url=proxy.url, api_key=KEY, max_retries=0).messages.create(
            model="gpt-4o",
            max_tokens=8,
            messages=MESSAGES,  # type: ignore[list-item]
        )
    body = openai_failure.value.body
    assert isinstance(body, dict)
    assert body["code"] == "model_not_found"
    assert "openai (openai: gpt-*" in body["message"] and "anthropic (anthropic: claude-*)" in body["message"]
    assert json.loads(anthropic_failure.value.response.content)["error"]["type"] == "not_found_error"


def test_spans_the_pipeline_keeps_refusing_are_tried_again_and_dropped_only_at_shutdown(
    mock: MockUpstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The proxy as a receiver behind a memory limiter that refuses everything (any process is over 1 MiB),
    # with a retryable error that says when to try again.
    upstream_url = mock.url  # type: ignore[attr-defined]
    config = f"""
receivers:
  genai_proxy:
    endpoint: 127.0.0.1:0
    upstreams:
      - name: openai
        kind: openai
        base_url: {upstream_url}/v1
        models: ["gpt-*"]
processors:
  memory_limiter:
    check_interval: 100ms
    limit_mib: 1
exporters:
  debug:
service:
  pipelines:
    traces:
      receivers: [genai_proxy]
      processors: [memory_limiter]
      exporters: [debug]
"""
    monkeypatch.setattr(export, "FLUSH_DEADLINE_SECONDS", 0.5)  # how long the last tries may take at shutdown
    mock.reset()
    service = RunningService(config, tmp_path)
    telemetry = service.service.telemetry
    try:
        port = service.service.receivers[ComponentID("genai_proxy")].port  # type: ignore[attr-defined]
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=KEY, max_retries=0)
        answers = [
            client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)  # type: ignore[arg-type]
            for _ in range(3)
        ]
        deadline = time.monotonic() + WAIT_SECONDS
        # More spans refused than were made: the refused ones were kept and sent again.
        while _refused_by_the_pipeline(telemetry) < 2 * len(answers):
            assert time.monotonic() < deadline, "spans the pipeline refused were not tried again"
            time.sleep(0.01)
        assert not _dropped(telemetry)
    finally:
        service.stop()

    assert all(answer.choices[0].message.content for answer in answers)
    assert _dropped(telemetry) == {"shutdown": 3}
    assert telemetry.value(PROXY_SPANS_SENT.name) == 0


def _refused_by_the_pipeline(telemetry: Telemetry) -> float:
    return telemetry.value("otelcol_receiver_refused_spans", receiver="genai_proxy", transport="http")


def _dropped(telemetry: Telemetry) -> dict[str, float]:
    reasons = ("queue_full", "export_failed", "retries_exhausted", "shutdown")
    counts = {reason: telemetry.value(PROXY_SPANS_DROPPED.name, reason=reason) for reason in reasons}
    return {reason: count for reason, count in counts.items() if count}


def _gated_config(store: Path, fifo: Path, upstream_url: str, span_queue_size: int) -> str:
    return f"""
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:0
  genai_proxy:
    endpoint: 127.0.0.1:0
    span_queue_size: {span_queue_size}
    upstreams:
      - name: openai
        kind: openai
        base_url: {upstream_url}/v1
        models: ["gpt-*"]
processors:
  gate:
    fifo: "{fifo}"
exporters:
  clickhouse:
    endpoint: chdb://{store}
    sending_queue:
      storage: memory
      batch:
        flush_timeout: 20ms
service:
  workers: 1
  pipelines:
    traces:
      receivers: [otlp, genai_proxy]
      processors: [gate]
      exporters: [clickhouse]
"""


def _calls_while_the_pool_pushes_back(
    upstream: MockUpstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, calls: int, span_queue_size: int
) -> tuple[Telemetry, list[Any]]:
    """``calls`` proxied while a batch held in the one worker fills its bound, so the pool refuses the proxy's
    spans; then the batch goes on. The collector's telemetry and the spans stored, by name, once it stopped."""
    fifo = tmp_path / "gate"
    os.mkfifo(fifo)
    held = make_traces(20, name=HOLD)
    monkeypatch.setattr(pool_module, "MAX_BYTES_IN_FLIGHT", held.ByteSize() + 10)
    upstream.reset()
    store = tmp_path / "store"
    config = _gated_config(store, fifo, upstream.url, span_queue_size)  # type: ignore[attr-defined]
    service = RunningService(config, tmp_path / "run", registry_with_gate())
    telemetry = service.service.telemetry
    deadline = time.monotonic() + WAIT_SECONDS

    def until(condition: Callable[[], bool], failure: str) -> None:
        while not condition():
            assert time.monotonic() < deadline, failure
            time.sleep(0.01)

    try:
        url = f"http://127.0.0.1:{service.port()}/v1/traces"
        body = held.SerializeToString()
        holding = threading.Thread(
            target=httpx.post, args=(url,), kwargs={"content": body, "headers": PROTOBUF, "timeout": WAIT_SECONDS}
        )
        holding.start()
        pool = service.service._pool
        assert pool is not None
        until(lambda: pool._workers[0].bytes_in_flight > 0, "the held batch never reached the worker")

        port = service.service.receivers[ComponentID("genai_proxy")].port  # type: ignore[attr-defined]
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=KEY, max_retries=0)
        for _ in range(calls):
            client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)  # type: ignore[arg-type]
        until(
            lambda: (
                telemetry.value(COLLECTOR_WORKER_REFUSED_SPANS.name, reason="in_flight") >= min(calls, span_queue_size)
            ),
            "the worker pool did not push the proxy's spans back",
        )
        assert not telemetry.value(PROXY_SPANS_SENT.name)

        with fifo.open("wb") as gate:  # the held batch goes on; the pool takes batches again
            gate.write(b"x")
        holding.join(WAIT_SECONDS)
        until(
            lambda: telemetry.value(PROXY_SPANS_SENT.name) + sum(_dropped(telemetry).values()) >= calls,
            "the refused spans were not sent again",
        )
    finally:
        service.stop()
    stored = query_store(store, "SELECT SpanName, count() FROM otel_traces GROUP BY SpanName ORDER BY SpanName")
    return telemetry, stored


def test_spans_the_worker_pool_pushed_back_arrive_once_it_takes_them_again(
    mock: MockUpstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    telemetry, stored = _calls_while_the_pool_pushes_back(mock, tmp_path, monkeypatch, calls=3, span_queue_size=100)

    assert telemetry.value(PROXY_SPANS_SENT.name) == 3
    assert not _dropped(telemetry)
    assert stored == [["chat gpt-4o-mini", 3], [HOLD, 20]]  # each once


def test_refused_spans_wait_within_the_queue_bound_and_what_does_not_fit_is_dropped(
    mock: MockUpstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    telemetry, stored = _calls_while_the_pool_pushes_back(mock, tmp_path, monkeypatch, calls=3, span_queue_size=2)

    # Two spans fit the queue while the pool refuses them; the third was dropped and counted.
    assert telemetry.value(PROXY_SPANS_SENT.name) == 2
    assert _dropped(telemetry) == {"queue_full": 1}
    assert stored == [["chat gpt-4o-mini", 2], [HOLD, 20]]


def test_spans_refused_past_their_wait_are_dropped_and_counted(
    mock: MockUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(export, "RETRY_MAX_ELAPSED_SECONDS", 0.0)
    mock.reset()
    with running_proxy(_config(mock)) as proxy:
        proxy.sink.refuse = RetryableError("the queue is full", retry_after=0.01)
        _post(proxy.url, CHAT, CHAT_BODY)
        deadline = time.monotonic() + WAIT_SECONDS
        while not _dropped(proxy.telemetry):
            assert time.monotonic() < deadline, "the refused span was neither kept nor dropped"
            time.sleep(0.01)
    assert _dropped(proxy.telemetry) == {"retries_exhausted": 1}


def test_a_permanent_refusal_drops_the_spans_at_once(mock: MockUpstream) -> None:
    mock.reset()
    with running_proxy(_config(mock)) as proxy:
        proxy.sink.refuse = PermanentError("malformed")
        _post(proxy.url, CHAT, CHAT_BODY)
        deadline = time.monotonic() + WAIT_SECONDS
        while not _dropped(proxy.telemetry):
            assert time.monotonic() < deadline, "the refused span was not dropped"
            time.sleep(0.01)
        sends = proxy.sink.sends
    assert _dropped(proxy.telemetry) == {"export_failed": 1}
    assert sends == 1  # never sent again
