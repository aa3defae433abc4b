"""Fuzz the proxy's stream reading: the SSE splitter, each API's stream tee, and the stream signer.

- Splitting: a stream cut at arbitrary chunk boundaries gives the same events as
  the stream fed whole, and the events' raw bytes plus the unfinished rest are
  exactly the bytes fed (the proxy forwards ``raw``, so nothing may be lost or
  duplicated), for valid streams in every line-ending style and for random bytes.
- Reading: each tee (Chat Completions, Completions, Responses, Anthropic
  Messages) and the invisible-signature signer take any event, well-formed or
  mutated, without raising, and the span built from what they read is built
  without raising. (A raising tee is survivable, GuardedTee relays the rest
  unread, but the call's telemetry would be lost.)
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from opentelemetry.sdk.trace import Span, TracerProvider

from proxy.apis import Api
from proxy.apis.anthropic_messages import Messages
from proxy.apis.openai_chat import ChatCompletions
from proxy.apis.openai_completions import Completions
from proxy.apis.openai_responses import Responses
from proxy.record import CallRecord
from proxy.semconv import LATEST, V1_41
from proxy.spans import Outcome, finish_span
from proxy.sse import SseEvent, SseSplitter, parse_event
from proxy.stitching import StreamSigner, TraceIds
from tests.fuzz.otlp_inputs import json_documents
from tests.fuzz.profiles import fuzz_settings

LINE_ENDINGS = ("\n", "\r\n", "\r")
APIS: tuple[Api, ...] = (ChatCompletions(), Completions(), Responses(), Messages())
SIGNED_APIS = ("chat_completions", "messages", "responses")
_TRACER = TracerProvider().get_tracer("fuzz")


def split(stream: bytes, cuts: list[int], max_event_bytes: int | None = None) -> tuple[list[SseEvent], bytes]:
    """The events of ``stream`` fed in pieces cut at ``cuts``, and the bytes left after the last event."""
    splitter = SseSplitter() if max_event_bytes is None else SseSplitter(max_event_bytes)
    events: list[SseEvent] = []
    start = 0
    for cut in [*sorted(cuts), len(stream)]:
        events.extend(splitter.feed(stream[start:cut]))
        start = cut
    events.extend(splitter.finish())
    return events, splitter.rest()


@st.composite
def chunked(draw: st.DrawFn, stream: bytes) -> list[int]:
    """Cut positions in ``stream``: none, a few, or one at every byte."""
    if not stream:
        return []
    mode = draw(st.sampled_from(["few", "every_byte", "none"]))
    if mode == "every_byte":
        return list(range(1, len(stream)))
    if mode == "none":
        return []
    return draw(st.lists(st.integers(0, len(stream)), max_size=12))


_field_text = st.text(alphabet=st.characters(exclude_characters="\r\n", exclude_categories=["Cs"]), max_size=30)


@st.composite
def sse_events(draw: st.DrawFn) -> list[tuple[list[str], str]]:
    """Well-formed events, each as its field lines and the data it carries."""
    events = []
    for _ in range(draw(st.integers(1, 6))):
        lines: list[str] = []
        if draw(st.booleans()):
            lines.append(": " + draw(_field_text))
        name = draw(st.one_of(st.just(""), st.sampled_from(["message_start", "content_block_delta", "ping"])))
        if name:
            lines.append(f"event: {name}")
        data_lines = draw(st.lists(_field_text, min_size=1, max_size=3))
        lines.extend(f"data: {line}" for line in data_lines)
        if draw(st.booleans()):
            lines.append("id: " + draw(_field_text))
        events.append((lines, "\n".join(data_lines)))
    return events


@fuzz_settings(200)
@given(st.data())
def test_valid_streams_split_the_same_at_any_chunk_boundary(data: st.DataObject) -> None:
    events = data.draw(sse_events())
    ending = data.draw(st.sampled_from(LINE_ENDINGS))
    stream = "".join(ending.join(lines) + ending + ending for lines, _ in events).encode()
    whole, whole_rest = split(stream, [])
    pieces, rest = split(stream, data.draw(chunked(stream)))
    assert pieces == whole
    assert rest == whole_rest == b""
    assert [event.data for event in pieces] == [expected for _, expected in events]


@fuzz_settings(300)
@given(st.data())
def test_random_bytes_split_losslessly_and_the_same_at_any_boundary(data: st.DataObject) -> None:
    alphabet = st.sampled_from([b"\r", b"\n", b"\r\n", b"data: ", b"event: x", b":", b"\xff", b"a", b"{}"])
    stream = b"".join(data.draw(st.lists(st.one_of(alphabet, st.binary(max_size=4)), max_size=60)))
    whole, whole_rest = split(stream, [])
    pieces, rest = split(stream, data.draw(chunked(stream)))
    assert b"".join(event.raw for event in pieces) + rest == stream
    assert (pieces, rest) == (whole, whole_rest)


@fuzz_settings(100)
@given(stream=st.binary(max_size=300), cuts=st.lists(st.integers(0, 300), max_size=10), limit=st.integers(1, 64))
def test_an_event_over_the_size_limit_is_let_through_without_loss(stream: bytes, cuts: list[int], limit: int) -> None:
    pieces, rest = split(stream, [c for c in cuts if c <= len(stream)], max_event_bytes=limit)
    assert b"".join(event.raw for event in pieces) + rest == stream


# --- the tees --------------------------------------------------------------------------------------------------------

OPENAI_CHUNK = {
    "id": "chatcmpl-1",
    "object": "chat.completion.chunk",
    "model": "gpt-4o-mini",
    "choices": [
        {
            "index": 0,
            "delta": {
                "content": "Hi",
                "tool_calls": [{"index": 0, "id": "c1", "function": {"name": "f", "arguments": "{}"}}],
            },
            "finish_reason": "stop",
        }
    ],
    "usage": {"prompt_tokens": 3, "completion_tokens": 1, "prompt_tokens_details": {"cached_tokens": 0}},
}
COMPLETION_CHUNK = {"id": "cmpl-1", "model": "gpt-3.5-turbo-instruct", "choices": [{"index": 0, "text": "Hi"}]}
RESPONSES_EVENTS = [
    {"type": "response.created", "response": {"id": "resp_1", "model": "gpt-4o"}},
    {"type": "response.output_text.delta", "delta": "Hi"},
    {
        "type": "response.completed",
        "response": {
            "id": "resp_1",
            "status": "incomplete",
            "incomplete_details": {"reason": "max_output_tokens"},
            "output": [
                {"type": "message", "content": [{"type": "output_text", "text": "Hi"}]},
                {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
                {"type": "reasoning", "summary": [{"text": "hmm"}]},
            ],
            "usage": {"input_tokens": 3, "output_tokens": 1},
        },
    },
]
ANTHROPIC_EVENTS = [
    {"type": "message_start", "message": {"id": "msg_1", "model": "claude", "usage": {"input_tokens": 3}}},
    {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi"}},
    {"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use", "id": "t", "name": "f"}},
    {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "{}"}},
    {"type": "content_block_stop", "index": 0},
    {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 1}},
    {"type": "error", "error": {"type": "overloaded_error"}},
]
TEMPLATES: dict[str, list[Any]] = {
    "chat_completions": [OPENAI_CHUNK, {**OPENAI_CHUNK, "error": {"code": "x"}}],
    "text_completion": [COMPLETION_CHUNK, OPENAI_CHUNK],
    "responses": RESPONSES_EVENTS,
    "messages": ANTHROPIC_EVENTS,
}


def _api_key(api: Api) -> str:
    return "text_completion" if isinstance(api, Completions) else api.name


@st.composite
def mutated_document(draw: st.DrawFn, template: Any) -> Any:
    """``template`` with some of its values (at any depth) replaced by arbitrary JSON."""
    if draw(st.integers(0, 9)) == 0:
        return draw(json_documents)
    if isinstance(template, dict):
        return {key: draw(mutated_document(value)) for key, value in template.items()}
    if isinstance(template, list):
        return [draw(mutated_document(item)) for item in template]
    return template


def _event(document: Any, name: str = "") -> SseEvent:
    data = json.dumps(document)
    head = f"event: {name}\n" if name else ""
    return parse_event(f"{head}data: {data}\n\n".encode())


def read_stream(api: Api, events: list[SseEvent], body: dict[str, Any]) -> None:
    """Feed ``events`` to ``api``'s tee and a signer, then build the span, as the proxy does."""
    for dialect in (V1_41, LATEST):
        record = CallRecord(api.operation, "openai", dialect, capture_content=True, stream=True)
        api.describe_request(body, record)
        tee = api.stream_tee(body, record)
        signer = StreamSigner(api.name, TraceIds(1, 2)) if api.name in SIGNED_APIS else None
        for event in events:
            if signer is not None:
                signer.before(event.event, event.data)
            assert isinstance(tee.on_event(event), bytes)
        span = _TRACER.start_span("fuzz")
        assert isinstance(span, Span)
        finish_span(
            span,
            record,
            Outcome(status_code=200, time_to_first_chunk=0.1, streamed_seconds=1.0),
            api.finish_reason_map(),
        )
        span.end()


@fuzz_settings(250)
@given(api=st.sampled_from(APIS), data=st.data())
def test_tees_read_mutated_events_without_raising(api: Api, data: st.DataObject) -> None:
    templates = TEMPLATES[_api_key(api)]
    documents = [data.draw(mutated_document(t)) for t in templates]
    events = [
        _event(d, d.get("type", "") if isinstance(d, dict) and isinstance(d.get("type"), str) else "")
        for d in documents
    ]
    events.append(parse_event(b"data: [DONE]\n\n"))
    read_stream(api, events, {"model": "m", "stream": True})


@fuzz_settings(150)
@given(api=st.sampled_from(APIS), raw=st.lists(st.binary(max_size=64), max_size=8))
def test_tees_read_random_event_bytes_without_raising(api: Api, raw: list[bytes]) -> None:
    read_stream(api, [parse_event(b"data: " + chunk + b"\n\n") for chunk in raw], {"model": "m", "stream": True})


@fuzz_settings(150)
@given(
    api=st.sampled_from(APIS),
    body=st.dictionaries(
        st.sampled_from(
            [
                "model",
                "messages",
                "input",
                "stream",
                "stream_options",
                "tools",
                "system",
                "prompt",
                "max_tokens",
                "temperature",
                "stop",
                "n",
                "top_k",
            ]
        ),
        json_documents,
        max_size=6,
    ),
)
def test_tees_take_any_request_body(api: Api, body: dict[str, Any]) -> None:
    read_stream(api, [_event(t) for t in TEMPLATES[_api_key(api)]], body)
