"""OpenAI-style endpoints through the proxy with the official openai SDK: untouched replies, complete spans."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from collector import semconv
from proxy.config import ProxyConfig
from tests.proxy.mock_upstream import CALL_ID, CHAT_COMPLETION_ID, RESPONSE_ID, MockUpstream, serve
from tests.proxy.support import RunningProxy, attributes, running_proxy, upstreams_for

KEY = "sk-test-openai"
MESSAGES: list[Any] = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "What is the capital of France?"},
]
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


@pytest.fixture(scope="module")
def mock() -> Iterator[MockUpstream]:
    upstream = MockUpstream(openai_key=KEY)
    with serve(upstream) as url:
        upstream.url = url  # type: ignore[attr-defined]
        yield upstream


@pytest.fixture
def proxy(mock: MockUpstream) -> Iterator[RunningProxy]:
    mock.reset()
    config = ProxyConfig(upstreams=upstreams_for(mock.url), capture_content=True)  # type: ignore[attr-defined]
    with running_proxy(config) as running:
        yield running


def _client(base: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{base}/v1", api_key=KEY, max_retries=0, timeout=10)


def _raw(base: str, path: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> httpx.Response:
    """The response as bytes, read whole (streams included)."""
    sent = {"Authorization": f"Bearer {KEY}", **(headers or {})}
    with httpx.Client(timeout=10) as client:
        response = client.post(f"{base}{path}", json=body, headers=sent)
        response.read()
        return response


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/chat/completions", {"model": "gpt-4o-mini", "messages": MESSAGES}),
        ("/v1/chat/completions", {"model": "gpt-4o-mini", "messages": MESSAGES, "stream": True}),
        (
            "/v1/chat/completions",
            {"model": "gpt-4o-mini", "messages": MESSAGES, "stream": True, "stream_options": {"include_usage": True}},
        ),
        (
            "/v1/chat/completions",
            {"model": "gpt-4o-mini", "messages": MESSAGES, "tools": [WEATHER_TOOL], "stream": True},
        ),
        ("/v1/completions", {"model": "text-davinci-003", "prompt": "Say hi", "max_tokens": 8}),
        ("/v1/completions", {"model": "text-davinci-003", "prompt": "Say hi", "stream": True}),
        ("/v1/responses", {"model": "gpt-4.1", "input": "Say hi"}),
        ("/v1/responses", {"model": "gpt-4.1", "input": "Say hi", "stream": True}),
        ("/v1/embeddings", {"model": "text-embedding-3-small", "input": ["a", "b"]}),
    ],
    ids=[
        "chat",
        "chat-stream",
        "chat-stream-usage",
        "chat-stream-tools",
        "completions",
        "completions-stream",
        "responses",
        "responses-stream",
        "embeddings",
    ],
)
def test_the_client_receives_exactly_what_the_upstream_sends(
    mock: MockUpstream, proxy: RunningProxy, path: str, body: dict[str, Any]
) -> None:
    direct = _raw(mock.url, path, body)  # type: ignore[attr-defined]
    proxied = _raw(proxy.url, path, body)

    assert proxied.status_code == direct.status_code == 200
    assert proxied.content == direct.content
    for header in ("content-type", "x-request-id", "openai-processing-ms"):
        assert proxied.headers.get(header) == direct.headers.get(header)
    assert proxy.sink.wait(1)


def test_a_stream_without_usage_asked_gets_usage_upstream_but_not_downstream(
    mock: MockUpstream, proxy: RunningProxy
) -> None:
    body = {"model": "gpt-4o-mini", "messages": MESSAGES, "stream": True}
    proxied = _raw(proxy.url, "/v1/chat/completions", body)

    forwarded = mock.requests_to("/v1/chat/completions")[-1].json()
    assert forwarded["stream_options"] == {"include_usage": True}
    assert b'"usage"' not in proxied.content
    span = attributes(proxy.sink.wait(1)[0])
    assert span[semconv.USAGE_INPUT_TOKENS] > 0 and span[semconv.USAGE_OUTPUT_TOKENS] > 0
    assert span[semconv.USAGE_SOURCE] == "provider"


def test_chat_span_carries_request_response_usage_and_content(mock: MockUpstream, proxy: RunningProxy) -> None:
    reference = _client(mock.url).chat.completions.create(  # type: ignore[attr-defined]
        model="gpt-4o-mini", messages=MESSAGES, max_tokens=50, temperature=0.2, top_p=0.9, seed=7, stop=["END"]
    )
    completion = _client(proxy.url).chat.completions.create(
        model="gpt-4o-mini",
        messages=MESSAGES,
        max_tokens=50,
        temperature=0.2,
        top_p=0.9,
        seed=7,
        stop=["END"],
        extra_headers={"x-mock-scenario": "cached,reasoning"},
    )
    assert completion.choices[0].message.content == reference.choices[0].message.content

    span = proxy.sink.wait(1)[0]
    values = attributes(span)
    assert span.name == "chat gpt-4o-mini"
    assert span.kind.name == "CLIENT"
    assert values[semconv.OPERATION_NAME] == "chat"
    assert values[semconv.PROVIDER_NAME] == "openai"
    assert values[semconv.REQUEST_MODEL] == "gpt-4o-mini"
    assert values[semconv.REQUEST_MAX_TOKENS] == 50
    assert values[semconv.REQUEST_TEMPERATURE] == 0.2
    assert values[semconv.REQUEST_TOP_P] == 0.9
    assert values[semconv.REQUEST_SEED] == 7
    assert values[semconv.REQUEST_STOP_SEQUENCES] == ("END",)
    assert values[semconv.RESPONSE_ID] == CHAT_COMPLETION_ID
    assert values[semconv.RESPONSE_MODEL] == completion.model
    assert values[semconv.RESPONSE_FINISH_REASONS] == ("stop",)
    usage = completion.usage
    assert usage is not None and usage.prompt_tokens_details and usage.completion_tokens_details
    assert values[semconv.USAGE_INPUT_TOKENS] == usage.prompt_tokens
    assert values[semconv.USAGE_OUTPUT_TOKENS] == usage.completion_tokens
    assert values[semconv.USAGE_CACHE_READ_INPUT_TOKENS] == usage.prompt_tokens_details.cached_tokens > 0
    assert values[semconv.USAGE_REASONING_OUTPUT_TOKENS] == usage.completion_tokens_details.reasoning_tokens > 0
    assert values[semconv.SERVER_ADDRESS] == "127.0.0.1"
    assert values[semconv.SERVER_PORT] == httpx.URL(mock.url).port  # type: ignore[attr-defined]
    assert values[semconv.OPENAI_RESPONSE_SYSTEM_FINGERPRINT] == completion.system_fingerprint
    assert json.loads(values[semconv.INPUT_MESSAGES]) == [
        {"role": "system", "parts": [{"type": "text", "content": "You are terse."}]},
        {"role": "user", "parts": [{"type": "text", "content": "What is the capital of France?"}]},
    ]
    assert json.loads(values[semconv.OUTPUT_MESSAGES]) == [
        {
            "role": "assistant",
            "parts": [{"type": "text", "content": completion.choices[0].message.content}],
        }
    ]
    assert semconv.REQUEST_STREAM not in values
    assert semconv.ERROR_TYPE not in values


def test_streamed_tool_call_is_rebuilt_on_the_span(mock: MockUpstream, proxy: RunningProxy) -> None:
    stream = _client(proxy.url).chat.completions.create(
        model="gpt-4o-mini",
        messages=MESSAGES,
        tools=[WEATHER_TOOL],
        stream=True,  # type: ignore[list-item]
    )
    chunks = list(stream)
    streamed_arguments = "".join(
        call.function.arguments or ""
        for chunk in chunks
        for choice in chunk.choices
        for call in choice.delta.tool_calls or []
        if call.function
    )

    values = attributes(proxy.sink.wait(1)[0])
    assert values[semconv.REQUEST_STREAM] is True
    assert values[semconv.RESPONSE_FINISH_REASONS] == ("tool_calls",)
    assert values[semconv.RESPONSE_TIME_TO_FIRST_CHUNK] > 0
    assert values[semconv.USAGE_SOURCE] == "provider"
    assert json.loads(values[semconv.TOOL_DEFINITIONS]) == [
        {
            "type": "function",
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": WEATHER_TOOL["function"]["parameters"],  # type: ignore[index]
        }
    ]
    [message] = json.loads(values[semconv.OUTPUT_MESSAGES])
    assert "finish_reason" not in message  # deprecated there: gen_ai.response.finish_reasons carries it
    assert message["parts"] == [
        {"type": "tool_call", "id": CALL_ID, "name": "get_weather", "arguments": json.loads(streamed_arguments)}
    ]


def test_a_server_that_ignores_include_usage_gets_estimated_usage(mock: MockUpstream, proxy: RunningProxy) -> None:
    stream = _client(proxy.url).chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True, extra_headers={"x-mock-scenario": "no_usage"}
    )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)

    values = attributes(proxy.sink.wait(1)[0])
    assert text
    assert values[semconv.USAGE_SOURCE] == "estimated"
    assert values[semconv.USAGE_INPUT_TOKENS] > 0
    assert values[semconv.USAGE_OUTPUT_TOKENS] > 0


def test_choice_count_is_recorded(mock: MockUpstream, proxy: RunningProxy) -> None:
    completion = _client(proxy.url).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, n=2)

    values = attributes(proxy.sink.wait(1)[0])
    assert len(completion.choices) == 2
    assert values[semconv.REQUEST_CHOICE_COUNT] == 2
    assert values[semconv.RESPONSE_FINISH_REASONS] == ("stop", "stop")
    assert len(json.loads(values[semconv.OUTPUT_MESSAGES])) == 2


@pytest.mark.parametrize("stream", [False, True])
def test_responses_api_span(mock: MockUpstream, proxy: RunningProxy, stream: bool) -> None:
    client = _client(proxy.url)
    if stream:
        events = list(client.responses.create(model="gpt-4.1", input="Say hi", instructions="Be brief", stream=True))
        response = events[-1].response  # type: ignore[union-attr]
    else:
        response = client.responses.create(model="gpt-4.1", input="Say hi", instructions="Be brief")

    values = attributes(proxy.sink.wait(1)[0])
    assert values[semconv.OPERATION_NAME] == "chat"
    assert values[semconv.OPENAI_API_TYPE] == "responses"
    assert values[semconv.RESPONSE_ID] == RESPONSE_ID
    assert response.usage is not None
    assert values[semconv.USAGE_INPUT_TOKENS] == response.usage.input_tokens
    assert values[semconv.USAGE_OUTPUT_TOKENS] == response.usage.output_tokens
    assert values[semconv.RESPONSE_FINISH_REASONS] == ("stop",)
    assert json.loads(values[semconv.SYSTEM_INSTRUCTIONS]) == [{"type": "text", "content": "Be brief"}]
    [message] = json.loads(values[semconv.OUTPUT_MESSAGES])
    assert message["parts"] == [{"type": "text", "content": response.output_text}]


def test_completions_span(mock: MockUpstream, proxy: RunningProxy) -> None:
    completion = _client(proxy.url).completions.create(model="text-davinci-003", prompt="Say hi", max_tokens=8)

    span = proxy.sink.wait(1)[0]
    values = attributes(span)
    assert span.name == "text_completion text-davinci-003"
    assert values[semconv.REQUEST_MAX_TOKENS] == 8
    assert completion.usage is not None
    assert values[semconv.USAGE_OUTPUT_TOKENS] == completion.usage.completion_tokens


def test_embeddings_span(mock: MockUpstream, proxy: RunningProxy) -> None:
    result = _client(proxy.url).embeddings.create(model="text-embedding-3-small", input=["a", "b"])

    span = proxy.sink.wait(1)[0]
    values = attributes(span)
    assert span.name == "embeddings text-embedding-3-small"
    assert values[semconv.EMBEDDINGS_DIMENSION_COUNT] == len(result.data[0].embedding)
    assert values[semconv.REQUEST_ENCODING_FORMATS] == ("base64",)  # what the SDK asks for
    assert values[semconv.USAGE_INPUT_TOKENS] == result.usage.prompt_tokens
    assert semconv.USAGE_OUTPUT_TOKENS not in values


def test_models_and_other_paths_pass_through_with_a_plain_span(mock: MockUpstream, proxy: RunningProxy) -> None:
    models = _client(proxy.url).models.list()
    auth = {"Authorization": f"Bearer {KEY}"}
    with httpx.Client(timeout=10, headers=auth) as client:
        files = client.get(f"{proxy.url}/v1/files")
        direct_files = client.get(f"{mock.url}/v1/files")  # type: ignore[attr-defined]
        missing = client.get(f"{proxy.url}/v1/no/such/thing")
        direct_missing = client.get(f"{mock.url}/v1/no/such/thing")  # type: ignore[attr-defined]

    assert [m.id for m in models.data]
    assert (files.status_code, files.content) == (200, direct_files.content)
    # The upstream's own 404, not one the proxy made up.
    assert missing.status_code == 404
    assert missing.content == direct_missing.content
    names = sorted(span.name for span in proxy.sink.wait(3))
    assert names == ["GET /v1/files", "GET /v1/models", "GET /v1/no/such/thing"]
