"""Conversation grouping and trace stitching: W3C traceparent, and stateless histories matched by digest."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from collector import semconv
from proxy import conversations
from proxy.config import ProxyConfig
from proxy.conversations import ConversationLink, ConversationTracker, History
from tests.proxy.mock_upstream import MockUpstream, serve
from tests.proxy.support import RunningProxy, attributes, running_proxy, upstreams_for

FIRST: list[Any] = [{"role": "user", "content": "Plan a trip to Lyon."}]
LINK = ConversationLink(trace_id=1, span_id=2, conversation_id="c-1")


def _text(role: str, text: str) -> dict[str, Any]:
    return {"role": role, "parts": [{"type": "text", "content": text}]}


def _find(tracker: ConversationTracker, scope: str, messages: list[dict[str, Any]]) -> ConversationLink | None:
    return tracker.find(History(scope, messages))


def _remember(
    tracker: ConversationTracker,
    scope: str,
    messages: list[dict[str, Any]],
    reply: dict[str, Any],
    link: ConversationLink,
) -> None:
    tracker.remember(History(scope, messages), reply, link)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_history_that_repeats_a_call_and_its_reply_finds_that_call() -> None:
    tracker = ConversationTracker(ttl_seconds=60, max_entries=10)
    history = [_text("user", "hi")]
    _remember(tracker, "alice", history, _text("assistant", "hello"), LINK)

    continued = [*history, _text("assistant", "hello"), _text("user", "and then?")]
    assert _find(tracker, "alice", continued) == LINK
    assert _find(tracker, "bob", continued) is None  # another caller's identical history is not merged
    assert _find(tracker, "alice", [*history, _text("assistant", "other reply"), _text("user", "?")]) is None
    assert _find(tracker, "alice", history) is None


def test_the_longest_matching_prefix_wins() -> None:
    tracker = ConversationTracker(ttl_seconds=60, max_entries=10)
    turn1 = [_text("user", "a")]
    turn2 = [*turn1, _text("assistant", "b"), _text("user", "c")]
    later = ConversationLink(trace_id=1, span_id=3, conversation_id="c-1")
    _remember(tracker, "s", turn1, _text("assistant", "b"), LINK)
    _remember(tracker, "s", turn2, _text("assistant", "d"), later)

    assert _find(tracker, "s", [*turn2, _text("assistant", "d"), _text("user", "e")]) == later


def test_tool_calls_compare_by_content_not_by_extra_fields() -> None:
    tracker = ConversationTracker(ttl_seconds=60, max_entries=10)
    call = {"type": "tool_call", "id": "call_1", "name": "f", "arguments": {"x": 1}}
    _remember(tracker, "s", [_text("user", "go")], {"role": "assistant", "parts": [call]}, LINK)
    resent = {"role": "assistant", "parts": [{**call, "extra": None}, {"type": "reasoning", "content": "hmm"}]}
    assert _find(tracker, "s", [_text("user", "go"), resent]) == LINK


def test_entries_expire_and_memory_is_bounded() -> None:
    clock = FakeClock()
    tracker = ConversationTracker(ttl_seconds=10, max_entries=3, clock=clock)
    for i in range(5):
        _remember(tracker, "s", [_text("user", str(i))], _text("assistant", "ok"), LINK)
    assert len(tracker) == 3
    assert _find(tracker, "s", [_text("user", "0"), _text("assistant", "ok")]) is None  # evicted
    assert _find(tracker, "s", [_text("user", "4"), _text("assistant", "ok")]) == LINK
    clock.now += 11
    assert _find(tracker, "s", [_text("user", "4"), _text("assistant", "ok")]) is None  # expired


@pytest.fixture(scope="module")
def mock() -> Iterator[MockUpstream]:
    upstream = MockUpstream()
    with serve(upstream) as url:
        upstream.url = url  # type: ignore[attr-defined]
        yield upstream


@pytest.fixture
def proxy(mock: MockUpstream) -> Iterator[RunningProxy]:
    mock.reset()
    with running_proxy(ProxyConfig(upstreams=upstreams_for(mock.url))) as running:  # type: ignore[attr-defined]
        yield running


def _client(proxy: RunningProxy, key: str = "sk-alice") -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{proxy.url}/v1", api_key=key, max_retries=0)


def test_a_stateless_client_continuing_its_history_joins_the_same_trace(proxy: RunningProxy) -> None:
    client = _client(proxy)
    first = client.chat.completions.create(model="gpt-4o-mini", messages=FIRST)
    # The SDK's own message object, resent as the history: extra null fields and all.
    history = [*FIRST, first.choices[0].message.model_dump(), {"role": "user", "content": "And the food?"}]
    client.chat.completions.create(model="gpt-4o-mini", messages=history)
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "Unrelated."}])

    one, two, three = proxy.sink.wait(3)
    assert attributes(two)[semconv.CONVERSATION_ID] == attributes(one)[semconv.CONVERSATION_ID]
    assert two.context.trace_id == one.context.trace_id
    assert two.parent is not None and two.parent.span_id == one.context.span_id
    assert attributes(three)[semconv.CONVERSATION_ID] != attributes(one)[semconv.CONVERSATION_ID]
    assert three.context.trace_id != one.context.trace_id


def test_a_call_puts_each_message_of_its_history_in_canonical_form_once(
    proxy: RunningProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = _client(proxy)
    first = client.chat.completions.create(model="gpt-4o-mini", messages=FIRST)
    history = [*FIRST, first.choices[0].message.model_dump(), {"role": "user", "content": "And the food?"}]
    canonicalised: list[dict[str, Any]] = []
    canonical = conversations.canonical

    def counted(message: dict[str, Any]) -> bytes:
        canonicalised.append(message)
        return canonical(message)

    monkeypatch.setattr(conversations, "canonical", counted)
    client.chat.completions.create(model="gpt-4o-mini", messages=history)  # found the first call, then remembered

    one, two = proxy.sink.wait(2)
    assert two.context.trace_id == one.context.trace_id
    # The history's digests served to find the call it continues and to remember it: each message once, and
    # then the reply.
    assert [message["role"] for message in canonicalised] == ["user", "assistant", "user", "assistant"]


def test_two_callers_with_the_same_first_prompt_are_not_merged(proxy: RunningProxy) -> None:
    alice = _client(proxy, "sk-alice").chat.completions.create(model="gpt-4o-mini", messages=FIRST)
    history = [*FIRST, alice.choices[0].message.model_dump(), {"role": "user", "content": "More?"}]
    # Bob sends the very same history (the mock's reply is deterministic), with his own key.
    _client(proxy, "sk-bob").chat.completions.create(model="gpt-4o-mini", messages=history)

    alice_span, bob_span = proxy.sink.wait(2)
    assert attributes(bob_span)[semconv.CONVERSATION_ID] != attributes(alice_span)[semconv.CONVERSATION_ID]
    assert bob_span.context.trace_id != alice_span.context.trace_id


def test_an_inbound_traceparent_makes_the_proxy_span_its_child_and_goes_upstream(
    mock: MockUpstream, proxy: RunningProxy
) -> None:
    trace_id, parent_id = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    with httpx.Client(timeout=10) as client:
        client.post(
            f"{proxy.url}/v1/chat/completions",
            json={"model": "gpt-4o-mini", "messages": FIRST},
            headers={"Authorization": "Bearer k", "traceparent": f"00-{trace_id}-{parent_id}-01"},
        )

    span = proxy.sink.wait(1)[0]
    assert f"{span.context.trace_id:032x}" == trace_id
    assert span.parent is not None and f"{span.parent.span_id:016x}" == parent_id
    sent = mock.requests_to("/v1/chat/completions")[-1].headers["traceparent"]
    assert sent == f"00-{trace_id}-{span.context.span_id:016x}-01"
