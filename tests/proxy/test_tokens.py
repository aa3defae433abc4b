"""Token estimates for replies whose upstream sends no usage: the delivered text, counted whole.

Through the proxy with the official openai SDK against a server that ignores
``stream_options`` (the mock's ``no_usage`` scenario), each streamed reply's
estimate stays within 10% of the tokenizer's count of what the client received.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import openai
import pytest
import tiktoken

from collector import semconv
from proxy.config import ProxyConfig
from proxy.tokens import (
    ENCODING,
    MAX_TOKENIZED_CHARS,
    TOKENS_PER_MESSAGE,
    TOKENS_PER_REPLY_PRIMING,
    chat_prompt_tokens,
    text_tokens,
    texts_tokens,
)
from tests.proxy.mock_upstream import MockUpstream, serve
from tests.proxy.support import RunningProxy, attributes, running_proxy, upstreams_for

KEY = "sk-test-openai"
NO_USAGE = {"x-mock-scenario": "no_usage"}
QUESTION = "Could you tell me, in a few words, what the capital city of France is called?"
TOLERANCE = 0.10
WEATHER_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def _tokenizer_count(text: str) -> int:
    return len(tiktoken.get_encoding(ENCODING).encode(text, disallowed_special=()))


@pytest.fixture(scope="module")
def mock() -> Iterator[MockUpstream]:
    upstream = MockUpstream(openai_key=KEY)
    with serve(upstream) as url:
        upstream.url = url  # type: ignore[attr-defined]
        yield upstream


@pytest.fixture
def proxy(mock: MockUpstream) -> Iterator[RunningProxy]:
    config = ProxyConfig(upstreams=upstreams_for(mock.url))  # type: ignore[attr-defined]
    with running_proxy(config) as running:
        yield running


def _client(proxy: RunningProxy) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{proxy.url}/v1", api_key=KEY, max_retries=0, timeout=10)


def _estimated_output(proxy: RunningProxy) -> int:
    values = attributes(proxy.sink.wait(1)[0])
    assert values[semconv.USAGE_SOURCE] == "estimated"
    output = values[semconv.USAGE_OUTPUT_TOKENS]
    assert isinstance(output, int)
    return output


def _within_tolerance(estimate: int, delivered: str) -> None:
    expected = _tokenizer_count(delivered)
    assert expected > 5, "a reply long enough for a per-delta overhead to show"
    assert abs(estimate - expected) <= TOLERANCE * expected, (estimate, expected)


def test_a_streamed_chat_reply_is_estimated_from_its_text(proxy: RunningProxy) -> None:
    stream = _client(proxy).chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": QUESTION}],
        stream=True,
        extra_headers=NO_USAGE,
    )
    chunks = [chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices]
    delivered = "".join(chunks)

    assert len([c for c in chunks if c]) > 5  # many deltas: counting each piece apart would show
    _within_tolerance(_estimated_output(proxy), delivered)


def test_a_streamed_tool_call_is_estimated_from_its_name_and_arguments(proxy: RunningProxy) -> None:
    stream = _client(proxy).chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": QUESTION}],
        tools=[WEATHER_TOOL],  # type: ignore[list-item]
        stream=True,
        extra_headers=NO_USAGE,
    )
    name, arguments = "", ""
    for chunk in stream:
        for call in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
            name += call.function.name or "" if call.function else ""
            arguments += call.function.arguments or "" if call.function else ""

    assert json.loads(arguments) == {"city": "Paris"}
    estimate = _estimated_output(proxy)
    assert estimate == _tokenizer_count(name) + _tokenizer_count(arguments)


def test_a_streamed_legacy_completion_is_estimated_from_its_text(proxy: RunningProxy) -> None:
    stream = _client(proxy).completions.create(
        model="gpt-4o-mini", prompt=QUESTION, stream=True, extra_headers=NO_USAGE
    )
    delivered = "".join(chunk.choices[0].text for chunk in stream if chunk.choices)

    _within_tolerance(_estimated_output(proxy), delivered)


def test_a_streamed_responses_reply_is_estimated_from_its_text(proxy: RunningProxy) -> None:
    stream = _client(proxy).responses.create(model="gpt-4o-mini", input=QUESTION, stream=True, extra_headers=NO_USAGE)
    delivered = "".join(event.delta for event in stream if event.type == "response.output_text.delta")

    _within_tolerance(_estimated_output(proxy), delivered)


def test_a_chat_prompt_adds_the_formats_tokens_per_message_once() -> None:
    texts = ["You are terse.", QUESTION]
    assert chat_prompt_tokens(texts, messages=2) == (
        _tokenizer_count(texts[0]) + _tokenizer_count(texts[1]) + 2 * TOKENS_PER_MESSAGE + TOKENS_PER_REPLY_PRIMING
    )


def test_pieces_of_one_text_are_not_counted_apart() -> None:
    text = "Hello! You said: Could you tell me, in a few words"
    pieces = [text[i : i + 3] for i in range(0, len(text), 3)]
    assert texts_tokens(["".join(pieces)]) == _tokenizer_count(text) < texts_tokens(pieces)


def test_a_text_too_long_to_tokenise_on_the_loop_is_estimated_by_length() -> None:
    text = "word " * (MAX_TOKENIZED_CHARS // 5 + 1)
    assert len(text) > MAX_TOKENIZED_CHARS
    assert text_tokens(text) == len(text) // 4
