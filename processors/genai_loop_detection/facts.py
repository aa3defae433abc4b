"""What one span says about an agent's progress: an LLM call, a tool call or an agent run, reduced to facts.

The detectors never look at spans again: each GenAI span is read once into a
small ``SpanFacts`` (kind, timing, model, tokens, cost, the tool call it made
or the tool calls its response asked for, and hashes of its input messages),
and only those are held in memory while the trace or conversation is open.
Message hashes ignore tool call ids, which differ on every call even when the
agent repeats itself.
"""

from __future__ import annotations

import itertools
import json
import sys
from collections.abc import Hashable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

import orjson
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from collector import semconv
from collector.jsonvalues import parse_json
from collector.pdata import any_value
from processors.genai_loop_detection.history import InputHistory

_COST_NAMES = semconv.spellings(semconv.USAGE_COST_AMOUNT)
_WANTED = frozenset(
    {
        semconv.OPERATION_NAME,
        semconv.CONVERSATION_ID,
        semconv.PROVIDER_NAME,
        semconv.REQUEST_MODEL,
        semconv.RESPONSE_MODEL,
        semconv.USAGE_INPUT_TOKENS,
        semconv.USAGE_OUTPUT_TOKENS,
        *_COST_NAMES,
        semconv.TOOL_NAME,
        semconv.TOOL_CALL_ID,
        semconv.TOOL_CALL_ARGUMENTS,
        semconv.INPUT_MESSAGES,
        semconv.OUTPUT_MESSAGES,
        semconv.ERROR_TYPE,
        semconv.CALL_DUPLICATE_OF,
    }
)

Kind = Literal["llm", "tool", "agent"]
MAX_CACHED_CHARS = 4096  # arguments longer than this are canonicalised each time, never held in the cache
NO_IDS: frozenset[str] = frozenset()
SPAN_ID_BYTES = 8


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One call of a tool: its name, its arguments as canonical JSON (sorted keys), its id when known."""

    name: str
    arguments: str | None  # None: not recorded (content capture off), so never the same as another call
    call_id: str | None
    key: tuple[str, str] = field(init=False)  # equal keys are the same call repeated

    def __post_init__(self) -> None:
        arguments = self.arguments if self.arguments is not None else f"\0unrecorded {next(_unrecorded)}"
        object.__setattr__(self, "key", (self.name, arguments))

    def describe(self) -> str:
        return f"{self.name}({self.arguments if self.arguments is not None else '?'})"


_unrecorded = itertools.count()
_unreadable = itertools.count()


@dataclass(slots=True)
class SpanFacts:
    span_id: bytes
    start: int
    end: int
    kind: Kind
    conversation_id: str | None
    provider: str
    model: str
    operation: str
    tokens: int
    cost: float
    error: bool
    tool_call: ToolCall | None  # the call a tool span made
    requested_calls: tuple[ToolCall, ...]  # the calls an LLM response asked for
    input_hashes: tuple[int, ...] | None  # an LLM call's input messages, None when content was not recorded
    output_hashes: tuple[int, ...]  # an LLM call's output messages
    responded_call_ids: frozenset[str]  # tool results first seen in an LLM call's input (released once recorded)
    has_messages: bool  # an LLM call's input or output messages were recorded
    duplicate_of: bytes | None  # an LLM span marked the second record of a call: the span id of the one counted

    def release_responded_ids(self) -> None:
        """Drop the tool result ids once every scope's run has recorded them (never before: each needs them)."""
        self.responded_call_ids = NO_IDS

    @property
    def duration_seconds(self) -> float:
        return max(self.end - self.start, 0) / 1e9


def span_facts(span: Span, history: InputHistory | None = None) -> SpanFacts | None:
    """The facts of a GenAI LLM, tool or agent span; None for every other span.

    The second record of a call (``gen_ai.call.duplicate_of``) is no step: None, unless it is an LLM call's, which
    can stand in for a record that counts but carries no messages (``duplicate_of`` says which).
    ``history`` spares rehashing the messages an LLM call shares with the trace's previous one.
    """
    values: dict[str, AnyValue] = {}
    for pair in span.attributes:
        key = pair.key
        if key in _WANTED:
            values[key] = pair.value
    operation_value = values.get(semconv.OPERATION_NAME)
    kind = _KINDS.get(operation_value.string_value) if operation_value is not None else None
    if kind is None:
        return None  # not a step of an agent
    duplicate_of = _span_id(values.get(semconv.CALL_DUPLICATE_OF))
    if semconv.CALL_DUPLICATE_OF in values and (kind != "llm" or duplicate_of is None):
        return None  # the second record of a call already counted as a step

    def text(key: str) -> str:
        value = values.get(key)
        return value.string_value if value is not None else ""

    tool_call = None
    input_hashes: tuple[int, ...] | None = None
    output_hashes: tuple[int, ...] = ()
    requested: tuple[ToolCall, ...] = ()
    responded = NO_IDS
    if kind == "tool":
        call_id = text(semconv.TOOL_CALL_ID)
        arguments = values.get(semconv.TOOL_CALL_ARGUMENTS)
        tool_call = ToolCall(
            sys.intern(text(semconv.TOOL_NAME) or span.name),
            canonical_arguments(any_value(arguments)) if arguments is not None else None,
            call_id or None,
        )
    elif kind == "llm":
        input_text = text(semconv.INPUT_MESSAGES)
        input_hashes, responded = _read_inputs(span.trace_id, input_text, history)
        outputs = text(semconv.OUTPUT_MESSAGES)
        if '"tool_call"' in outputs:  # only an output asking for tool calls is needed: most final answers are not
            output_hashes, requested = _read_outputs(parse_json(outputs))
    return SpanFacts(
        span.span_id,
        span.start_time_unix_nano,
        span.end_time_unix_nano,
        kind,
        text(semconv.CONVERSATION_ID) or None,
        # Interned: thousands of held calls name the same few providers and models.
        sys.intern(text(semconv.PROVIDER_NAME)),
        sys.intern(text(semconv.RESPONSE_MODEL) or text(semconv.REQUEST_MODEL)),
        sys.intern(operation_value.string_value),  # type: ignore[union-attr]  # kind is set: it is there
        int(_number(values.get(semconv.USAGE_INPUT_TOKENS)) + _number(values.get(semconv.USAGE_OUTPUT_TOKENS))),
        float(next((_number(values[name]) for name in _COST_NAMES if name in values), 0)),
        span.status.code == Status.STATUS_CODE_ERROR or semconv.ERROR_TYPE in values,
        tool_call,
        requested,
        input_hashes,
        output_hashes,
        responded,
        semconv.INPUT_MESSAGES in values or semconv.OUTPUT_MESSAGES in values,
        duplicate_of,
    )


def _span_id(value: AnyValue | None) -> bytes | None:
    """A span id written in hex (as gen_ai.call.duplicate_of holds it); None when it is not one."""
    if value is None:
        return None
    try:
        span_id = bytes.fromhex(value.string_value)
    except ValueError:
        return None
    return span_id if len(span_id) == SPAN_ID_BYTES else None


# Embeddings are calls to a model but no step of an agent's reasoning; invocations (agents, workflows,
# conversation turns) enclose the steps.
_KINDS: dict[str, Kind] = {
    **{operation: "llm" for operation in semconv.INFERENCE_OPERATIONS},
    semconv.EXECUTE_TOOL: "tool",
    **{operation: "agent" for operation in semconv.INVOCATION_OPERATIONS},
}


def _read_inputs(
    trace_id: bytes, text: str, history: InputHistory | None
) -> tuple[tuple[int, ...] | None, frozenset[str]]:
    """An LLM call's input messages as hashes, and the ids of the tool results among the ones not seen before."""
    known, rest = history.known_prefix(trace_id, text) if history is not None else ((), text)
    messages = parse_json(rest)
    if not isinstance(messages, list):
        return (known or None), NO_IDS
    hashes = known + tuple(message_hash(message) for message in messages)
    if not hashes:
        return None, NO_IDS
    if history is not None:
        history.remember(trace_id, text, hashes)
    responded: list[str] = []
    for message in messages:
        for part in _message_parts(message):
            if part.get("type") == "tool_call_response" and part.get("id"):
                responded.append(str(part["id"]))
    return hashes, frozenset(responded) if responded else NO_IDS


def _read_outputs(messages: Any) -> tuple[tuple[int, ...], tuple[ToolCall, ...]]:
    """The tool calls an LLM call's output asks for, and the output messages as hashes when it asks for any."""
    if not isinstance(messages, list):
        return (), ()
    calls: list[ToolCall] = []
    for message in messages:
        for part in _message_parts(message):
            if part.get("type") == "tool_call":
                call_id = part.get("id")
                name = sys.intern(str(part.get("name", "")))
                arguments = canonical_arguments(part["arguments"]) if "arguments" in part else None
                calls.append(ToolCall(name, arguments, str(call_id) if call_id else None))
    if not calls:
        return (), ()  # the hashes serve to find a later request carrying these asks: no asks, no need
    return tuple(message_hash(message) for message in messages), tuple(calls)


def _message_parts(message: Any) -> list[dict[str, Any]]:
    parts = message.get("parts") if isinstance(message, dict) else None
    return [part for part in parts if isinstance(part, dict)] if isinstance(parts, list) else []


def _number(value: AnyValue | None) -> int | float:
    if value is None:
        return 0
    which = value.WhichOneof("value")
    return value.int_value if which == "int_value" else value.double_value if which == "double_value" else 0


def canonical_arguments(value: Any) -> str:
    """Tool arguments as JSON with sorted keys, whether they came as an object or as JSON text."""
    if isinstance(value, str):
        return _canonical_text(value)
    if value is None:
        return ""
    return _sorted_json(value)


def _canonical_text(text: str) -> str:
    # Short texts (nearly all arguments) are cached: a conversation carries every earlier call again.
    return _canonical_short(text) if len(text) <= MAX_CACHED_CHARS else _canonical(text)


@lru_cache(maxsize=4096)
def _canonical_short(text: str) -> str:
    return _canonical(text)


def _canonical(text: str) -> str:
    if text.lstrip()[:1] in ("{", "["):
        parsed = parse_json(text)
        if parsed is not None:
            return _sorted_json(parsed)
    return text.strip()


def _sorted_json(value: Any) -> str:
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    except TypeError:  # what orjson refuses (lone surrogates, huge integers, nesting past 255 levels)
        pass
    try:
        return json.dumps(value, sort_keys=True, default=repr)
    except (RecursionError, ValueError, TypeError):
        # Nested past what JSON writes: such arguments are never taken for a repeat of anything.
        return f"<unreadable {type(value).__name__} {next(_unreadable)}>"


def message_hash(message: Any) -> int:
    """A hash of a message's role and parts, tool call ids left out."""
    if not isinstance(message, dict):
        return hash(canonical_arguments(message))
    parts = message.get("parts")
    return hash((str(message.get("role")), tuple(_part_key(part) for part in parts) if isinstance(parts, list) else ()))


def _part_key(part: Any) -> Hashable:
    """What a part says, without its id; arguments and results as canonical JSON however they were encoded."""
    if not isinstance(part, dict):
        return canonical_arguments(part)
    kind = part.get("type")
    if kind == "text" or kind == "reasoning":
        content = part.get("content")
        if isinstance(content, str):
            return (kind, content)
    elif kind == "tool_call":
        return (kind, str(part.get("name")), canonical_arguments(part.get("arguments")))
    elif kind == "tool_call_response":
        return (kind, canonical_arguments(part.get("response")))
    return canonical_arguments({key: value for key, value in part.items() if key != "id"})
