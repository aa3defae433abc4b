"""Anthropic Messages through the proxy with the official anthropic SDK: untouched replies, complete spans."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import pytest

from collector import semconv
from proxy.config import ProxyConfig
from tests.proxy.mock_upstream import ANTHROPIC_MESSAGE_ID, TOOL_USE_ID, MockUpstream, serve
from tests.proxy.support import RunningProxy, attributes, running_proxy, upstreams_for

KEY = "sk-ant-test"
MODEL = "claude-sonnet-4-6"
MESSAGES: list[Any] = [{"role": "user", "content": "What is the capital of France?"}]
WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


@pytest.fixture(scope="module")
def mock() -> Iterator[MockUpstream]:
    upstream = MockUpstream(anthropic_key=KEY)
    with serve(upstream) as url:
        upstream.url = url  # type: ignore[attr-defined]
        yield upstream


@pytest.fixture
def proxy(mock: MockUpstream) -> Iterator[RunningProxy]:
    mock.reset()
    config = ProxyConfig(upstreams=upstreams_for(mock.url), capture_content=True)  # type: ignore[attr-defined]
    with running_proxy(config) as running:
        yield running


def _client(base: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=base, api_key=KEY, max_retries=0, timeout=10)


def _raw(base: str, path: str, body: dict[str, Any]) -> httpx.Response:
    headers = {"x-api-key": KEY, "anthropic-version": "2023-06-01"}
    with httpx.Client(timeout=10) as client:
        response = client.post(f"{base}{path}", json=body, headers=headers)
        response.read()
        return response


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/messages", {"model": MODEL, "max_tokens": 64, "messages": MESSAGES}),
        ("/v1/messages", {"model": MODEL, "max_tokens": 64, "messages": MESSAGES, "stream": True}),
        (
            "/v1/messages",
            {"model": MODEL, "max_tokens": 64, "messages": MESSAGES, "tools": [WEATHER_TOOL], "stream": True},
        ),
        ("/v1/messages/count_tokens", {"model": MODEL, "messages": MESSAGES}),
    ],
    ids=["messages", "messages-stream", "messages-stream-tools", "count-tokens"],
)
def test_the_client_receives_exactly_what_the_upstream_sends(
    mock: MockUpstream, proxy: RunningProxy, path: str, body: dict[str, Any]
) -> None:
    direct = _raw(mock.url, path, body)  # type: ignore[attr-defined]
    proxied = _raw(proxy.url, path, body)

    assert proxied.status_code == direct.status_code == 200
    assert proxied.content == direct.content
    for header in ("content-type", "request-id"):
        assert proxied.headers.get(header) == direct.headers.get(header)
    assert proxy.sink.wait(1)


@pytest.mark.parametrize("stream", [False, True])
def test_messages_span_with_cache_tokens(mock: MockUpstream, proxy: RunningProxy, stream: bool) -> None:
    client = _client(proxy.url)
    request: dict[str, Any] = {
        "model": MODEL,
        "max_tokens": 64,
        "system": "Answer in one word.",
        "messages": MESSAGES,
        "stop_sequences": ["STOP"],
        # This SDK release dropped sampling parameters from its signature; the API still takes them.
        "extra_body": {"temperature": 0.5, "top_k": 40},
        "extra_headers": {"x-mock-scenario": "cached"},
    }
    if stream:
        with client.messages.stream(**request) as events:
            message = events.get_final_message()
    else:
        message = client.messages.create(**request)

    span = proxy.sink.wait(1)[0]
    values = attributes(span)
    usage = message.usage
    cache_read = usage.cache_read_input_tokens or 0
    cache_creation = usage.cache_creation_input_tokens or 0
    assert cache_read > 0
    assert span.name == f"chat {MODEL}"
    assert values[semconv.PROVIDER_NAME] == "anthropic"
    assert values[semconv.RESPONSE_ID] == ANTHROPIC_MESSAGE_ID
    assert values[semconv.REQUEST_TOP_K] == 40 and isinstance(values[semconv.REQUEST_TOP_K], int)
    assert values[semconv.REQUEST_TEMPERATURE] == 0.5
    assert values[semconv.REQUEST_STOP_SEQUENCES] == ("STOP",)
    # The conventions count cached tokens inside the input total; Anthropic reports them apart.
    assert values[semconv.USAGE_INPUT_TOKENS] == usage.input_tokens + cache_read + cache_creation
    assert values[semconv.USAGE_CACHE_READ_INPUT_TOKENS] == cache_read
    assert values[semconv.USAGE_CACHE_WRITE_INPUT_TOKENS] == cache_creation
    assert values[semconv.USAGE_OUTPUT_TOKENS] == usage.output_tokens
    assert values[semconv.RESPONSE_FINISH_REASONS] == ("end_turn",)
    assert json.loads(values[semconv.SYSTEM_INSTRUCTIONS]) == [{"type": "text", "content": "Answer in one word."}]
    [output] = json.loads(values[semconv.OUTPUT_MESSAGES])
    assert output == {
        "role": "assistant",
        "parts": [{"type": "text", "content": message.content[0].text}],  # type: ignore[union-attr]
    }


def test_streamed_tool_use_is_rebuilt_on_the_span(mock: MockUpstream, proxy: RunningProxy) -> None:
    with _client(proxy.url).messages.stream(
        model=MODEL,
        max_tokens=64,
        messages=MESSAGES,
        tools=[WEATHER_TOOL],  # type: ignore[list-item]
    ) as events:
        message = events.get_final_message()
    tool_use = next(block for block in message.content if block.type == "tool_use")

    values = attributes(proxy.sink.wait(1)[0])
    assert values[semconv.RESPONSE_FINISH_REASONS] == ("tool_use",)
    [output] = json.loads(values[semconv.OUTPUT_MESSAGES])
    assert "finish_reason" not in output  # deprecated there: gen_ai.response.finish_reasons carries it
    assert output["parts"][-1] == {
        "type": "tool_call",
        "id": TOOL_USE_ID,
        "name": "get_weather",
        "arguments": tool_use.input,
    }
    assert json.loads(values[semconv.TOOL_DEFINITIONS]) == [
        {
            "type": "function",
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": WEATHER_TOOL["input_schema"],
        }
    ]


def test_tool_results_are_recorded_with_the_tool_role(mock: MockUpstream, proxy: RunningProxy) -> None:
    history: list[Any] = [
        *MESSAGES,
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": TOOL_USE_ID, "name": "get_weather", "input": {"city": "Paris"}}],
        },
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": TOOL_USE_ID, "content": "rainy"}]},
    ]
    _client(proxy.url).messages.create(model=MODEL, max_tokens=64, messages=history, tools=[WEATHER_TOOL])  # type: ignore[list-item]

    values = attributes(proxy.sink.wait(1)[0])
    messages = json.loads(values[semconv.INPUT_MESSAGES])
    assert [m["role"] for m in messages] == ["user", "assistant", "tool"]
    assert messages[1]["parts"] == [
        {"type": "tool_call", "id": TOOL_USE_ID, "name": "get_weather", "arguments": {"city": "Paris"}}
    ]
    assert messages[2]["parts"] == [{"type": "tool_call_response", "id": TOOL_USE_ID, "response": "rainy"}]


def test_count_tokens_span_has_no_usage(mock: MockUpstream, proxy: RunningProxy) -> None:
    counted = _client(proxy.url).messages.count_tokens(model=MODEL, messages=MESSAGES)

    span = proxy.sink.wait(1)[0]
    values = attributes(span)
    assert counted.input_tokens > 0
    assert span.name == f"count_tokens {MODEL}"
    assert semconv.USAGE_INPUT_TOKENS not in values


def test_previous_conventions_when_configured(mock: MockUpstream) -> None:
    config = ProxyConfig(
        upstreams=upstreams_for(mock.url),  # type: ignore[attr-defined]
        capture_content=True,
        semconv="v1.41",
    )
    with running_proxy(config) as proxy:
        _client(proxy.url).messages.create(
            model=MODEL,
            max_tokens=64,
            messages=MESSAGES,
            extra_body={"top_k": 5},
            extra_headers={"x-mock-scenario": "cached"},
        )
        values = attributes(proxy.sink.wait(1)[0])

    assert values[semconv.REQUEST_TOP_K] == 5.0
    assert isinstance(values[semconv.REQUEST_TOP_K], float)
    assert semconv.USAGE_CACHE_CREATION_INPUT_TOKENS in values
    assert semconv.USAGE_CACHE_WRITE_INPUT_TOKENS not in values
    [output] = json.loads(values[semconv.OUTPUT_MESSAGES])
    assert output["finish_reason"] == "stop"
