"""Streamed events of unexpected shape: the tees and the signer read them without raising, spans still build.

Regression inputs the fuzzers in tests/fuzz/test_sse.py found.
"""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry.sdk.trace import Span, TracerProvider

from proxy.apis import Api
from proxy.apis.anthropic_messages import Messages
from proxy.apis.openai_chat import ChatCompletions
from proxy.apis.openai_completions import Completions
from proxy.apis.openai_responses import Responses
from proxy.record import CallRecord, as_int
from proxy.semconv import LATEST
from proxy.spans import Outcome, finish_span
from proxy.sse import SseSplitter, parse_event
from proxy.stitching import StreamSigner, TraceIds

HOSTILE: list[tuple[Api, str]] = [
    (ChatCompletions(), '{"choices": [{"delta": "text", "finish_reason": "stop"}]}'),
    (ChatCompletions(), '{"choices": [{"delta": {"tool_calls": 5}, "finish_reason": ["stop"]}]}'),
    (ChatCompletions(), '{"choices": 7, "usage": {"prompt_tokens": 1e400, "completion_tokens_details": []}}'),
    (ChatCompletions(), '{"choices": [{"index": [], "finish_reason": "stop", "delta": {}}]}'),
    (Completions(), '{"choices": [{"text": "a", "finish_reason": {"x": 1}}]}'),
    (Responses(), '{"type": "response.completed", "response": {"status": "incomplete", "incomplete_details": 3}}'),
    (Responses(), '{"type": "response.completed", "response": {"output": {"a": 1}, "usage": []}}'),
    (Messages(), '{"type": "content_block_start", "index": 1, "content_block": [null]}'),
    (Messages(), '{"type": "content_block_stop", "index": []}'),
    (Messages(), '{"type": "message_delta", "delta": null, "usage": {"output_tokens": ' + "9" * 40 + "}}"),
]


@pytest.mark.parametrize(("api", "data"), HOSTILE)
def test_a_hostile_event_is_read_and_the_span_still_builds(api: Api, data: str) -> None:
    record = CallRecord(api.operation, "openai", LATEST, capture_content=True, stream=True)
    body: dict[str, Any] = {"model": "m", "stream": True}
    tee = api.stream_tee(body, record)
    signer = StreamSigner(api.name, TraceIds(1, 2))
    event = parse_event(f"data: {data}\n\n".encode())
    signer.before(event.event, event.data)
    assert tee.on_event(event) == event.raw
    span = TracerProvider().get_tracer("test").start_span("s")
    assert isinstance(span, Span)
    finish_span(span, record, Outcome(status_code=200, time_to_first_chunk=0.1, streamed_seconds=1.0), {})
    span.end()


def test_a_request_with_a_number_too_large_for_a_float_is_described() -> None:
    record = CallRecord("chat", "openai", LATEST, capture_content=True)
    ChatCompletions().describe_request({"model": "m", "temperature": 10**400, "top_p": 0.5}, record)
    assert "gen_ai.request.temperature" not in record.attributes
    assert record.attributes["gen_ai.request.top_p"] == 0.5


def test_a_token_count_beyond_int64_is_not_an_attribute() -> None:
    assert as_int(2**63) is None
    assert as_int(2**63 - 1) == 2**63 - 1
    assert as_int(True) is None


def test_an_event_ending_in_cr_cr_is_complete_when_the_stream_ends() -> None:
    splitter = SseSplitter()
    assert list(splitter.feed(b"data: a\r\rdata: b\r\r")) == [parse_event(b"data: a\r\r")]
    assert list(splitter.finish()) == [parse_event(b"data: b\r\r")]
    assert splitter.rest() == b""


def test_finish_keeps_an_unterminated_event_as_the_rest() -> None:
    splitter = SseSplitter()
    assert list(splitter.feed(b"data: a\r")) == []
    assert list(splitter.finish()) == []
    assert splitter.rest() == b"data: a\r"
