"""Opt-in trace markers (invisible signature, tool-call trace context) and Responses API chaining."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest

from collector import semconv
from proxy.config import ConversationSettings, ProxyConfig
from proxy.stitching import MARK, TRACEPARENT_KEY, TraceIds, mark_reply, signature, strip_markers
from tests.proxy.mock_upstream import RESPONSE_ID, MockUpstream, serve
from tests.proxy.support import RunningProxy, attributes, running_proxy, upstreams_for

IDS = TraceIds(trace_id=0x4BF92F3577B34DA6A3CE929D0E0E4736, span_id=0x00F067AA0BA902B7)
QUESTION: list[Any] = [{"role": "user", "content": "Where should I go?"}]
TOOL = {
    "type": "function",
    "function": {"name": "search", "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}},
}


def test_a_signature_is_invisible_and_round_trips() -> None:
    marker = signature(IDS)
    assert marker.startswith(MARK) and marker.endswith(MARK)
    assert all(not char.isprintable() or char in "\u200b\u200c\u200d\u2060\u2063" for char in marker)
    body = {"messages": [{"role": "assistant", "content": f"Go to Lyon.{marker}"}, {"role": "user", "content": "ok"}]}
    stripped, found = strip_markers("chat_completions", body)
    assert found == IDS
    assert stripped is not None and stripped["messages"][0]["content"] == "Go to Lyon."
    assert strip_markers("chat_completions", {"messages": [{"role": "user", "content": "plain"}]}) == (None, None)


def test_tool_call_trace_context_is_added_and_stripped() -> None:
    reply = {"choices": [{"message": {"tool_calls": [{"function": {"name": "search", "arguments": '{"q":"x"}'}}]}}]}
    assert mark_reply("chat_completions", reply, IDS, sign=False, tool_calls=True)
    arguments = json.loads(reply["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"])
    assert arguments == {"q": "x", TRACEPARENT_KEY: IDS.traceparent()}

    history = {"messages": [{"role": "assistant", **reply["choices"][0]["message"]}]}
    stripped, found = strip_markers("chat_completions", history)
    assert found == IDS
    assert stripped is not None
    assert json.loads(stripped["messages"][0]["tool_calls"][0]["function"]["arguments"]) == {"q": "x"}


def test_anthropic_tool_input_is_marked_as_an_object() -> None:
    reply = {"content": [{"type": "text", "text": "Searching."}, {"type": "tool_use", "input": {"q": "x"}}]}
    assert mark_reply("messages", reply, IDS, sign=True, tool_calls=True)
    assert reply["content"][0]["text"] == "Searching." + signature(IDS)
    assert reply["content"][1]["input"] == {"q": "x", TRACEPARENT_KEY: IDS.traceparent()}


@pytest.fixture(scope="module")
def mock() -> Iterator[MockUpstream]:
    upstream = MockUpstream()
    with serve(upstream) as url:
        upstream.url = url  # type: ignore[attr-defined]
        yield upstream


@pytest.fixture
def proxy(mock: MockUpstream) -> Iterator[RunningProxy]:
    mock.reset()
    settings = ConversationSettings(invisible_signature=True, tool_call_trace_id=True)
    config = ProxyConfig(upstreams=upstreams_for(mock.url), conversations=settings)  # type: ignore[attr-defined]
    with running_proxy(config) as running:
        yield running


def _openai(proxy: RunningProxy, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{proxy.url}/v1", api_key=key, max_retries=0)


def _assert_joined(proxy: RunningProxy, mock: MockUpstream, path: str) -> None:
    first, second = proxy.sink.wait(2)
    assert second.context.trace_id == first.context.trace_id
    assert second.parent is not None and second.parent.span_id == first.context.span_id
    assert attributes(second)[semconv.CONVERSATION_ID] == attributes(first)[semconv.CONVERSATION_ID]
    forwarded = mock.requests_to(path)[-1].body.decode()
    assert MARK not in forwarded and TRACEPARENT_KEY not in forwarded


@pytest.mark.parametrize("stream", [False, True])
def test_a_signed_chat_reply_joins_the_next_call_to_its_trace(
    mock: MockUpstream, proxy: RunningProxy, stream: bool
) -> None:
    if stream:
        chunks = _openai(proxy, "sk-a").chat.completions.create(model="gpt-4o-mini", messages=QUESTION, stream=True)
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    else:
        reply = _openai(proxy, "sk-a").chat.completions.create(model="gpt-4o-mini", messages=QUESTION)
        text = reply.choices[0].message.content or ""
    assert text.endswith(MARK)

    # The client edited the reply it keeps, so the history digest cannot match: only the signature joins.
    history = [*QUESTION, {"role": "assistant", "content": "Edited. " + text}, {"role": "user", "content": "Why?"}]
    _openai(proxy, "sk-a").chat.completions.create(model="gpt-4o-mini", messages=history)

    _assert_joined(proxy, mock, "/v1/chat/completions")


def test_a_signature_copied_by_another_caller_joins_nothing(mock: MockUpstream, proxy: RunningProxy) -> None:
    reply = _openai(proxy, "sk-a").chat.completions.create(model="gpt-4o-mini", messages=QUESTION)
    text = reply.choices[0].message.content or ""
    history = [*QUESTION, {"role": "assistant", "content": "Edited. " + text}, {"role": "user", "content": "Why?"}]
    _openai(proxy, "sk-b").chat.completions.create(model="gpt-4o-mini", messages=history)

    alice, bob = proxy.sink.wait(2)
    assert bob.context.trace_id != alice.context.trace_id
    assert MARK not in mock.requests_to("/v1/chat/completions")[-1].body.decode()  # still stripped


def test_a_signed_anthropic_stream_joins_the_next_call(mock: MockUpstream, proxy: RunningProxy) -> None:
    client = anthropic.Anthropic(base_url=proxy.url, api_key="sk-a", max_retries=0)
    with client.messages.stream(model="claude-sonnet-4-6", max_tokens=64, messages=QUESTION) as events:
        text = "".join(events.text_stream)
    assert text.endswith(MARK)

    history = [*QUESTION, {"role": "assistant", "content": "Edited. " + text}, {"role": "user", "content": "Why?"}]
    anthropic.Anthropic(base_url=proxy.url, api_key="sk-a", max_retries=0).messages.create(
        model="claude-sonnet-4-6", max_tokens=64, messages=history
    )

    _assert_joined(proxy, mock, "/v1/messages")


def test_tool_calls_carry_the_trace_context_to_the_tool_and_back(mock: MockUpstream, proxy: RunningProxy) -> None:
    reply = _openai(proxy, "sk-a").chat.completions.create(model="gpt-4o-mini", messages=QUESTION, tools=[TOOL])  # type: ignore[list-item]
    call = reply.choices[0].message.tool_calls[0]  # type: ignore[index]
    arguments = json.loads(call.function.arguments)  # type: ignore[union-attr]
    first = proxy.sink.wait(1)[0]
    assert arguments[TRACEPARENT_KEY] == f"00-{first.context.trace_id:032x}-{first.context.span_id:016x}-01"

    history = [
        *QUESTION,
        reply.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "Lyon"},
    ]
    _openai(proxy, "sk-a").chat.completions.create(model="gpt-4o-mini", messages=history, tools=[TOOL])  # type: ignore[list-item]

    _assert_joined(proxy, mock, "/v1/chat/completions")


def test_a_responses_call_naming_a_previous_response_joins_its_trace(mock: MockUpstream) -> None:
    mock.reset()
    with running_proxy(ProxyConfig(upstreams=upstreams_for(mock.url))) as proxy:  # type: ignore[attr-defined]
        client = _openai(proxy, "sk-a")
        first = client.responses.create(model="gpt-4.1", input="Hi")
        client.responses.create(model="gpt-4.1", input="And then?", previous_response_id=first.id)
        one, two = proxy.sink.wait(2)

    assert first.id == RESPONSE_ID
    assert two.context.trace_id == one.context.trace_id
    assert attributes(two)[semconv.CONVERSATION_ID] == attributes(one)[semconv.CONVERSATION_ID]


def test_arguments_that_are_not_an_object_do_not_undo_the_other_marks() -> None:
    reply = {
        "choices": [
            {
                "message": {
                    "content": "Calling.",
                    "tool_calls": [{"function": {"name": "f", "arguments": "not json"}}],
                }
            }
        ]
    }
    assert mark_reply("chat_completions", reply, IDS, sign=True, tool_calls=True)
    message = reply["choices"][0]["message"]
    assert message["content"] == "Calling." + signature(IDS)
    assert message["tool_calls"][0]["function"]["arguments"] == "not json"
