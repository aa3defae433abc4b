"""Inputs that once broke the proxy: odd text, odd paths, odd replies, odd files. Each must keep the call whole."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import anthropic
import httpx
import pytest

from collector import semconv
from collector.config.decode import decode
from collector.config.problems import ConfigError
from proxy.config import AuthSettings, ProxyConfig
from proxy.record import CallRecord
from proxy.relay import GuardedTee
from proxy.semconv import V1_41
from proxy.sse import SseEvent
from tests.proxy.mock_upstream import MockUpstream, serve
from tests.proxy.support import RunningProxy, attributes, running_proxy, upstreams_for

CHAT = "/v1/chat/completions"


@pytest.fixture(scope="module")
def mock() -> Iterator[MockUpstream]:
    upstream = MockUpstream(stall_seconds=20)
    with serve(upstream) as url:
        upstream.url = url  # type: ignore[attr-defined]
        yield upstream


@pytest.fixture
def proxy(mock: MockUpstream) -> Iterator[RunningProxy]:
    mock.reset()
    with running_proxy(ProxyConfig(upstreams=upstreams_for(mock.url), capture_content=True)) as running:  # type: ignore[attr-defined]
        yield running


@pytest.mark.parametrize("stream", [False, True])
def test_a_lone_surrogate_in_the_prompt_is_forwarded_and_recorded(
    mock: MockUpstream, proxy: RunningProxy, stream: bool
) -> None:
    body = b'{"model": "gpt-4o-mini", "stream": %s, "messages": [{"role": "user", "content": "hi \\ud83d"}]}' % (
        b"true" if stream else b"false"
    )
    with httpx.Client(timeout=10) as client:
        direct = client.post(f"{mock.url}{CHAT}", content=body, headers={"Authorization": "Bearer k"})  # type: ignore[attr-defined]
        answer = client.post(f"{proxy.url}{CHAT}", content=body, headers={"Authorization": "Bearer k"})

    # Whatever the upstream makes of it (the mock cannot encode a lone surrogate either), the proxy relays it.
    assert (answer.status_code, answer.content) == (direct.status_code, direct.content)
    assert proxy.sink.wait(1)
    assert b"\\ud83d" in mock.requests_to(CHAT)[-1].body


def test_path_and_query_reach_the_upstream_exactly_as_sent(mock: MockUpstream, proxy: RunningProxy) -> None:
    with httpx.Client(timeout=10) as client:
        client.get(f"{proxy.url}/v1/files/a%20b%3A%C3%A9?x=%7e&z=%2f", headers={"Authorization": "Bearer k"})
    assert mock.requests[-1].raw_target == b"/v1/files/a%20b%3A%C3%A9?x=%7e&z=%2f"


def test_a_stream_cut_after_some_text_counts_the_text_delivered(mock: MockUpstream, proxy: RunningProxy) -> None:
    client = anthropic.Anthropic(base_url=proxy.url, api_key="k", max_retries=0)
    with client.messages.stream(
        model="claude-sonnet-4-6",
        max_tokens=64,
        messages=[{"role": "user", "content": "Tell me a long story about a lighthouse keeper."}],
        extra_headers={"x-mock-scenario": "stall"},
    ) as events:
        next(iter(events))
    assert mock.wait_for_disconnect(1.0)

    values = attributes(proxy.sink.wait(1)[0])
    assert values[semconv.ERROR_TYPE] == "cancelled"
    # message_start's placeholder output count (1) is not taken for the real one.
    assert values[semconv.USAGE_SOURCE] == "estimated"


def test_a_previous_response_named_by_another_caller_joins_nothing(proxy: RunningProxy) -> None:
    def call(key: str, **extra: object) -> None:
        with httpx.Client(timeout=10) as client:
            client.post(
                f"{proxy.url}/v1/responses",
                json={"model": "gpt-4.1", "input": "Hi", **extra},
                headers={"Authorization": f"Bearer {key}"},
            )

    call("sk-alice")
    call("sk-bob", previous_response_id="resp_mock_1")
    alice, bob = proxy.sink.wait(2)
    assert bob.context.trace_id != alice.context.trace_id


def test_a_corrupt_keys_file_is_answered_in_the_providers_format(mock: MockUpstream, tmp_path: Path) -> None:
    keys = tmp_path / "keys.json"
    keys.write_text("{not json")
    config = ProxyConfig(upstreams=upstreams_for(mock.url), auth=AuthSettings(keys_file=str(keys)))  # type: ignore[attr-defined]
    with running_proxy(config) as proxy, httpx.Client(timeout=10) as client:
        answer = client.post(f"{proxy.url}{CHAT}", json={"model": "gpt-4o-mini", "messages": []})
    assert answer.status_code == 500
    assert answer.json()["error"]["message"] == "the proxy cannot read its keys file; see its log"


def test_an_api_key_with_a_trailing_newline_is_a_config_problem() -> None:
    raw = {"upstreams": [{"name": "a", "base_url": "http://x", "api_key": "sk-secret\n"}]}
    with pytest.raises(ConfigError) as error:
        decode(ProxyConfig, raw, "receivers.genai_proxy")
    [problem] = [str(p) for p in error.value.problems]
    assert problem.startswith("receivers.genai_proxy.upstreams[0].api_key: contains whitespace")
    assert "sk-secret" not in problem


def test_a_tee_that_fails_lets_the_rest_of_the_stream_through_untouched() -> None:
    class Broken:
        calls = 0

        def on_event(self, event: SseEvent) -> bytes:
            self.calls += 1
            raise KeyError("surprise")

    import logging

    broken = Broken()
    tee = GuardedTee(broken, None, logging.getLogger("test"))
    events = [SseEvent(b"data: 1\n\n", "", "1"), SseEvent(b"data: 2\n\n", "", "2")]
    assert tee.forward(events) == b"data: 1\n\ndata: 2\n\n"
    assert broken.calls == 1


def test_tool_call_arguments_of_any_type_are_kept_as_text() -> None:
    record = CallRecord("chat", "openai", V1_41, True)
    record.choice(0).add_tool_call_fragment(0, "call_1", "f", {"a": 1})
    [message] = record.output_messages({})
    assert message["parts"] == [{"type": "tool_call", "id": "call_1", "name": "f", "arguments": {"a": 1}}]
    assert json.dumps(message)
