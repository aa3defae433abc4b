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
from typing import Any, Literal, cast

import orjson
from opentelemetry.proto.trace.v1.trace_pb2 import Status

from collector import semconv
from collector.jsonvalues import parse_json
from processors.message_history import MessageHistory, unseen_messages
from processors.span_view import SpanView

# Per trace: the hashes of the latest LLM request's input messages.
InputHistory = MessageHistory[tuple[int, ...]]

_COST_NAMES = semconv.spellings(semconv.USAGE_COST_AMOUNT)

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


def span_facts(view: SpanView, history: InputHistory | None = None) -> SpanFacts | None:
    """The facts of a GenAI LLM, tool or agent span; None for every other span.

    The second record of a call (``gen_ai.call.duplicate_of``) is no step: None, unless it is an LLM call's, which
    can stand in for a record that counts but carries no messages (``duplicate_of`` says which).
    ``history`` spares rehashing the messages an LLM call shares with the trace's previous one.
    """
    texts = view.texts  # every attribute's key, each with its string value or ""
    operation = texts.get(semconv.OPERATION_NAME)
    kind = _KINDS.get(operation) if operation else None
    if kind is None:
        return None  # not a step of an agent
    duplicate_of = None
    if semconv.CALL_DUPLICATE_OF in texts:
        duplicate_of = _span_id(texts[semconv.CALL_DUPLICATE_OF])
        if kind != "llm" or duplicate_of is None:
            return None  # the second record of a call already counted as a step
    span = view.span
    tool_call = None
    input_hashes: tuple[int, ...] | None = None
    output_hashes: tuple[int, ...] = ()
    requested: tuple[ToolCall, ...] = ()
    responded = NO_IDS
    if kind == "tool":
        arguments = None
        if semconv.TOOL_CALL_ARGUMENTS in texts:
            # Most often JSON text; else whatever else the attribute holds (an object sent as a key-value list).
            written = texts[semconv.TOOL_CALL_ARGUMENTS] or view.get(semconv.TOOL_CALL_ARGUMENTS)
            arguments = canonical_arguments(written)
        tool_call = ToolCall(
            sys.intern(texts.get(semconv.TOOL_NAME) or span.name), arguments, texts.get(semconv.TOOL_CALL_ID) or None
        )
    elif kind == "llm":
        input_hashes, responded = _read_inputs(span.trace_id, view, history)
        # Only an output asking for tool calls is needed (most final answers are not).
        if '"tool_call"' in texts.get(semconv.OUTPUT_MESSAGES, ""):
            output_hashes, requested = _read_outputs(view.document(semconv.OUTPUT_MESSAGES))
    scalars = view.scalars
    return SpanFacts(
        span.span_id,
        span.start_time_unix_nano,
        span.end_time_unix_nano,
        kind,
        texts.get(semconv.CONVERSATION_ID) or None,
        # Interned: thousands of held calls name the same few providers and models.
        sys.intern(texts.get(semconv.PROVIDER_NAME, "")),
        sys.intern(texts.get(semconv.RESPONSE_MODEL) or texts.get(semconv.REQUEST_MODEL) or ""),
        sys.intern(operation),  # type: ignore[arg-type]  # kind is set: it is a string
        int(_number(scalars.get(semconv.USAGE_INPUT_TOKENS)) + _number(scalars.get(semconv.USAGE_OUTPUT_TOKENS))),
        float(next((_number(scalars.get(name)) for name in _COST_NAMES if name in texts), 0)),
        span.status.code == Status.STATUS_CODE_ERROR or semconv.ERROR_TYPE in texts,
        tool_call,
        requested,
        input_hashes,
        output_hashes,
        responded,
        semconv.INPUT_MESSAGES in texts or semconv.OUTPUT_MESSAGES in texts,
        duplicate_of,
    )


def _span_id(text: str) -> bytes | None:
    """A span id written in hex (as gen_ai.call.duplicate_of holds it); None when it is not one."""
    try:
        span_id = bytes.fromhex(text)
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
    trace_id: bytes, view: SpanView, history: InputHistory | None
) -> tuple[tuple[int, ...] | None, frozenset[str]]:
    """An LLM call's input messages as hashes, and the ids of the tool results among the ones not seen before."""
    prefix = history.known_prefix(trace_id, view) if history is not None else None
    known, length = prefix if prefix is not None else ((), 0)
    if known and not view.is_parsed(semconv.INPUT_MESSAGES):
        messages = parse_json(unseen_messages(view.text(semconv.INPUT_MESSAGES), length))  # only what is new
    else:  # parsed once for every reader (genai_security reads every message); the known ones are skipped
        document = view.document(semconv.INPUT_MESSAGES)
        messages = document[len(known) :] if isinstance(document, list) else None
    if not isinstance(messages, list):
        return (known or None), NO_IDS
    hashes = known + tuple(message_hash(message) for message in messages)
    if not hashes:
        return None, NO_IDS
    if history is not None:
        history.remember(trace_id, view, hashes)
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
    hashes: list[int] = []
    for message in messages:
        if not isinstance(message, dict) or not isinstance(parts := message.get("parts"), list):
            hashes.append(message_hash(message))
            continue
        keys = []
        for part in parts:
            key = _part_key(part)  # its arguments made canonical once, for the hash and for the call alike
            keys.append(key)
            if isinstance(part, dict) and part.get("type") == "tool_call":
                # A tool call's key is (type, name, canonical arguments).
                arguments = cast(tuple[str, str, str], key)[2] if "arguments" in part else None
                call_id = part.get("id")
                name = sys.intern(str(part.get("name", "")))
                calls.append(ToolCall(name, arguments, str(call_id) if call_id else None))
        hashes.append(_hash_of(message, keys))
    if not calls:
        return (), ()  # the hashes serve to find a later request carrying these asks: no asks, no need
    return tuple(hashes), tuple(calls)


def _message_parts(message: Any) -> list[dict[str, Any]]:
    parts = message.get("parts") if isinstance(message, dict) else None
    return [part for part in parts if isinstance(part, dict)] if isinstance(parts, list) else []


def _number(value: object) -> int | float:
    """A number as an attribute holds one (an int or a double); 0 for anything else, booleans included."""
    return value if isinstance(value, int | float) and not isinstance(value, bool) else 0


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
    return _hash_of(message, [_part_key(part) for part in parts] if isinstance(parts, list) else [])


def _hash_of(message: dict[str, Any], part_keys: list[Hashable]) -> int:
    return hash((str(message.get("role")), tuple(part_keys)))


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
