"""How the proxy fails: upstream errors verbatim, timeouts, disconnects, bad input, and telemetry that never blocks."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
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
from proxy.config import ProxyConfig, RetrySettings, TimeoutSettings, UpstreamConfig
from tests.conftest import RunningService
from tests.proxy.mock_upstream import MockUpstream, serve
from tests.proxy.support import RunningProxy, attributes, running_proxy, upstreams_for

KEY = "sk-test"
CHAT = "/v1/chat/completions"
MESSAGES = [{"role": "user", "content": "hello there"}]
CHAT_BODY: dict[str, Any] = {"model": "gpt-4o-mini", "messages": MESSAGES}
ANTHROPIC_HEADERS = {"x-api-key": KEY, "anthropic-version": "2023-06-01"}
# Disconnects must reach the upstream within this long.
CANCEL_WITHIN_SECONDS = 1.0


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


def test_a_pipeline_that_refuses_the_spans_never_fails_the_call(mock: MockUpstream, tmp_path: Path) -> None:
    # The proxy as a receiver behind a memory limiter that refuses everything (any process is over 1 MiB).
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
    check_interval: 1s
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
    mock.reset()
    service = RunningService(config, tmp_path)
    try:
        port = service.service.receivers[ComponentID("genai_proxy")].port  # type: ignore[attr-defined]
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=KEY, max_retries=0)
        answers = [
            client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)  # type: ignore[arg-type]
            for _ in range(3)
        ]
        telemetry = service.service.telemetry
        deadline = time.monotonic() + 5
        while telemetry.value("genai_proxy_spans_dropped", reason="export_failed") < 3:
            assert time.monotonic() < deadline, "spans the pipeline refused were not counted as dropped"
            time.sleep(0.01)
    finally:
        service.stop()

    assert all(answer.choices[0].message.content for answer in answers)
    refused = telemetry.value("otelcol_receiver_refused_spans", receiver="genai_proxy", transport="http")
    assert refused == 3
