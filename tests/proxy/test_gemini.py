"""The Gemini API through the proxy with the google-genai SDK: untouched replies, complete spans, keys kept out."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from google import genai
from google.genai import errors, types

from collector import semconv
from collector.config.types import Secret
from collector.keys import KeyStore
from processors.genai_cost.prices import PriceBook, Usage
from proxy.config import AuthSettings, ProxyConfig, UpstreamConfig
from tests.proxy.mock_upstream import (
    GEMINI_RESPONSE_ID,
    GEMINI_THOUGHT,
    SCENARIO_HEADER,
    MockUpstream,
    pieces,
    reply_text,
    serve,
)
from tests.proxy.support import RunningProxy, attributes, running_proxy

KEY = "AIzaSy-test-gemini-upstream-key"
MODEL = "gemini-2.5-flash"
PROMPT = "What is the capital of France?"
SYSTEM = "You are terse."
GENERATE = f"/v1beta/models/{MODEL}:generateContent"
STREAM = f"/v1beta/models/{MODEL}:streamGenerateContent"
BODY: dict[str, Any] = {
    "contents": [{"role": "user", "parts": [{"text": PROMPT}]}],
    "systemInstruction": {"parts": [{"text": SYSTEM}]},
    "generationConfig": {"temperature": 0.5, "maxOutputTokens": 64, "topK": 40},
}
WEATHER = types.Tool(
    function_declarations=[
        types.FunctionDeclaration(
            name="get_weather",
            description="Weather for a city",
            parameters=types.Schema(type=types.Type.OBJECT, properties={"city": types.Schema(type=types.Type.STRING)}),
        )
    ]
)


def gemini_upstream(url: str, key: str = "") -> UpstreamConfig:
    return UpstreamConfig(
        name="gemini", kind="gemini", base_url=url, api_key=Secret(key), models=("gemini-*", "text-embedding-*")
    )


@pytest.fixture(scope="module")
def mock() -> Iterator[MockUpstream]:
    upstream = MockUpstream(gemini_key=KEY)
    with serve(upstream) as url:
        upstream.url = url  # type: ignore[attr-defined]
        yield upstream


@pytest.fixture
def proxy(mock: MockUpstream) -> Iterator[RunningProxy]:
    mock.reset()
    config = ProxyConfig(upstreams=(gemini_upstream(mock.url),), capture_content=True)  # type: ignore[attr-defined]
    with running_proxy(config) as running:
        yield running


def _client(base: str, scenarios: str = "", key: str = KEY) -> genai.Client:
    headers = {SCENARIO_HEADER: scenarios} if scenarios else {}
    options = types.HttpOptions(base_url=base, headers=headers, timeout=10_000)
    return genai.Client(api_key=key, http_options=options)


def _raw(base: str, path: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> httpx.Response:
    with httpx.Client(timeout=10) as client:
        response = client.post(f"{base}{path}", json=body, headers={"x-goog-api-key": KEY, **(headers or {})})
        response.read()
        return response


def _config(**settings: Any) -> types.GenerateContentConfig:
    return types.GenerateContentConfig(system_instruction=SYSTEM, temperature=0.5, max_output_tokens=64, **settings)


def _comparable(response: Any) -> Any:
    """An SDK response without the HTTP details the SDK attaches (headers differ: content-length, date)."""
    return response.model_dump(exclude={"sdk_http_response"})


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (GENERATE, BODY),
        (f"{STREAM}?alt=sse", BODY),
        (STREAM, BODY),  # the JSON-array stream
        (f"/v1beta/models/{MODEL}:countTokens", {"contents": BODY["contents"]}),
        ("/v1beta/models/text-embedding-004:embedContent", {"content": {"parts": [{"text": "a"}]}}),
        (
            "/v1beta/models/gemini-embedding-001:batchEmbedContents",
            {"requests": [{"model": "models/gemini-embedding-001", "content": {"parts": [{"text": t}]}} for t in "ab"]},
        ),
        (f"/v1/models/{MODEL}:generateContent", BODY),
    ],
    ids=["generate", "stream-sse", "stream-json-array", "count-tokens", "embed", "batch-embed", "v1"],
)
def test_the_client_receives_exactly_what_the_upstream_sends(
    mock: MockUpstream, proxy: RunningProxy, path: str, body: dict[str, Any]
) -> None:
    direct = _raw(mock.url, path, body)  # type: ignore[attr-defined]
    proxied = _raw(proxy.url, path, body)

    assert proxied.status_code == direct.status_code == 200
    assert proxied.content == direct.content
    assert proxied.headers["content-type"] == direct.headers["content-type"]
    assert proxy.sink.wait(1)


def test_the_sdk_gets_the_same_answers_through_the_proxy(mock: MockUpstream, proxy: RunningProxy) -> None:
    direct, proxied = _client(mock.url), _client(proxy.url)  # type: ignore[attr-defined]
    for client in (direct, proxied):
        assert client.models.generate_content(model=MODEL, contents=PROMPT, config=_config()).text
    assert _comparable(proxied.models.generate_content(model=MODEL, contents=PROMPT, config=_config())) == _comparable(
        direct.models.generate_content(model=MODEL, contents=PROMPT, config=_config())
    )
    streamed = [_comparable(c) for c in proxied.models.generate_content_stream(model=MODEL, contents=PROMPT)]
    assert streamed == [_comparable(c) for c in direct.models.generate_content_stream(model=MODEL, contents=PROMPT)]
    assert len(streamed) > 2
    assert _comparable(proxied.models.count_tokens(model=MODEL, contents=PROMPT)) == _comparable(
        direct.models.count_tokens(model=MODEL, contents=PROMPT)
    )
    embedded = proxied.models.embed_content(model="gemini-embedding-001", contents=["a", "b"])
    assert _comparable(embedded) == _comparable(
        direct.models.embed_content(model="gemini-embedding-001", contents=["a", "b"])
    )
    assert embedded.embeddings is not None and len(embedded.embeddings) == 2


def test_a_generate_content_span_has_usage_content_and_a_price(proxy: RunningProxy) -> None:
    client = _client(proxy.url, "reasoning,cached")
    config = _config(thinking_config=types.ThinkingConfig(include_thoughts=True), top_k=40)
    reply = client.models.generate_content(model=MODEL, contents=PROMPT, config=config)
    usage = reply.usage_metadata
    assert usage is not None and usage.thoughts_token_count == 16 and usage.cached_content_token_count

    span = proxy.sink.wait(1)[0]
    attrs = attributes(span)
    assert span.name == f"generate_content {MODEL}"
    assert attrs[semconv.PROVIDER_NAME] == "gcp.gemini"
    assert attrs[semconv.OPERATION_NAME] == semconv.GENERATE_CONTENT
    assert attrs[semconv.REQUEST_MODEL] == attrs[semconv.RESPONSE_MODEL] == MODEL
    assert attrs[semconv.RESPONSE_ID] == GEMINI_RESPONSE_ID
    assert attrs[semconv.REQUEST_TEMPERATURE] == 0.5 and attrs[semconv.REQUEST_MAX_TOKENS] == 64
    assert attrs[semconv.REQUEST_TOP_K] == 40
    assert attrs[semconv.RESPONSE_FINISH_REASONS] == ("STOP",)
    assert attrs[semconv.USAGE_INPUT_TOKENS] == usage.prompt_token_count
    assert attrs[semconv.USAGE_OUTPUT_TOKENS] == (usage.candidates_token_count or 0) + 16
    assert attrs[semconv.USAGE_CACHE_READ_INPUT_TOKENS] == usage.cached_content_token_count
    assert attrs[semconv.USAGE_REASONING_OUTPUT_TOKENS] == 16
    assert attrs[semconv.USAGE_SOURCE] == "provider"
    assert json.loads(attrs[semconv.SYSTEM_INSTRUCTIONS]) == [{"type": "text", "content": SYSTEM}]
    assert json.loads(attrs[semconv.INPUT_MESSAGES]) == [
        {"role": "user", "parts": [{"type": "text", "content": PROMPT}]}
    ]
    output = json.loads(attrs[semconv.OUTPUT_MESSAGES])
    assert output == [
        {
            "role": "assistant",
            "parts": [{"type": "reasoning", "content": GEMINI_THOUGHT}, {"type": "text", "content": reply.text}],
        }
    ]
    cost = PriceBook().cost(
        attrs[semconv.PROVIDER_NAME],
        attrs[semconv.RESPONSE_MODEL],
        Usage(
            input_tokens=attrs[semconv.USAGE_INPUT_TOKENS],
            output_tokens=attrs[semconv.USAGE_OUTPUT_TOKENS],
            cache_read_tokens=attrs[semconv.USAGE_CACHE_READ_INPUT_TOKENS],
            reasoning_tokens=attrs[semconv.USAGE_REASONING_OUTPUT_TOKENS],
        ),
        time.time_ns(),
    )
    assert cost is not None and cost.total > 0 and cost.cache_read > 0 and cost.reasoning > 0


@pytest.mark.parametrize("sse", [True, False], ids=["sse", "json-array"])
def test_a_stream_span_takes_the_last_chunks_usage_and_the_whole_text(proxy: RunningProxy, sse: bool) -> None:
    path = f"{STREAM}?alt=sse" if sse else STREAM
    reply = _raw(proxy.url, path, BODY, {SCENARIO_HEADER: "reasoning"})
    assert reply.status_code == 200

    attrs = attributes(proxy.sink.wait(1)[0])
    assert attrs[semconv.REQUEST_STREAM] is True
    assert attrs[semconv.USAGE_SOURCE] == "provider"
    assert attrs[semconv.USAGE_REASONING_OUTPUT_TOKENS] == 16
    assert attrs[semconv.RESPONSE_FINISH_REASONS] == ("STOP",)
    assert semconv.RESPONSE_TIME_TO_FIRST_CHUNK in attrs
    text = json.loads(attrs[semconv.OUTPUT_MESSAGES])[0]["parts"][0]["content"]
    assert text == reply_text(PROMPT)  # every chunk's text, joined
    assert attrs[semconv.USAGE_OUTPUT_TOKENS] == len(pieces(text)) + 16


def test_function_calls_and_their_results_are_recorded(proxy: RunningProxy) -> None:
    client = _client(proxy.url)
    config = types.GenerateContentConfig(
        tools=[WEATHER], automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True)
    )
    first = client.models.generate_content(model=MODEL, contents="Weather in Rome?", config=config)
    assert first.function_calls and first.function_calls[0].name == "get_weather"
    history = [
        types.Content(role="user", parts=[types.Part(text="Weather in Rome?")]),
        first.candidates[0].content,  # type: ignore[index]
        types.Content(role="user", parts=[types.Part.from_function_response(name="get_weather", response={"t": 21})]),
    ]
    client.models.generate_content(model=MODEL, contents=history, config=config)

    first_span, second_span = (attributes(s) for s in proxy.sink.wait(2))
    call = json.loads(first_span[semconv.OUTPUT_MESSAGES])[0]["parts"][0]
    assert call == {"type": "tool_call", "id": None, "name": "get_weather", "arguments": {"city": "Paris"}}
    assert json.loads(first_span[semconv.TOOL_DEFINITIONS])[0]["name"] == "get_weather"
    roles = [m["role"] for m in json.loads(second_span[semconv.INPUT_MESSAGES])]
    assert roles == ["user", "assistant", "tool"]
    # The second call continues the first: same conversation, same trace.
    assert second_span[semconv.CONVERSATION_ID] == first_span[semconv.CONVERSATION_ID]


def test_embeddings_and_token_counts_have_their_own_operations(proxy: RunningProxy) -> None:
    client = _client(proxy.url)
    client.models.embed_content(model="gemini-embedding-001", contents=["first text", "second"])
    client.models.count_tokens(model=MODEL, contents=PROMPT)

    embed, count = (attributes(s) for s in proxy.sink.wait(2))
    assert embed[semconv.OPERATION_NAME] == semconv.EMBEDDINGS
    assert embed[semconv.EMBEDDINGS_DIMENSION_COUNT] == 8
    # Gemini's embedding answers carry no token counts: the proxy counts the texts it sent.
    assert embed[semconv.USAGE_INPUT_TOKENS] > 0 and embed[semconv.USAGE_SOURCE] == "estimated"
    assert count[semconv.OPERATION_NAME] == "count_tokens" and semconv.USAGE_INPUT_TOKENS not in count


def test_bad_input_is_answered_in_googles_error_format(proxy: RunningProxy) -> None:
    with httpx.Client(timeout=10) as http:
        not_json = http.post(f"{proxy.url}{GENERATE}", content=b"{nope", headers={"x-goog-api-key": KEY})
        unknown = http.post(f"{proxy.url}/v1beta/models/palm-2:generateContent", json=BODY)
    assert not_json.status_code == 400
    assert not_json.json() == {
        "error": {"code": 400, "message": "the request body is not valid JSON", "status": "INVALID_ARGUMENT"}
    }
    assert unknown.status_code == 404 and unknown.json()["error"]["status"] == "NOT_FOUND"
    client = _client(proxy.url)
    with pytest.raises(errors.ClientError) as raised:
        client.models.generate_content(model="palm-2", contents=PROMPT)
    assert raised.value.code == 404 and raised.value.status == "NOT_FOUND"


def test_upstream_errors_reach_the_sdk_as_they_were_sent(mock: MockUpstream, proxy: RunningProxy) -> None:
    for base in (mock.url, proxy.url):  # type: ignore[attr-defined]
        client = _client(base, "error_429")
        with pytest.raises(errors.ClientError) as raised:
            client.models.generate_content(model=MODEL, contents=PROMPT)
        assert raised.value.code == 429 and raised.value.status == "RESOURCE_EXHAUSTED"
    attrs = attributes(proxy.sink.wait(1)[0])
    assert attrs[semconv.ERROR_TYPE] == "429"


@pytest.fixture
def managed(mock: MockUpstream, tmp_path: Any) -> Iterator[tuple[RunningProxy, str]]:
    mock.reset()
    auth = AuthSettings(mode="managed", keys_file=str(tmp_path / "keys.json"))
    config = ProxyConfig(upstreams=(gemini_upstream(mock.url, KEY),), auth=auth)  # type: ignore[attr-defined]
    with running_proxy(config) as running:
        _, proxy_key = KeyStore(tmp_path / "keys.json").create("team-gemini")
        yield running, proxy_key


def test_managed_mode_swaps_the_proxy_key_wherever_the_client_sent_it(
    mock: MockUpstream, managed: tuple[RunningProxy, str], caplog: pytest.LogCaptureFixture
) -> None:
    proxy, proxy_key = managed
    caplog.set_level(logging.DEBUG)
    client = _client(proxy.url, key=proxy_key)
    assert client.models.generate_content(model=MODEL, contents=PROMPT).text
    with httpx.Client(timeout=10) as http:
        in_query = http.post(f"{proxy.url}{STREAM}?alt=sse&key={proxy_key}", json=BODY)
        listed = http.get(f"{proxy.url}/v1beta/models?pageSize=5&key={proxy_key}")
        wrong = http.post(f"{proxy.url}{GENERATE}?key=not-a-proxy-key", json=BODY)
    assert in_query.status_code == 200
    assert listed.status_code == 404  # the mock has no model list; what matters is where the key went
    assert wrong.status_code == 401 and wrong.json()["error"]["status"] == "UNAUTHENTICATED"

    forwarded = mock.requests
    assert len(forwarded) == 3
    for request in forwarded:
        assert request.headers["x-goog-api-key"] == KEY
        assert proxy_key not in request.raw_target.decode() and "key=" not in request.query
    assert forwarded[1].query == "alt=sse" and forwarded[2].query == "pageSize=5"
    spans = proxy.sink.wait(3)  # the call with a wrong key was refused before it became one
    assert {attributes(s).get(semconv.TENANT_ID) for s in spans} == {"team-gemini"}
    _assert_nowhere(spans, caplog, (proxy_key, KEY))


def test_passthrough_keys_in_the_query_reach_the_upstream_and_nothing_else(
    mock: MockUpstream, proxy: RunningProxy, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with httpx.Client(timeout=10) as http:
        generated = http.post(f"{proxy.url}{GENERATE}?key={KEY}", json=BODY)
        listed = http.get(f"{proxy.url}/v1beta/models?key={KEY}")
    assert generated.status_code == 200 and listed.status_code == 404
    assert [r.query for r in mock.requests] == [f"key={KEY}", f"key={KEY}"]
    spans = proxy.sink.wait(2)
    assert attributes(spans[1])[semconv.URL_PATH] == "/v1beta/models"
    _assert_nowhere(spans, caplog, (KEY,))


# The test's own HTTP clients log the URLs they call; everything else in the process (the proxy, its server and its
# upstream client, the mock) must not log a key.
CLIENT_LOGGERS = ("httpx", "httpcore", "google_genai")


def _assert_nowhere(spans: Any, caplog: pytest.LogCaptureFixture, secrets: tuple[str, ...]) -> None:
    """No secret in any span's name, attribute or event, nor in any log record (message or traceback)."""
    for span in spans:
        recorded = [span.name, *map(str, (span.attributes or {}).values())]
        recorded += [str(event.attributes) for event in span.events]
        for secret in secrets:
            assert not any(secret in text for text in recorded), span.name
    for record in caplog.records:
        if record.name.startswith(CLIENT_LOGGERS):
            continue
        text = record.getMessage() + (logging.Formatter().formatException(record.exc_info) if record.exc_info else "")
        for secret in secrets:
            assert secret not in text
