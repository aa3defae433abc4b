"""The proxy's listener limits: oversized heads never reach the upstream, and bytes in flight have a bound.

In pass-through mode the proxy forwards the client's headers upstream, so a head
it accepted would go on to the provider: these tests check that the mock
upstream sees nothing of what the listener refuses.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import anthropic
import httpx
import openai
import pytest

from collector.listeners.generated_metrics import LISTENER_REQUESTS_REFUSED
from collector.listeners.metrics import HEADER_TOO_LARGE, IN_FLIGHT, TOO_MANY_HEADERS
from collector.listeners.settings import AdmissionSettings
from proxy.config import ProxyConfig
from tests.proxy.mock_upstream import SCENARIO_HEADER, MockUpstream, serve
from tests.proxy.support import PROXY_LISTENER, RunningProxy, running_proxy, upstreams_for

KEY = "sk-test"
CHAT = "/v1/chat/completions"
SEND_CHUNK = 64 * 1024
SOCKET_TIMEOUT_SECONDS = 10.0
MIB = 1024 * 1024


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
        assert not running.service.auth.is_managed()  # pass-through: headers would be forwarded
        yield running


def _refused(proxy: RunningProxy, reason: str) -> float:
    labels = {"listener": PROXY_LISTENER, "transport": "http", "reason": reason}
    return proxy.telemetry.value(LISTENER_REQUESTS_REFUSED.name, **labels)


def _send_head_until_answered(url: str, head: bytes, filler: bytes) -> bytes:
    """Send ``head`` then ``filler`` while reading; the proxy's answer, once it has closed."""
    host, port = url.removeprefix("http://").split(":")
    answer = bytearray()
    with socket.create_connection((host, int(port)), timeout=SOCKET_TIMEOUT_SECONDS) as sock:

        def read() -> None:
            try:
                while chunk := sock.recv(65536):
                    answer.extend(chunk)
            except OSError:
                pass

        reader = threading.Thread(target=read)
        reader.start()
        try:
            sock.sendall(head)
            for start in range(0, len(filler), SEND_CHUNK):
                if not reader.is_alive():
                    break
                sock.sendall(filler[start : start + SEND_CHUNK])
        except OSError:
            pass  # closed by the proxy while still sending
        reader.join(SOCKET_TIMEOUT_SECONDS)
    return bytes(answer)


def test_an_8_mb_header_is_refused_431_and_nothing_reaches_the_upstream(
    mock: MockUpstream, proxy: RunningProxy
) -> None:
    head = b"POST /v1/chat/completions HTTP/1.1\r\nHost: proxy\r\nAuthorization: Bearer sk-test\r\nX-Big: "

    answer = _send_head_until_answered(proxy.url, head, b"a" * (8 * MIB))

    assert answer.startswith(b"HTTP/1.1 431 ")
    assert mock.requests == []
    assert _refused(proxy, HEADER_TOO_LARGE) == 1


def test_100000_headers_are_refused_431_and_nothing_reaches_the_upstream(
    mock: MockUpstream, proxy: RunningProxy
) -> None:
    head = b"POST /v1/anything HTTP/1.1\r\nHost: proxy\r\nAuthorization: Bearer sk-test\r\n"
    headers = b"".join(b"X-H%d: v\r\n" % i for i in range(100_000))

    answer = _send_head_until_answered(proxy.url, head, headers + b"\r\n")

    assert answer.startswith(b"HTTP/1.1 431 ")
    assert mock.requests == []
    assert _refused(proxy, TOO_MANY_HEADERS) == 1


def test_the_openai_sdk_sees_431_for_a_header_over_the_limit(mock: MockUpstream, proxy: RunningProxy) -> None:
    client = openai.OpenAI(
        base_url=f"{proxy.url}/v1", api_key=KEY, max_retries=0, default_headers={"X-Big": "a" * (70 * 1024)}
    )

    with pytest.raises(openai.APIStatusError) as refused:
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])

    assert refused.value.status_code == 431
    assert mock.requests == []


# --- bytes in flight -----------------------------------------------------------------------------------------


@pytest.fixture
def small_budget_proxy(mock: MockUpstream) -> Iterator[RunningProxy]:
    """A proxy holding at most 1 MiB of request bodies at once."""
    mock.reset()
    config = _config(mock, max_request_body_size=MIB, admission=AdmissionSettings(request_limit_mib=1))
    with running_proxy(config) as running:
        yield running


def _prompt(size: int) -> list[dict[str, str]]:
    return [{"role": "user", "content": "p" * size}]


def test_a_call_the_budget_cannot_hold_is_refused_503_in_each_provider_format_until_room_frees(
    mock: MockUpstream, small_budget_proxy: RunningProxy
) -> None:
    proxy = small_budget_proxy
    big = 700 * 1024
    holding = httpx.Client(base_url=proxy.url, timeout=SOCKET_TIMEOUT_SECONDS)
    first = holding.build_request(
        "POST",
        CHAT,
        json={"model": "gpt-4o-mini", "stream": True, "messages": _prompt(big)},
        headers={"Authorization": f"Bearer {KEY}", SCENARIO_HEADER: "stall"},
    )
    stream = holding.send(first, stream=True)  # its body stays held while its reply streams
    try:
        pieces = stream.iter_raw()  # kept: dropping the iterator would close the stream
        next(pieces)  # the first piece arrived: the call is in flight
        openai_client = openai.OpenAI(base_url=f"{proxy.url}/v1", api_key=KEY, max_retries=0)
        with pytest.raises(openai.APIStatusError) as openai_refused:
            openai_client.chat.completions.create(model="gpt-4o-mini", messages=_prompt(big))  # type: ignore[arg-type]
        anthropic_client = anthropic.Anthropic(base_url=proxy.url, api_key=KEY, max_retries=0)
        with pytest.raises(anthropic.APIStatusError) as anthropic_refused:
            anthropic_client.messages.create(
                model="claude-3-5-haiku-20241022",
                max_tokens=10,
                messages=_prompt(big),  # type: ignore[arg-type]
            )
    finally:
        stream.close()
        holding.close()
    after = openai.OpenAI(base_url=f"{proxy.url}/v1", api_key=KEY, max_retries=0).chat.completions.create(
        model="gpt-4o-mini",
        messages=_prompt(big),  # type: ignore[arg-type]
    )

    assert openai_refused.value.status_code == 503
    assert openai_refused.value.response.headers["retry-after"] == "1"
    assert openai_refused.value.code == "overloaded"
    assert anthropic_refused.value.status_code == 503
    assert anthropic_refused.value.body["error"]["type"] == "overloaded_error"  # type: ignore[index]
    assert after.choices[0].message.content
    assert len(mock.requests_to(CHAT)) == 2  # the held call and the one after: the refused one never went
    assert _refused(proxy, IN_FLIGHT) == 2
