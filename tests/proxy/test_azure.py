"""Azure OpenAI through the proxy with openai's AzureOpenAI client: per-deployment and v1 paths, api-key auth."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from collector import semconv
from collector.config.types import Secret
from collector.keys import KeyStore
from processors.genai_cost.prices import PriceBook, Usage
from proxy.config import AuthSettings, ProxyConfig, UpstreamConfig
from tests.proxy.mock_upstream import AZURE_DEPLOYMENTS, CHAT_COMPLETION_ID, MockUpstream, serve
from tests.proxy.support import RunningProxy, attributes, running_proxy

KEY = "azure-test-key-0123456789abcdef"
API_VERSION = "2024-10-21"
DEPLOYMENT = "chat-prod"  # mapped to a model in the proxy's config
EMBEDDER = "embedder"  # not mapped: the span learns its model from the reply
MODEL = "gpt-4o-mini"
MESSAGES: list[Any] = [{"role": "user", "content": "What is the capital of France?"}]
CHAT = f"/openai/deployments/{DEPLOYMENT}/chat/completions?api-version={API_VERSION}"


def azure_upstream(url: str, key: str = "") -> UpstreamConfig:
    return UpstreamConfig(
        name="azure",
        kind="azure_openai",
        base_url=url,
        api_key=Secret(key),
        models=("chat-*", "embed*"),
        deployments={DEPLOYMENT: MODEL},
    )


@pytest.fixture(scope="module")
def mock() -> Iterator[MockUpstream]:
    upstream = MockUpstream(azure_key=KEY)
    with serve(upstream) as url:
        upstream.url = url  # type: ignore[attr-defined]
        yield upstream


@pytest.fixture
def proxy(mock: MockUpstream) -> Iterator[RunningProxy]:
    mock.reset()
    config = ProxyConfig(upstreams=(azure_upstream(mock.url),), capture_content=True)  # type: ignore[attr-defined]
    with running_proxy(config) as running:
        yield running


def _client(base: str, key: str = KEY) -> openai.AzureOpenAI:
    return openai.AzureOpenAI(azure_endpoint=base, api_key=key, api_version=API_VERSION, max_retries=0, timeout=10)


def _v1_client(base: str, key: str = KEY) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{base}/openai/v1/", api_key=key, max_retries=0, timeout=10)


def _raw(base: str, path: str, body: dict[str, Any]) -> httpx.Response:
    with httpx.Client(timeout=10) as client:
        response = client.post(f"{base}{path}", json=body, headers={"api-key": KEY})
        response.read()
        return response


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (CHAT, {"messages": MESSAGES}),
        (CHAT, {"messages": MESSAGES, "stream": True}),
        (CHAT, {"messages": MESSAGES, "stream": True, "stream_options": {"include_usage": True}}),
        (f"/openai/deployments/{EMBEDDER}/embeddings?api-version={API_VERSION}", {"input": ["a", "b"]}),
        (f"/openai/deployments/{DEPLOYMENT}/completions?api-version={API_VERSION}", {"prompt": "Say hi"}),
        (f"/openai/responses?api-version={API_VERSION}", {"model": DEPLOYMENT, "input": "Say hi"}),
        ("/openai/v1/chat/completions", {"model": DEPLOYMENT, "messages": MESSAGES, "stream": True}),
        ("/openai/v1/responses", {"model": DEPLOYMENT, "input": "Say hi", "stream": True}),
    ],
    ids=["chat", "chat-stream", "chat-stream-usage", "embeddings", "completions", "responses", "v1-chat", "v1-resp"],
)
def test_the_client_receives_exactly_what_the_upstream_sends(
    mock: MockUpstream, proxy: RunningProxy, path: str, body: dict[str, Any]
) -> None:
    direct = _raw(mock.url, path, body)  # type: ignore[attr-defined]
    proxied = _raw(proxy.url, path, body)

    assert proxied.status_code == direct.status_code == 200
    assert proxied.content == direct.content
    for header in ("content-type", "apim-request-id", "x-ms-region"):
        assert proxied.headers.get(header) == direct.headers.get(header)
    assert mock.requests[-1].raw_target == mock.requests[-2].raw_target  # path and api-version as the client sent
    assert proxy.sink.wait(1)


def test_the_sdk_gets_the_same_answers_through_the_proxy(mock: MockUpstream, proxy: RunningProxy) -> None:
    direct, proxied = _client(mock.url), _client(proxy.url)  # type: ignore[attr-defined]
    assert proxied.chat.completions.create(model=DEPLOYMENT, messages=MESSAGES) == direct.chat.completions.create(
        model=DEPLOYMENT, messages=MESSAGES
    )
    streamed = list(proxied.chat.completions.create(model=DEPLOYMENT, messages=MESSAGES, stream=True))
    assert streamed == list(direct.chat.completions.create(model=DEPLOYMENT, messages=MESSAGES, stream=True))
    assert streamed[0].choices == [] and streamed[0].id == ""  # Azure's prompt-filter chunk comes first
    assert proxied.embeddings.create(model=EMBEDDER, input="a") == direct.embeddings.create(model=EMBEDDER, input="a")
    v1_direct, v1_proxied = _v1_client(mock.url), _v1_client(proxy.url)  # type: ignore[attr-defined]
    assert v1_proxied.responses.create(model=DEPLOYMENT, input="Hi") == v1_direct.responses.create(
        model=DEPLOYMENT, input="Hi"
    )


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_a_deployment_call_is_an_azure_span_of_the_mapped_model(proxy: RunningProxy, stream: bool) -> None:
    client = _client(proxy.url)
    if stream:
        chunks = list(client.chat.completions.create(model=DEPLOYMENT, messages=MESSAGES, stream=True))
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    else:
        text = client.chat.completions.create(model=DEPLOYMENT, messages=MESSAGES).choices[0].message.content or ""

    span = proxy.sink.wait(1)[0]
    attrs = attributes(span)
    assert span.name == f"chat {MODEL}"
    assert attrs[semconv.PROVIDER_NAME] == "azure.ai.openai"
    assert attrs[semconv.OPERATION_NAME] == semconv.CHAT
    assert attrs[semconv.REQUEST_MODEL] == MODEL
    assert attrs[semconv.RESPONSE_MODEL] == AZURE_DEPLOYMENTS[DEPLOYMENT]
    assert attrs[semconv.RESPONSE_ID] == CHAT_COMPLETION_ID  # not the empty id of the prompt-filter chunk
    assert attrs[semconv.USAGE_SOURCE] == "provider" and attrs[semconv.USAGE_INPUT_TOKENS] > 0
    assert json.loads(attrs[semconv.OUTPUT_MESSAGES])[0]["parts"] == [{"type": "text", "content": text}]
    usage = Usage(input_tokens=attrs[semconv.USAGE_INPUT_TOKENS], output_tokens=attrs[semconv.USAGE_OUTPUT_TOKENS])
    cost = PriceBook().cost(attrs[semconv.PROVIDER_NAME], attrs[semconv.RESPONSE_MODEL], usage, time.time_ns())
    assert cost is not None and cost.total > 0


def test_an_unmapped_deployment_is_named_by_the_replys_model(proxy: RunningProxy) -> None:
    _client(proxy.url).embeddings.create(model=EMBEDDER, input=["first", "second"])

    span = proxy.sink.wait(1)[0]
    attrs = attributes(span)
    assert semconv.REQUEST_MODEL not in attrs
    assert attrs[semconv.RESPONSE_MODEL] == AZURE_DEPLOYMENTS[EMBEDDER]
    assert span.name == f"embeddings {AZURE_DEPLOYMENTS[EMBEDDER]}"
    assert attrs[semconv.OPERATION_NAME] == semconv.EMBEDDINGS and attrs[semconv.USAGE_INPUT_TOKENS] > 0


def test_bad_input_is_answered_in_openais_error_format(mock: MockUpstream, proxy: RunningProxy) -> None:
    with httpx.Client(timeout=10) as http:
        not_json = http.post(f"{proxy.url}{CHAT}", content=b"{nope", headers={"api-key": KEY})
        unknown = http.post(
            f"{proxy.url}/openai/deployments/gpt-5/chat/completions?api-version={API_VERSION}",
            json={"messages": MESSAGES},
            headers={"api-key": KEY},
        )
    assert not_json.status_code == 400 and not_json.json()["error"]["type"] == "invalid_request_error"
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "model_not_found"
    assert mock.requests == []  # neither was sent upstream
    client = _client(proxy.url)
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="gpt-5", messages=MESSAGES)


@pytest.fixture
def managed(mock: MockUpstream, tmp_path: Any) -> Iterator[tuple[RunningProxy, str]]:
    mock.reset()
    auth = AuthSettings(mode="managed", keys_file=str(tmp_path / "keys.json"))
    config = ProxyConfig(upstreams=(azure_upstream(mock.url, KEY),), auth=auth)  # type: ignore[attr-defined]
    with running_proxy(config) as running:
        _, proxy_key = KeyStore(tmp_path / "keys.json").create("team-azure")
        yield running, proxy_key


def test_managed_mode_sends_the_configured_key_as_api_key(
    mock: MockUpstream, managed: tuple[RunningProxy, str], caplog: pytest.LogCaptureFixture
) -> None:
    proxy, proxy_key = managed
    caplog.set_level(logging.DEBUG)
    _client(proxy.url, proxy_key).chat.completions.create(model=DEPLOYMENT, messages=MESSAGES)
    _v1_client(proxy.url, proxy_key).chat.completions.create(model=DEPLOYMENT, messages=MESSAGES)  # Bearer
    with pytest.raises(openai.AuthenticationError):
        _client(proxy.url, "not-a-proxy-key").chat.completions.create(model=DEPLOYMENT, messages=MESSAGES)

    assert len(mock.requests) == 2
    for request in mock.requests:
        assert request.headers["api-key"] == KEY and "authorization" not in request.headers
    spans = proxy.sink.wait(2)
    for span in spans:
        attrs = attributes(span)
        assert attrs[semconv.TENANT_ID] == "team-azure"
        assert not any(secret in str(v) for v in attrs.values() for secret in (KEY, proxy_key))
    for record in caplog.records:
        if not record.name.startswith(("httpx", "httpcore", "openai")):
            assert KEY not in record.getMessage() and proxy_key not in record.getMessage()
