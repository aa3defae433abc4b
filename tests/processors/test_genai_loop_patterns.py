"""The loop detector's building blocks: cycle and near-identical-request shapes, and span facts."""

from __future__ import annotations

import json

from opentelemetry.proto.trace.v1.trace_pb2 import Span

from collector.pdata import set_any_value
from processors.genai_loop_detection.facts import canonical_arguments, message_hash, span_facts
from processors.genai_loop_detection.patterns import cycle_at_end, near_identical, times_repeated
from processors.span_view import SpanView


def test_cycle_at_end_finds_the_shortest_repeated_block() -> None:
    assert cycle_at_end([9, 1, 2, 1, 2, 1, 2], max_length=4, repetitions=3) == 2
    assert cycle_at_end([1, 2, 3, 1, 2, 3, 1, 2, 3], max_length=4, repetitions=3) == 3
    assert cycle_at_end([1, 2, 1, 2], max_length=4, repetitions=3) is None  # two repetitions only
    assert cycle_at_end([1, 1, 1, 1, 1, 1], max_length=4, repetitions=3) is None  # one step repeated: not a cycle
    assert cycle_at_end([1, 2, 3, 4, 5, 1, 2, 3, 4, 5], max_length=4, repetitions=2) is None  # block too long
    assert cycle_at_end([1, 2, 1, 2, 1, 3], max_length=4, repetitions=3) is None  # the end breaks it


def test_times_repeated_counts_back_from_the_end() -> None:
    assert times_repeated([5, 1, 2, 1, 2, 1, 2], 2) == 3
    assert times_repeated([1, 2, 1, 2], 2) == 2


def test_near_identical_requests() -> None:
    assert near_identical((1, 2), (1, 2))  # sent again unchanged
    assert near_identical((1, 2, 3), (1, 2, 3, 2, 3))  # only repeats appended
    assert near_identical((1, 2, 3), (1, 2, 1))  # newest turn replaced by an earlier one
    assert not near_identical((1, 2), (1, 2, 4))  # something new
    assert not near_identical((1, 2, 3), (1, 5, 3))  # history changed
    assert not near_identical(None, (1,)) and not near_identical((1,), ())


def test_arguments_are_canonical_whether_text_or_object() -> None:
    assert canonical_arguments('{"b": 2, "a": [1, {"d": 1, "c": 0}]}') == canonical_arguments(
        {"a": [1, {"c": 0, "d": 1}], "b": 2}
    )
    assert canonical_arguments("not json ") == "not json"
    assert canonical_arguments(None) == ""


def test_message_hashes_ignore_tool_call_ids_and_argument_encoding() -> None:
    asked = {"role": "assistant", "parts": [{"type": "tool_call", "id": "call_1", "name": "f", "arguments": {"x": 1}}]}
    again = {"role": "assistant", "parts": [{"type": "tool_call", "id": "call_2", "name": "f", "arguments": '{"x":1}'}]}
    other = {"role": "assistant", "parts": [{"type": "tool_call", "id": "call_3", "name": "f", "arguments": {"x": 2}}]}
    assert message_hash(asked) == message_hash(again) != message_hash(other)


def _span(attributes: dict[str, object]) -> SpanView:
    span = Span(span_id=b"\x01" * 8, start_time_unix_nano=10, end_time_unix_nano=2_000_000_010)
    for key, value in attributes.items():
        pair = span.attributes.add()
        pair.key = key
        set_any_value(pair.value, value)
    return SpanView(span)


def test_span_facts_of_llm_and_tool_spans_and_none_for_others() -> None:
    outputs = [{"role": "assistant", "parts": [{"type": "tool_call", "id": "c1", "name": "f", "arguments": {"q": 1}}]}]
    inputs = [{"role": "tool", "parts": [{"type": "tool_call_response", "id": "c0", "response": "ok"}]}]
    llm = span_facts(
        _span(
            {
                "gen_ai.operation.name": "chat",
                "gen_ai.request.model": "gpt-4o",
                "gen_ai.usage.input_tokens": 7,
                "gen_ai.usage.output_tokens": 3,
                "gen_ai.usage.cost": 0.5,
                "gen_ai.input.messages": json.dumps(inputs),
                "gen_ai.output.messages": json.dumps(outputs),
            }
        )
    )
    assert llm is not None and llm.kind == "llm" and (llm.tokens, llm.cost, llm.duration_seconds) == (10, 0.5, 2.0)
    assert [call.describe() for call in llm.requested_calls] == ['f({"q":1})']
    assert llm.responded_call_ids == {"c0"} and llm.input_hashes is not None and len(llm.input_hashes) == 1
    unrecorded = [span_facts(_span({"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "f"})) for _ in "ab"]
    calls = [facts.tool_call for facts in unrecorded if facts is not None and facts.tool_call is not None]
    # Arguments not recorded: two calls cannot be told to be the same, so they never count as repeats.
    assert [call.arguments for call in calls] == [None, None] and calls[0].key != calls[1].key
    assert span_facts(_span({"http.method": "GET"})) is None
    assert span_facts(_span({"gen_ai.operation.name": "embeddings"})) is None
