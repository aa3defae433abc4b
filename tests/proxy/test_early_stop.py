"""Opt-in early stop: a streamed reply that turns out to carry a critical finding ends with a provider error."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import anthropic
import openai
import pytest

from collector import semconv
from collector.receivers.genai_proxy import stream_check
from proxy.config import EarlyStopSettings, ProxyConfig
from tests.proxy.mock_upstream import MockUpstream, serve
from tests.proxy.support import RunningProxy, attributes, running_proxy, upstreams_for

# The mock echoes the start of the user's text, so the reply carries this (fake) key.
LEAKED = "sk-proj-" + "Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z"
PROMPT = [{"role": "user", "content": LEAKED}]


@pytest.fixture(scope="module")
def mock() -> Iterator[MockUpstream]:
    upstream = MockUpstream(slow_seconds=0.05)
    with serve(upstream) as url:
        upstream.url = url  # type: ignore[attr-defined]
        yield upstream


def _proxy(mock: MockUpstream, enabled: bool) -> ProxyConfig:
    config = ProxyConfig(upstreams=upstreams_for(mock.url))  # type: ignore[attr-defined]
    return replace(config, early_stop=EarlyStopSettings(enabled=enabled))


@pytest.fixture
def guarded(mock: MockUpstream) -> Iterator[RunningProxy]:
    mock.reset()
    config = _proxy(mock, enabled=True)
    with running_proxy(config, stream_check=stream_check(config)) as proxy:
        yield proxy


def test_an_openai_stream_leaking_a_key_is_ended_with_an_error(mock: MockUpstream, guarded: RunningProxy) -> None:
    client = openai.OpenAI(base_url=f"{guarded.url}/v1", api_key="sk-x", max_retries=0)
    received = ""
    # A slow stream, so that it is still running when the key shows: the proxy must cut the upstream off.
    stream = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=PROMPT,  # type: ignore[arg-type]
        stream=True,
        extra_headers={"x-mock-scenario": "slow"},
    )
    with pytest.raises(openai.APIError) as stopped:
        for chunk in stream:
            received += "".join(choice.delta.content or "" for choice in chunk.choices)

    assert "openai_api_key" in str(stopped.value)
    assert LEAKED[:30] not in received  # the event that completed the key never left the proxy
    values = attributes(guarded.sink.wait(1)[0])
    assert values[semconv.ERROR_TYPE] == "early_stop"
    assert values[semconv.EARLY_STOP_DETECTOR] == "openai_api_key"
    assert mock.wait_for_disconnect(1.0)  # the upstream is cut off too


def test_an_anthropic_stream_is_ended_the_same_way(mock: MockUpstream, guarded: RunningProxy) -> None:
    client = anthropic.Anthropic(base_url=guarded.url, api_key="sk-x", max_retries=0)
    with pytest.raises(anthropic.APIStatusError) as stopped:
        with client.messages.stream(model="claude-sonnet-4-6", max_tokens=64, messages=PROMPT) as events:  # type: ignore[arg-type]
            for _ in events.text_stream:
                pass
    assert "openai_api_key" in str(stopped.value)
    assert attributes(guarded.sink.wait(1)[0])[semconv.EARLY_STOP_DETECTOR] == "openai_api_key"


def test_early_stop_is_off_unless_configured(mock: MockUpstream) -> None:
    mock.reset()
    config = _proxy(mock, enabled=False)
    with running_proxy(config, stream_check=stream_check(config)) as proxy:
        client = openai.OpenAI(base_url=f"{proxy.url}/v1", api_key="sk-x", max_retries=0)
        text = "".join(
            choice.delta.content or ""
            for chunk in client.chat.completions.create(model="gpt-4o-mini", messages=PROMPT, stream=True)  # type: ignore[arg-type]
            for choice in chunk.choices
        )
    assert LEAKED[:30] in text
