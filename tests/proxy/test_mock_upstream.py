"""The mock upstream must satisfy the official SDKs, stream and not, and act out every scenario.

These tests talk to the mock directly with ``openai`` and ``anthropic`` clients (and with plain ``httpx`` where the
exact bytes matter), so proxy tests can trust that whatever differs through the proxy is the proxy's doing.
"""

from __future__ import annotations

import base64
import gzip
import json
import struct
import threading
import time
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import openai
import pytest

from tests.proxy.mock_upstream import (
    ANTHROPIC_MESSAGE_ID,
    CALL_ID,
    CHAT_COMPLETION_ID,
    COMPLETION_ID,
    CREATED,
    RESPONSE_ID,
    SCENARIO_HEADER,
    TOOL_USE_ID,
    MockUpstream,
    count_tokens,
    reply_text,
    serve,
)

OPENAI_KEY = "sk-test-openai-0001"
ANTHROPIC_KEY = "sk-ant-test-0001"
PROMPT = "What is the weather like in Paris today?"

CHAT_TOOLS: list[Any] = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather for a city.",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        },
    }
]
RESPONSES_TOOLS: list[Any] = [
    {
        "type": "function",
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        "strict": True,
    }
]
ANTHROPIC_TOOLS: list[Any] = [
    {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    }
]


def scenario(*names: str) -> dict[str, str]:
    return {SCENARIO_HEADER: ",".join(names)}


@pytest.fixture
def mock() -> MockUpstream:
    # A short stall keeps even a test that forgot its client timeout bounded.
    return MockUpstream(openai_key=OPENAI_KEY, anthropic_key=ANTHROPIC_KEY, stall_seconds=10.0)


@pytest.fixture
def url(mock: MockUpstream) -> Iterator[str]:
    with serve(mock) as base_url:
        yield base_url


@pytest.fixture
def oai(url: str) -> Iterator[openai.OpenAI]:
    client = openai.OpenAI(base_url=f"{url}/v1", api_key=OPENAI_KEY, max_retries=0, timeout=10.0)
    yield client
    client.close()


@pytest.fixture
def claude(url: str) -> Iterator[anthropic.Anthropic]:
    client = anthropic.Anthropic(base_url=url, api_key=ANTHROPIC_KEY, max_retries=0, timeout=10.0)
    yield client
    client.close()


def raw_post(url: str, path: str, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    """POST with the right credentials for the path, bypassing the SDKs to see the bytes."""
    auth = (
        {"x-api-key": ANTHROPIC_KEY} if path.startswith("/v1/messages") else {"authorization": f"Bearer {OPENAI_KEY}"}
    )
    return httpx.post(f"{url}{path}", json=body, headers={**auth, **(headers or {})}, timeout=10.0)


def sse(text: str) -> list[tuple[str | None, str]]:
    """(event name, data) of each server-sent event."""
    events = []
    for block in text.split("\n\n"):
        if not block.strip():
            continue
        name, data = None, []
        for line in block.split("\n"):
            if line.startswith("event: "):
                name = line.removeprefix("event: ")
            elif line.startswith("data: "):
                data.append(line.removeprefix("data: "))
        events.append((name, "\n".join(data)))
    return events


def blocks(content: Any) -> list[Any]:
    """Anthropic content blocks as plain values (the stream helper returns Parsed* subclasses)."""
    return [
        (b.type, b.text) if b.type == "text" else (b.type, getattr(b, "id", None), getattr(b, "input", None))
        for b in content
    ]


def chat_body(**extra: Any) -> dict[str, Any]:
    return {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": PROMPT}], **extra}


# --------------------------------------------------------------------------------------------------------------------
# Chat Completions


def test_chat_completion(oai: openai.OpenAI, mock: MockUpstream) -> None:
    completion = oai.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": PROMPT}],
    )
    assert completion.id == CHAT_COMPLETION_ID
    assert completion.object == "chat.completion"
    assert completion.created == CREATED
    assert completion.model == "gpt-4o-mini"
    choice = completion.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content == reply_text(PROMPT) == f"Hello! You said: {PROMPT[:40]}"
    assert choice.finish_reason == "stop"
    usage = completion.usage
    assert usage is not None
    assert usage.completion_tokens == count_tokens(reply_text(PROMPT))
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert usage.prompt_tokens_details is not None and usage.prompt_tokens_details.cached_tokens == 0
    assert usage.completion_tokens_details is not None and usage.completion_tokens_details.reasoning_tokens == 0

    [request] = mock.requests
    assert (request.method, request.path) == ("POST", "/v1/chat/completions")
    assert request.headers["authorization"] == f"Bearer {OPENAI_KEY}"
    assert request.json()["messages"][1]["content"] == PROMPT


def test_chat_usage_depends_on_the_request(oai: openai.OpenAI) -> None:
    short = oai.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
    long = oai.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi " * 30}])
    assert short.usage is not None and long.usage is not None
    assert long.usage.prompt_tokens > short.usage.prompt_tokens
    assert long.usage.completion_tokens > short.usage.completion_tokens


def test_chat_n_choices(oai: openai.OpenAI) -> None:
    completion = oai.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}], n=3)
    assert [c.index for c in completion.choices] == [0, 1, 2]
    contents = [c.message.content for c in completion.choices]
    assert contents[0] == "Hello! You said: hi" and len(set(contents)) == 3


def test_chat_max_tokens_cuts_with_length(oai: openai.OpenAI) -> None:
    completion = oai.chat.completions.create(model="m", messages=[{"role": "user", "content": PROMPT}], max_tokens=3)
    assert completion.choices[0].finish_reason == "length"
    assert completion.choices[0].message.content == "Hello! You"
    assert completion.usage is not None and completion.usage.completion_tokens == 3


def test_chat_stream_without_usage(oai: openai.OpenAI, url: str) -> None:
    chunks = list(oai.chat.completions.create(model="m", messages=[{"role": "user", "content": PROMPT}], stream=True))
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[0].choices[0].delta.content == ""
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == reply_text(PROMPT)
    assert len(chunks) >= 5  # the reply arrives in several pieces
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert all(c.usage is None for c in chunks)
    assert {c.id for c in chunks} == {CHAT_COMPLETION_ID} and {c.created for c in chunks} == {CREATED}

    # On the wire: no usage field at all, compact JSON, [DONE] last.
    raw = raw_post(url, "/v1/chat/completions", chat_body(stream=True))
    assert raw.headers["content-type"] == "text/event-stream; charset=utf-8"
    events = sse(raw.text)
    assert events[-1] == (None, "[DONE]")
    assert '"usage"' not in raw.text
    for _, data in events[:-1]:
        assert json.dumps(json.loads(data), separators=(",", ":"), ensure_ascii=False) == data


def test_chat_stream_include_usage(oai: openai.OpenAI, url: str) -> None:
    plain = oai.chat.completions.create(model="m", messages=[{"role": "user", "content": PROMPT}])
    chunks = list(
        oai.chat.completions.create(
            model="m",
            messages=[{"role": "user", "content": PROMPT}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    last = chunks[-1]
    assert last.choices == []
    assert last.usage is not None and last.usage == plain.usage  # same numbers streamed or not
    assert all(c.usage is None for c in chunks[:-1])
    assert chunks[-2].choices[0].finish_reason == "stop"

    raw = raw_post(url, "/v1/chat/completions", chat_body(stream=True, stream_options={"include_usage": True}))
    datas = [json.loads(d) for _, d in sse(raw.text)[:-1]]
    assert all(d["usage"] is None for d in datas[:-1])  # every chunk carries "usage":null
    assert datas[-1]["choices"] == [] and datas[-1]["usage"]["total_tokens"] > 0
    assert list(datas[0])[:7] == ["id", "object", "created", "model", "service_tier", "system_fingerprint", "choices"]


def test_chat_stream_obfuscation_can_be_turned_off(url: str) -> None:
    on = raw_post(url, "/v1/chat/completions", chat_body(stream=True)).text
    off = raw_post(url, "/v1/chat/completions", chat_body(stream=True, stream_options={"include_obfuscation": False}))
    assert '"obfuscation"' in on and '"obfuscation"' not in off.text


def test_chat_no_usage_scenario(oai: openai.OpenAI) -> None:
    completion = oai.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "hi"}], extra_headers=scenario("no_usage")
    )
    assert completion.usage is None
    chunks = list(
        oai.chat.completions.create(
            model="m",
            messages=[{"role": "user", "content": "hi"}],
            stream=True,
            stream_options={"include_usage": True},
            extra_headers=scenario("no_usage"),
        )
    )
    assert all(c.usage is None for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_chat_n_choices_stream(oai: openai.OpenAI) -> None:
    chunks = list(
        oai.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}], n=2, stream=True)
    )
    texts = ["", ""]
    for chunk in chunks:
        for choice in chunk.choices:
            texts[choice.index] += choice.delta.content or ""
    assert texts == ["Hello! You said: hi", "Hello! You said: hi [1]"]


def test_chat_tool_call(oai: openai.OpenAI) -> None:
    completion = oai.chat.completions.create(
        model="m", messages=[{"role": "user", "content": PROMPT}], tools=CHAT_TOOLS
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    [tool_call] = choice.message.tool_calls or []
    assert tool_call.id == CALL_ID and tool_call.type == "function"
    assert tool_call.function.name == "get_weather"
    assert json.loads(tool_call.function.arguments) == {"city": "Paris"}


def test_chat_tool_call_stream(oai: openai.OpenAI) -> None:
    chunks = list(
        oai.chat.completions.create(
            model="m", messages=[{"role": "user", "content": PROMPT}], tools=CHAT_TOOLS, stream=True
        )
    )
    deltas = [c.choices[0].delta.tool_calls[0] for c in chunks if c.choices and c.choices[0].delta.tool_calls]
    first = deltas[0]
    assert (first.index, first.id, first.type) == (0, CALL_ID, "function")
    assert first.function is not None and first.function.name == "get_weather" and first.function.arguments == ""
    assert all(d.id is None and d.function is not None and d.function.name is None for d in deltas[1:])
    assert len(deltas) > 3  # arguments arrive in fragments
    arguments = "".join(d.function.arguments or "" for d in deltas if d.function)
    assert json.loads(arguments) == {"city": "Paris"}
    assert chunks[-1].choices[0].finish_reason == "tool_calls"

    # The SDK's own accumulator agrees.
    with oai.chat.completions.stream(
        model="m", messages=[{"role": "user", "content": PROMPT}], tools=CHAT_TOOLS
    ) as stream:
        final = stream.get_final_completion()
    [tool_call] = final.choices[0].message.tool_calls or []
    assert tool_call.function.name == "get_weather" and tool_call.function.parsed_arguments is None


def test_chat_after_tool_result_answers_in_text(oai: openai.OpenAI) -> None:
    completion = oai.chat.completions.create(
        model="m",
        tools=CHAT_TOOLS,
        messages=[
            {"role": "user", "content": PROMPT},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": CALL_ID, "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
                ],
            },
            {"role": "tool", "tool_call_id": CALL_ID, "content": "Sunny, 24 C"},
        ],
    )
    assert completion.choices[0].finish_reason == "stop"
    assert completion.choices[0].message.content == "Thanks! The tool said: Sunny, 24 C"


def test_chat_content_parts_and_unicode(oai: openai.OpenAI, url: str) -> None:
    completion = oai.chat.completions.create(
        model="m", messages=[{"role": "user", "content": [{"type": "text", "text": "héllo wörld ✓"}]}]
    )
    assert completion.choices[0].message.content == "Hello! You said: héllo wörld ✓"
    raw = raw_post(url, "/v1/chat/completions", chat_body(messages=[{"role": "user", "content": "ü"}]))
    assert "You said: ü" in raw.content.decode()  # raw UTF-8, not \u escapes


# --------------------------------------------------------------------------------------------------------------------
# Legacy Completions


def test_completion(oai: openai.OpenAI) -> None:
    completion = oai.completions.create(model="gpt-3.5-turbo-instruct", prompt="Say this is a test")
    assert completion.id == COMPLETION_ID and completion.object == "text_completion"
    assert completion.choices[0].text == "Hello! You said: Say this is a test"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.prompt_tokens == 5
    assert completion.usage.completion_tokens == count_tokens(completion.choices[0].text)


def test_completion_stream(oai: openai.OpenAI, url: str) -> None:
    chunks = list(oai.completions.create(model="m", prompt="Say this is a test", stream=True))
    assert "".join(c.choices[0].text for c in chunks if c.choices) == "Hello! You said: Say this is a test"
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert all(c.usage is None for c in chunks)

    with_usage = list(
        oai.completions.create(model="m", prompt="Say this", stream=True, stream_options={"include_usage": True})
    )
    assert with_usage[-1].choices == [] and with_usage[-1].usage is not None
    assert (
        with_usage[-1].usage.total_tokens == with_usage[-1].usage.prompt_tokens + with_usage[-1].usage.completion_tokens
    )

    raw = raw_post(url, "/v1/completions", {"model": "m", "prompt": "x", "stream": True})
    assert sse(raw.text)[-1] == (None, "[DONE]") and '"usage"' not in raw.text


# --------------------------------------------------------------------------------------------------------------------
# Responses


def test_response(oai: openai.OpenAI) -> None:
    response = oai.responses.create(model="gpt-4o-mini", input=PROMPT, instructions="Be brief.")
    assert response.id == RESPONSE_ID and response.status == "completed"
    assert response.created_at == CREATED and response.model == "gpt-4o-mini"
    assert response.instructions == "Be brief."
    assert response.output_text == reply_text(PROMPT)
    [message] = response.output
    assert message.type == "message" and message.role == "assistant"
    usage = response.usage
    assert usage is not None
    assert usage.output_tokens == count_tokens(reply_text(PROMPT))
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens
    assert usage.input_tokens_details.cached_tokens == 0
    assert usage.output_tokens_details.reasoning_tokens == 0


def test_response_stream(oai: openai.OpenAI, url: str) -> None:
    events = list(oai.responses.create(model="m", input=[{"role": "user", "content": PROMPT}], stream=True))
    types = [e.type for e in events]
    deltas = types.count("response.output_text.delta")
    assert deltas > 3
    assert types == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        *["response.output_text.delta"] * deltas,
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == reply_text(PROMPT)
    completed = events[-1]
    assert completed.type == "response.completed"
    assert completed.response.usage is not None and completed.response.output_text == text
    assert events[0].type == "response.created" and events[0].response.usage is None

    # Same usage as without streaming, and the SDK helper accumulates the same text.
    plain = oai.responses.create(model="m", input=[{"role": "user", "content": PROMPT}])
    assert plain.usage == completed.response.usage
    with oai.responses.stream(model="m", input=PROMPT) as stream:
        assert stream.get_final_response().output_text == text

    raw = raw_post(url, "/v1/responses", {"model": "m", "input": "hi", "stream": True})
    wire = sse(raw.text)
    assert all(name == json.loads(data)["type"] for name, data in wire)  # event: line matches the type
    assert "[DONE]" not in raw.text  # the Responses API has no [DONE]


def test_response_function_call(oai: openai.OpenAI) -> None:
    response = oai.responses.create(model="m", input=PROMPT, tools=RESPONSES_TOOLS)
    [call] = response.output
    assert call.type == "function_call"
    assert (call.call_id, call.name, json.loads(call.arguments)) == (CALL_ID, "get_weather", {"city": "Paris"})

    events = list(oai.responses.create(model="m", input=PROMPT, tools=RESPONSES_TOOLS, stream=True))
    fragments = [e.delta for e in events if e.type == "response.function_call_arguments.delta"]
    assert len(fragments) > 1 and json.loads("".join(fragments)) == {"city": "Paris"}
    done = [e for e in events if e.type == "response.function_call_arguments.done"]
    assert done and json.loads(done[0].arguments) == {"city": "Paris"}

    follow_up = oai.responses.create(
        model="m",
        tools=RESPONSES_TOOLS,
        input=[
            {"role": "user", "content": PROMPT},
            {"type": "function_call", "call_id": CALL_ID, "name": "get_weather", "arguments": "{}"},
            {"type": "function_call_output", "call_id": CALL_ID, "output": "Rain"},
        ],
    )
    assert follow_up.output_text == "Thanks! The tool said: Rain"


# --------------------------------------------------------------------------------------------------------------------
# Embeddings, models, files, unknown paths


def test_embeddings(oai: openai.OpenAI, mock: MockUpstream, url: str) -> None:
    result = oai.embeddings.create(model="text-embedding-3-small", input=["one", "two words"])
    assert mock.requests[-1].json()["encoding_format"] == "base64"  # the SDK asks for base64 unless told otherwise
    assert [e.index for e in result.data] == [0, 1]
    assert all(len(e.embedding) == 8 for e in result.data)
    assert result.data[0].embedding != result.data[1].embedding
    assert result.usage.prompt_tokens == result.usage.total_tokens == 3

    as_floats = oai.embeddings.create(model="m", input=["one", "two words"], encoding_format="float")
    assert [e.embedding for e in as_floats.data] == [e.embedding for e in result.data]

    raw = raw_post(url, "/v1/embeddings", {"model": "m", "input": "one", "encoding_format": "base64"}).json()
    encoded = raw["data"][0]["embedding"]
    assert list(struct.unpack("<8f", base64.b64decode(encoded))) == result.data[0].embedding


def test_models(oai: openai.OpenAI, claude: anthropic.Anthropic) -> None:
    ids = [m.id for m in oai.models.list()]
    assert "gpt-4o-mini" in ids and len(ids) >= 3
    assert oai.models.retrieve("gpt-4o").owned_by == "system"
    with pytest.raises(openai.NotFoundError):
        oai.models.retrieve("no-such-model")
    # The same path answers in Anthropic's shape when the request carries anthropic-version.
    claude_ids = [m.id for m in claude.models.list()]
    assert claude_ids and all(i.startswith("claude-") for i in claude_ids)


def test_files_and_unknown_paths(oai: openai.OpenAI, url: str, mock: MockUpstream) -> None:
    files = list(oai.files.list())
    assert [f.id for f in files] == ["file-mock1"]

    with pytest.raises(openai.NotFoundError) as caught:
        oai.get("/nowhere?x=1", cast_to=object)
    assert caught.value.body == {
        "message": "Invalid URL (GET /v1/nowhere)",
        "type": "invalid_request_error",
        "param": None,
        "code": None,
    }
    assert (mock.requests[-1].path, mock.requests[-1].query) == ("/v1/nowhere", "x=1")

    response = httpx.delete(f"{url}/v1/messages/batches/x", headers={"x-api-key": ANTHROPIC_KEY}, timeout=10.0)
    assert response.status_code == 404
    assert response.json() == {"type": "error", "error": {"type": "not_found_error", "message": "Not Found"}}


# --------------------------------------------------------------------------------------------------------------------
# Anthropic Messages


def test_message(claude: anthropic.Anthropic, mock: MockUpstream) -> None:
    message = claude.messages.create(
        model="claude-sonnet-4-20250514",
        max_tokens=100,
        system="You are terse.",
        messages=[{"role": "user", "content": PROMPT}],
    )
    assert message.id == ANTHROPIC_MESSAGE_ID and message.type == "message" and message.role == "assistant"
    assert message.model == "claude-sonnet-4-20250514"
    assert [b.type for b in message.content] == ["text"]
    assert message.content[0].type == "text" and message.content[0].text == reply_text(PROMPT)
    assert message.stop_reason == "end_turn"
    assert message.usage.output_tokens == count_tokens(reply_text(PROMPT))
    assert message.usage.cache_creation_input_tokens == 0 and message.usage.cache_read_input_tokens == 0

    request = mock.requests[-1]
    # anthropic-sdk-python 2.x sends the API key as a Bearer token, not as x-api-key.
    assert request.headers["authorization"] == f"Bearer {ANTHROPIC_KEY}"
    assert "anthropic-version" in request.headers


def test_message_system_blocks_count(claude: anthropic.Anthropic) -> None:
    messages: Any = [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]
    bare = claude.messages.create(model="c", max_tokens=50, messages=messages)
    with_system = claude.messages.create(
        model="c",
        max_tokens=50,
        system=[
            {"type": "text", "text": "A long system prompt of many words.", "cache_control": {"type": "ephemeral"}}
        ],
        messages=messages,
    )
    assert with_system.usage.input_tokens > bare.usage.input_tokens
    assert bare.content[0].type == "text" and bare.content[0].text == "Hello! You said: hi"


def test_message_max_tokens(claude: anthropic.Anthropic) -> None:
    message = claude.messages.create(model="c", max_tokens=2, messages=[{"role": "user", "content": PROMPT}])
    assert message.stop_reason == "max_tokens" and message.usage.output_tokens == 2


def test_message_stream(claude: anthropic.Anthropic, url: str) -> None:
    events = list(
        claude.messages.create(model="c", max_tokens=100, messages=[{"role": "user", "content": PROMPT}], stream=True)
    )
    types = [e.type for e in events]
    assert types[:2] == ["message_start", "content_block_start"]
    assert types[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert types.count("content_block_delta") > 1
    start = events[0]
    assert start.type == "message_start" and start.message.usage.output_tokens == 1
    text = "".join(e.delta.text for e in events if e.type == "content_block_delta" and e.delta.type == "text_delta")
    assert text == reply_text(PROMPT)

    with claude.messages.stream(model="c", max_tokens=100, messages=[{"role": "user", "content": PROMPT}]) as stream:
        final = stream.get_final_message()
    plain = claude.messages.create(model="c", max_tokens=100, messages=[{"role": "user", "content": PROMPT}])
    assert final.usage == plain.usage and blocks(final.content) == blocks(plain.content)
    assert final.stop_reason == "end_turn"

    raw = raw_post(
        url,
        "/v1/messages",
        {"model": "c", "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}], "stream": True},
    )
    wire = sse(raw.text)
    assert ("ping", '{"type": "ping"}') in wire  # the real ping, space and all
    assert all(name == json.loads(data)["type"] for name, data in wire)


def test_message_tool_use(claude: anthropic.Anthropic) -> None:
    messages: Any = [{"role": "user", "content": PROMPT}]
    message = claude.messages.create(model="c", max_tokens=100, tools=ANTHROPIC_TOOLS, messages=messages)
    assert message.stop_reason == "tool_use"
    tool_use = message.content[-1]
    assert tool_use.type == "tool_use"
    assert (tool_use.id, tool_use.name, tool_use.input) == (TOOL_USE_ID, "get_weather", {"city": "Paris"})

    events = list(
        claude.messages.create(model="c", max_tokens=100, tools=ANTHROPIC_TOOLS, messages=messages, stream=True)
    )
    partial = [
        e.delta.partial_json for e in events if e.type == "content_block_delta" and e.delta.type == "input_json_delta"
    ]
    assert partial[0] == "" and len(partial) > 2
    assert json.loads("".join(partial)) == {"city": "Paris"}
    with claude.messages.stream(model="c", max_tokens=100, tools=ANTHROPIC_TOOLS, messages=messages) as stream:
        final = stream.get_final_message()
    assert blocks(final.content) == blocks(message.content) and final.usage == message.usage

    result = claude.messages.create(
        model="c",
        max_tokens=100,
        tools=ANTHROPIC_TOOLS,
        messages=[
            {"role": "user", "content": PROMPT},
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": TOOL_USE_ID, "name": "get_weather", "input": {}}],
            },
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": TOOL_USE_ID, "content": "Windy"}]},
        ],
    )
    assert result.stop_reason == "end_turn"
    assert result.content[0].type == "text" and result.content[0].text == "Thanks! The tool said: Windy"


def test_count_tokens(claude: anthropic.Anthropic) -> None:
    kwargs: Any = {"model": "c", "messages": [{"role": "user", "content": PROMPT}], "system": "Be brief."}
    counted = claude.messages.count_tokens(**kwargs)
    assert counted.input_tokens == claude.messages.create(max_tokens=50, **kwargs).usage.input_tokens


def test_anthropic_x_api_key_accepted(url: str) -> None:
    response = raw_post(
        url, "/v1/messages", {"model": "c", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}
    )
    assert response.status_code == 200 and response.headers["request-id"]


# --------------------------------------------------------------------------------------------------------------------
# Credentials and error scenarios


def test_wrong_keys(url: str) -> None:
    bad_openai = openai.OpenAI(base_url=f"{url}/v1", api_key="sk-wrong-key-9999", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as openai_error:
        bad_openai.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
    assert openai_error.value.status_code == 401
    assert openai_error.value.code == "invalid_api_key" and openai_error.value.type == "invalid_request_error"
    assert openai_error.value.param is None

    bad_claude = anthropic.Anthropic(base_url=url, api_key="sk-ant-wrong", max_retries=0)
    with pytest.raises(anthropic.AuthenticationError) as anthropic_error:
        bad_claude.messages.create(model="c", max_tokens=10, messages=[{"role": "user", "content": "hi"}])
    assert anthropic_error.value.body == {
        "type": "error",
        "error": {"type": "authentication_error", "message": "invalid x-api-key"},
    }
    missing = httpx.post(f"{url}/v1/chat/completions", json=chat_body(), timeout=10.0)
    assert missing.status_code == 401 and missing.json()["error"]["code"] == "invalid_api_key"


def test_keys_optional(url: str) -> None:
    open_mock = MockUpstream()
    with serve(open_mock) as open_url:
        client = openai.OpenAI(base_url=f"{open_url}/v1", api_key="anything", max_retries=0)
        assert client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}]).choices


@pytest.mark.parametrize(
    ("name", "status", "openai_error", "anthropic_error", "anthropic_type"),
    [
        ("error_400", 400, openai.BadRequestError, anthropic.BadRequestError, "invalid_request_error"),
        ("error_429", 429, openai.RateLimitError, anthropic.RateLimitError, "rate_limit_error"),
        ("error_500", 500, openai.InternalServerError, anthropic.InternalServerError, "api_error"),
    ],
)
def test_error_scenarios(
    oai: openai.OpenAI,
    claude: anthropic.Anthropic,
    name: str,
    status: int,
    openai_error: type[openai.APIStatusError],
    anthropic_error: type[anthropic.APIStatusError],
    anthropic_type: str,
) -> None:
    with pytest.raises(openai_error) as caught:
        oai.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "hi"}], extra_headers=scenario(name)
        )
    assert caught.value.status_code == status
    assert isinstance(caught.value.body, dict) and set(caught.value.body) == {"message", "type", "param", "code"}

    with pytest.raises(anthropic_error) as anthropic_caught:
        claude.messages.create(
            model="c", max_tokens=10, messages=[{"role": "user", "content": "hi"}], extra_headers=scenario(name)
        )
    body = anthropic_caught.value.body
    assert isinstance(body, dict) and body["type"] == "error" and body["error"]["type"] == anthropic_type
    if status == 429:
        assert caught.value.response.headers["retry-after"] == "1"
        assert anthropic_caught.value.response.headers["retry-after"] == "1"


def test_error_then_ok(url: str, mock: MockUpstream) -> None:
    no_retry = openai.OpenAI(base_url=f"{url}/v1", api_key=OPENAI_KEY, max_retries=0)
    with pytest.raises(openai.InternalServerError) as caught:
        no_retry.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "hi"}], extra_headers=scenario("error_then_ok")
        )
    assert caught.value.status_code == 503
    # Only the first request of a path fails: the next one, and the first of another path, succeed after a retry.
    assert no_retry.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "hi"}], extra_headers=scenario("error_then_ok")
    ).choices

    mock.reset()
    retrying = anthropic.Anthropic(base_url=url, api_key=ANTHROPIC_KEY, max_retries=2)
    message = retrying.messages.create(
        model="c", max_tokens=10, messages=[{"role": "user", "content": "hi"}], extra_headers=scenario("error_then_ok")
    )
    assert message.stop_reason in ("end_turn", "max_tokens")
    assert [r.headers["x-stainless-retry-count"] for r in mock.requests] == ["0", "1"]


def test_bad_json_body(url: str) -> None:
    response = httpx.post(
        f"{url}/v1/chat/completions",
        content=b"{not json",
        headers={"authorization": f"Bearer {OPENAI_KEY}", "content-type": "application/json"},
        timeout=10.0,
    )
    assert response.status_code == 400 and response.json()["error"]["type"] == "invalid_request_error"
    missing_max_tokens = raw_post(url, "/v1/messages", {"model": "c", "messages": []})
    assert missing_max_tokens.status_code == 400


def test_encoding_scenarios(oai: openai.OpenAI, url: str, mock: MockUpstream) -> None:
    plain = raw_post(url, "/v1/chat/completions", chat_body())
    gzipped = raw_post(url, "/v1/chat/completions", chat_body(), scenario("gzip"))
    assert gzipped.headers["content-encoding"] == "gzip"
    assert gzipped.content == plain.content  # httpx inflated it
    assert int(gzipped.headers["content-length"]) == len(gzip.compress(plain.content, mtime=0))
    assert oai.chat.completions.create(**chat_body(), extra_headers=scenario("gzip")).choices

    mock.gzip_bomb_bytes = 4 * 1024 * 1024
    with httpx.stream(
        "POST",
        f"{url}/v1/chat/completions",
        json=chat_body(),
        headers={"authorization": f"Bearer {OPENAI_KEY}", **scenario("gzip_bomb")},
        timeout=10.0,
    ) as bomb:
        compressed = b"".join(bomb.iter_raw())
    inflated = gzip.decompress(compressed)
    assert len(compressed) < 64 * 1024 and len(inflated) == mock.gzip_bomb_bytes
    assert json.loads(inflated) == plain.json()  # the padding is whitespace: still the same JSON document

    chunked = raw_post(url, "/v1/chat/completions", chat_body(), scenario("chunked"))
    assert "content-length" not in chunked.headers and chunked.headers["transfer-encoding"] == "chunked"
    assert chunked.content == plain.content


def test_stream_error_scenario(oai: openai.OpenAI, claude: anthropic.Anthropic) -> None:
    stream = oai.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "hi"}], stream=True, extra_headers=scenario("stream_error")
    )
    with pytest.raises(openai.APIError, match="server had an error"):
        list(stream)

    claude_stream = claude.messages.create(
        model="c",
        max_tokens=50,
        messages=[{"role": "user", "content": "hi"}],
        stream=True,
        extra_headers=scenario("stream_error"),
    )
    with pytest.raises(anthropic.APIStatusError) as caught:
        list(claude_stream)
    assert isinstance(caught.value.body, dict) and caught.value.body["error"]["type"] == "overloaded_error"


def test_usage_scenarios(oai: openai.OpenAI, claude: anthropic.Anthropic) -> None:
    completion = oai.chat.completions.create(
        model="m", messages=[{"role": "user", "content": PROMPT}], extra_headers=scenario("cached", "reasoning")
    )
    usage = completion.usage
    assert usage is not None and usage.prompt_tokens_details and usage.completion_tokens_details
    assert usage.prompt_tokens_details.cached_tokens == usage.prompt_tokens // 2
    assert usage.completion_tokens_details.reasoning_tokens == 16
    assert usage.completion_tokens == 16 + count_tokens(reply_text(PROMPT))

    plain = claude.messages.create(model="c", max_tokens=50, messages=[{"role": "user", "content": PROMPT}])
    cached = claude.messages.create(
        model="c", max_tokens=50, messages=[{"role": "user", "content": PROMPT}], extra_headers=scenario("cached")
    )
    assert cached.usage.cache_read_input_tokens and cached.usage.cache_read_input_tokens > 0
    assert cached.usage.input_tokens + cached.usage.cache_read_input_tokens == plain.usage.input_tokens


def test_tool_loop_scenario(oai: openai.OpenAI, claude: anthropic.Anthropic) -> None:
    # After a tool result the model calls the tool again, each time under a new id.
    loop = scenario("tool_loop")
    chat: list[Any] = [{"role": "user", "content": PROMPT}]
    for number in (1, 2, 3):
        completion = oai.chat.completions.create(model="m", messages=chat, tools=CHAT_TOOLS, extra_headers=loop)
        [call] = completion.choices[0].message.tool_calls or []
        assert (call.id, call.function.name, json.loads(call.function.arguments)) == (
            f"call_mock_{number}",
            "get_weather",
            {"city": "Paris"},
        )
        chat += [
            completion.choices[0].message.model_dump(),
            {"role": "tool", "tool_call_id": call.id, "content": "Sun"},
        ]
    streamed = list(
        oai.chat.completions.create(model="m", messages=chat, tools=CHAT_TOOLS, extra_headers=loop, stream=True)
    )
    assert streamed[0].choices[0].delta.tool_calls and streamed[0].choices[0].delta.tool_calls[0].id == "call_mock_4"

    items: list[Any] = [{"role": "user", "content": PROMPT}]
    for number in (1, 2):
        response = oai.responses.create(model="m", input=items, tools=RESPONSES_TOOLS, extra_headers=loop)
        [item] = response.output
        assert item.type == "function_call"
        assert (item.id, item.call_id) == (f"fc_mock_{number}", f"call_mock_{number}")
        items += [
            {"type": "function_call", "call_id": item.call_id, "name": item.name, "arguments": item.arguments},
            {"type": "function_call_output", "call_id": item.call_id, "output": "Sun"},
        ]

    messages: list[Any] = [{"role": "user", "content": PROMPT}]
    for number in (1, 2):
        message = claude.messages.create(
            model="c", max_tokens=100, tools=ANTHROPIC_TOOLS, messages=messages, extra_headers=loop
        )
        tool_use = message.content[-1]
        assert tool_use.type == "tool_use" and tool_use.id == f"toolu_mock_{number}"
        messages += [
            {"role": "assistant", "content": [b.model_dump() for b in message.content]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": tool_use.id, "content": "Sun"}]},
        ]

    # Without the scenario the model answers the tool result in text, as before.
    plain = oai.chat.completions.create(model="m", messages=chat, tools=CHAT_TOOLS)
    assert plain.choices[0].finish_reason == "stop"


def test_parallel_tools_scenario_asks_for_one_call_per_named_city(oai: openai.OpenAI) -> None:
    both = scenario("parallel_tools")
    chat: list[Any] = [{"role": "user", "content": "Compare the weather in Paris and Rome."}]
    completion = oai.chat.completions.create(model="m", messages=chat, tools=CHAT_TOOLS, extra_headers=both)
    calls = completion.choices[0].message.tool_calls or []
    assert [(c.id, json.loads(c.function.arguments)) for c in calls] == [
        ("call_mock_1", {"city": "Paris"}),
        ("call_mock_2", {"city": "Rome"}),
    ]
    assert completion.usage is not None and completion.usage.completion_tokens == 2 * (
        count_tokens("get_weather") + count_tokens('{"city":"Paris"}') + 4
    )
    # Streamed, the SDK's accumulation gives the same two calls.
    with oai.chat.completions.stream(model="m", messages=chat, tools=CHAT_TOOLS, extra_headers=both) as stream:
        streamed = stream.get_final_completion().choices[0].message.tool_calls or []
    assert [(c.id, c.function.name, c.function.arguments) for c in streamed] == [
        (c.id, c.function.name, c.function.arguments) for c in calls
    ]
    chat += [completion.choices[0].message.model_dump()] + [
        {"role": "tool", "tool_call_id": c.id, "content": f"Sun in {json.loads(c.function.arguments)['city']}"}
        for c in calls
    ]
    answer = oai.chat.completions.create(model="m", messages=chat, tools=CHAT_TOOLS, extra_headers=both)
    assert answer.choices[0].message.content == reply_text("Sun in Rome", after_tool=True)

    items: list[Any] = [{"role": "user", "content": "Compare the weather in Paris and Rome."}]
    response = oai.responses.create(model="m", input=items, tools=RESPONSES_TOOLS, extra_headers=both)
    assert [(i.type, i.call_id, i.arguments) for i in response.output] == [  # type: ignore[union-attr]
        ("function_call", "call_mock_1", '{"city":"Paris"}'),
        ("function_call", "call_mock_2", '{"city":"Rome"}'),
    ]
    with oai.responses.stream(model="m", input=items, tools=RESPONSES_TOOLS, extra_headers=both) as events:
        final = events.get_final_response()
    assert [(i.call_id, i.arguments) for i in final.output] == [(i.call_id, i.arguments) for i in response.output]  # type: ignore[union-attr]


def test_args_from_prompt_and_retry_on_error_scenarios(oai: openai.OpenAI, claude: anthropic.Anthropic) -> None:
    retry = scenario("retry_on_error")
    chat: list[Any] = [{"role": "user", "content": "What is the weather in Pariss?"}]
    first = oai.chat.completions.create(model="m", messages=chat, tools=CHAT_TOOLS, extra_headers=retry)
    [call] = first.choices[0].message.tool_calls or []
    assert (call.id, call.function.arguments) == ("call_mock_1", '{"city":"Pariss"}')
    chat += [
        first.choices[0].message.model_dump(),
        {"role": "tool", "tool_call_id": call.id, "content": "Error: unknown city 'Pariss'. Did you mean 'Paris'?"},
    ]
    second = oai.chat.completions.create(model="m", messages=chat, tools=CHAT_TOOLS, extra_headers=retry)
    [again] = second.choices[0].message.tool_calls or []
    assert (again.id, again.function.arguments) == ("call_mock_2", '{"city":"Paris"}')
    chat += [second.choices[0].message.model_dump(), {"role": "tool", "tool_call_id": again.id, "content": "Sun"}]
    third = oai.chat.completions.create(model="m", messages=chat, tools=CHAT_TOOLS, extra_headers=retry)
    assert third.choices[0].finish_reason == "stop"

    # A later question in the same conversation names another city, under the next id.
    chat += [
        {"role": "assistant", "content": third.choices[0].message.content},
        {"role": "user", "content": "And in Lisbon?"},
    ]
    later = oai.chat.completions.create(
        model="m", messages=chat, tools=CHAT_TOOLS, extra_headers=scenario("args_from_prompt")
    )
    [lisbon] = later.choices[0].message.tool_calls or []
    assert (lisbon.id, lisbon.function.arguments) == ("call_mock_3", '{"city":"Lisbon"}')
    nothing_named = oai.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "weather?"}], tools=CHAT_TOOLS, extra_headers=retry
    )
    assert (nothing_named.choices[0].message.tool_calls or [])[0].function.arguments == '{"city":"Paris"}'

    # Anthropic: one tool_use block even with parallel_tools, its argument the last name in the prompt.
    message = claude.messages.create(
        model="c",
        max_tokens=100,
        tools=ANTHROPIC_TOOLS,
        messages=[{"role": "user", "content": "Compare Rome and Oslo."}],
        extra_headers=scenario("parallel_tools"),
    )
    assert [(b.type, getattr(b, "input", None)) for b in message.content] == [
        ("text", None),
        ("tool_use", {"city": "Oslo"}),
    ]


# --------------------------------------------------------------------------------------------------------------------
# Timing, stalls and disconnects


def test_slow_scenario(oai: openai.OpenAI, mock: MockUpstream) -> None:
    mock.slow_seconds = 0.05
    started = time.monotonic()
    chunks = list(
        oai.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "hi"}], stream=True, extra_headers=scenario("slow")
        )
    )
    assert time.monotonic() - started >= 0.05 * len(chunks)  # a pause between every two pieces
    assert mock.disconnects == 0


def test_stall_non_streaming_times_out_and_disconnect_is_seen(url: str, mock: MockUpstream) -> None:
    client = openai.OpenAI(base_url=f"{url}/v1", api_key=OPENAI_KEY, max_retries=0, timeout=0.5)
    started = time.monotonic()
    with pytest.raises(openai.APITimeoutError):
        client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "hi"}], extra_headers=scenario("stall")
        )
    assert time.monotonic() - started < 5
    assert mock.wait_for_disconnect(5) and mock.disconnects == 1


def test_stall_stream_sends_first_chunk(url: str, mock: MockUpstream) -> None:
    client = openai.OpenAI(base_url=f"{url}/v1", api_key=OPENAI_KEY, max_retries=0, timeout=0.5)
    stream = client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "hi"}], stream=True, extra_headers=scenario("stall")
    )
    first = next(stream)
    assert first.choices[0].delta.role == "assistant"
    with pytest.raises(openai.APITimeoutError):
        next(stream)
    stream.close()
    assert mock.wait_for_disconnect(5)


def test_stall_headers(url: str, mock: MockUpstream) -> None:
    client = anthropic.Anthropic(base_url=url, api_key=ANTHROPIC_KEY, max_retries=0, timeout=0.5)
    with pytest.raises(anthropic.APITimeoutError):
        client.messages.create(
            model="c",
            max_tokens=10,
            messages=[{"role": "user", "content": "hi"}],
            extra_headers=scenario("stall_headers"),
        )
    assert mock.wait_for_disconnect(5)


def test_client_closing_a_stream_is_a_disconnect(oai: openai.OpenAI, mock: MockUpstream) -> None:
    stream = oai.chat.completions.create(
        model="m", messages=[{"role": "user", "content": PROMPT}], stream=True, extra_headers=scenario("slow")
    )
    next(stream)
    stream.close()
    assert mock.wait_for_disconnect(5) and mock.disconnects == 1


def test_completed_streams_are_not_disconnects(
    oai: openai.OpenAI, claude: anthropic.Anthropic, mock: MockUpstream
) -> None:
    list(oai.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}], stream=True))
    list(claude.messages.create(model="c", max_tokens=50, messages=[{"role": "user", "content": "hi"}], stream=True))
    assert not mock.disconnected.wait(0.3)


def test_drop_scenario(oai: openai.OpenAI, url: str) -> None:
    stream = oai.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "hi"}], stream=True, extra_headers=scenario("drop")
    )
    with pytest.raises(openai.APIConnectionError):
        list(stream)
    with pytest.raises(httpx.HTTPError):
        raw_post(url, "/v1/chat/completions", chat_body(), scenario("drop"))


def test_serve_stops_despite_a_stalled_request(mock: MockUpstream) -> None:
    outcome: list[BaseException | None] = []

    def call(base_url: str) -> None:
        client = openai.OpenAI(base_url=f"{base_url}/v1", api_key=OPENAI_KEY, max_retries=0, timeout=20.0)
        try:
            client.chat.completions.create(
                model="m", messages=[{"role": "user", "content": "hi"}], extra_headers=scenario("stall_headers")
            )
            outcome.append(None)
        except BaseException as error:  # noqa: BLE001 - whatever it is, the test only needs it to end
            outcome.append(error)

    started = time.monotonic()
    with serve(mock) as base_url:
        worker = threading.Thread(target=call, args=(base_url,), daemon=True)
        worker.start()
        deadline = time.monotonic() + 5
        while not mock.requests and time.monotonic() < deadline:
            time.sleep(0.01)
    worker.join(5)
    assert not worker.is_alive() and outcome and outcome[0] is not None
    assert time.monotonic() - started < 8


# --------------------------------------------------------------------------------------------------------------------
# Determinism


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/chat/completions", chat_body()),
        ("/v1/chat/completions", chat_body(stream=True, stream_options={"include_usage": True}, tools=CHAT_TOOLS)),
        ("/v1/completions", {"model": "m", "prompt": "hi", "stream": True}),
        ("/v1/responses", {"model": "m", "input": "hi", "stream": True}),
        ("/v1/embeddings", {"model": "m", "input": "hi"}),
        (
            "/v1/messages",
            {"model": "c", "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}], "stream": True},
        ),
    ],
)
def test_answers_are_byte_for_byte_repeatable(url: str, path: str, body: dict[str, Any]) -> None:
    first, second = raw_post(url, path, body), raw_post(url, path, body)
    assert first.status_code == 200
    assert first.content == second.content
    assert first.headers.multi_items() == second.headers.multi_items()
    assert "date" not in first.headers and "server" not in first.headers
