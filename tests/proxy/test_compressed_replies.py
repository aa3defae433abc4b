"""Compressed replies: relayed byte for byte, read for the span through the bounded inflater, bombs given up."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from collector import semconv
from proxy import app
from proxy.config import ProxyConfig
from tests.proxy.mock_upstream import SCENARIO_HEADER, MockUpstream, serve
from tests.proxy.support import RunningProxy, attributes, running_proxy, upstreams_for

KEY = "sk-test"
CHAT = "/v1/chat/completions"
CHAT_BODY: dict[str, Any] = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello there"}]}


@pytest.fixture(scope="module")
def mock() -> Iterator[MockUpstream]:
    # A bomb just past what the proxy parses: a few dozen KiB on the wire.
    upstream = MockUpstream(gzip_bomb_bytes=app.MAX_PARSED_BODY_BYTES + 16 * 1024 * 1024)
    with serve(upstream) as url:
        upstream.url = url  # type: ignore[attr-defined]
        yield upstream


@pytest.fixture
def proxy(mock: MockUpstream) -> Iterator[RunningProxy]:
    mock.reset()
    with running_proxy(ProxyConfig(upstreams=upstreams_for(mock.url))) as running:  # type: ignore[attr-defined]
        yield running


def _raw_reply(base_url: str, scenarios: str) -> tuple[httpx.Response, bytes]:
    """The reply and its body as sent on the wire (not inflated)."""
    headers = {"Authorization": f"Bearer {KEY}", SCENARIO_HEADER: scenarios}
    with httpx.Client(timeout=30) as client:
        with client.stream("POST", f"{base_url}{CHAT}", json=CHAT_BODY, headers=headers) as reply:
            return reply, b"".join(reply.iter_raw())


# "chunked" sends no content-length, which takes the proxy's chunk-by-chunk relay instead of the whole-body one.
@pytest.mark.parametrize("scenarios", ["gzip", "gzip,chunked"])
def test_a_gzip_reply_is_relayed_as_sent_and_read_for_the_span(
    mock: MockUpstream, proxy: RunningProxy, scenarios: str
) -> None:
    client = openai.OpenAI(base_url=f"{proxy.url}/v1", api_key=KEY, max_retries=0, timeout=30)
    completion = client.chat.completions.create(**CHAT_BODY, extra_headers={SCENARIO_HEADER: scenarios})

    span = attributes(proxy.sink.wait(1)[0])
    assert span[semconv.RESPONSE_ID] == completion.id
    assert span[semconv.USAGE_OUTPUT_TOKENS] == completion.usage.completion_tokens  # type: ignore[union-attr]
    assert span[semconv.USAGE_SOURCE] == "provider"
    assert semconv.PROXY_RESPONSE_NOT_PARSED not in span


@pytest.mark.parametrize("scenarios", ["gzip_bomb", "gzip_bomb,chunked"])
def test_a_gzip_bomb_is_relayed_untouched_and_not_read(mock: MockUpstream, proxy: RunningProxy, scenarios: str) -> None:
    _, direct = _raw_reply(mock.url, scenarios)  # type: ignore[attr-defined]
    relayed, body = _raw_reply(proxy.url, scenarios)

    assert relayed.status_code == 200
    assert relayed.headers["content-encoding"] == "gzip"
    assert body == direct  # every byte, still compressed
    assert len(body) < 1024 * 1024
    span = attributes(proxy.sink.wait(1)[0])
    assert span[semconv.PROXY_RESPONSE_NOT_PARSED] == semconv.NOT_PARSED_TOO_LARGE
    assert semconv.RESPONSE_ID not in span  # the reply was not read: what the span has, it did not get from there
    assert span[semconv.USAGE_SOURCE] == "estimated"
    assert semconv.ERROR_TYPE not in span  # the call itself succeeded

    # The proxy goes on serving.
    client = openai.OpenAI(base_url=f"{proxy.url}/v1", api_key=KEY, max_retries=0, timeout=30)
    assert client.chat.completions.create(**CHAT_BODY).choices


def test_a_reply_whose_copy_passes_the_limit_mid_relay_is_still_relayed_whole(
    mock: MockUpstream, proxy: RunningProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(app, "MAX_PARSED_BODY_BYTES", 64)  # any reply is longer than this
    client = openai.OpenAI(base_url=f"{proxy.url}/v1", api_key=KEY, max_retries=0, timeout=30)

    completion = client.chat.completions.create(**CHAT_BODY, extra_headers={SCENARIO_HEADER: "chunked"})

    assert completion.id and completion.choices[0].message.content
    span = attributes(proxy.sink.wait(1)[0])
    assert span[semconv.PROXY_RESPONSE_NOT_PARSED] == semconv.NOT_PARSED_TOO_LARGE
    assert semconv.RESPONSE_ID not in span
