"""GenAI events (log records) of every convention version, mapped onto the newest conventions' names and shapes.

What changed over the versions, and what is done with it:

- The event's name: an ``event.name`` attribute before OTLP's ``LogRecord.event_name`` field
  existed becomes that field.
- Attribute names: the same rules as for spans (``dialects.normalize``: ``gen_ai.system`` →
  ``gen_ai.provider.name`` with the provider's current value, the deprecated usage names...).
- Up to semantic-conventions v1.36.0 an instrumentation sent one event per message, its content
  in the body: ``gen_ai.system.message``, ``gen_ai.user.message``, ``gen_ai.assistant.message``,
  ``gen_ai.tool.message`` (``{content, role?, tool_calls?, id?}``) and ``gen_ai.choice``
  (``{index, finish_reason, message: {role?, content?, tool_calls?}}``). The newest conventions
  have one event per call, ``gen_ai.client.inference.operation.details``, whose messages are
  ``gen_ai.input.messages`` / ``gen_ai.output.messages`` / ``gen_ai.system_instructions`` in
  structured form. Each per-message event gets its message in that shape under the attribute
  the newest conventions give it (the choice as an output message, the others, the system
  message included, as input messages), so whoever reads content reads one shape (the Read API's content join reads
  older events through ``event_content`` too); the body keys this consumed are
  removed unless ``keep_original``, keys no rule knows (the choice's ``index``) stay.

  The per-message events are not merged into one ``operation.details`` event: the messages of a
  call arrive as separate records that an SDK's batching and the pipeline's batches can cut
  apart, so a merge would have to hold records across batches (acknowledged, not yet exported:
  lost to a crash), and the merged event would still lack what that event requires and the
  per-message events never carried (``gen_ai.operation.name``, the model, the usage), which is on
  the call's span. The store joins content events to their span by trace and span id instead.
- Content attributes an event carries as JSON text (the form spans may use) become the
  structured form the conventions require on events.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from collector.jsonvalues import dump_json, parse_json
from collector.pdata import SpanAttributes, any_value, set_any_value
from processors.genai_normalize.dialects import needs_normalizing, normalize, openllmetry_message
from processors.genai_normalize.normalization import (
    INPUT_MESSAGES,
    OUTPUT_MESSAGES,
    SYSTEM_INSTRUCTIONS,
    TOOL_DEFINITIONS,
    Normalization,
)

EVENT_NAME_ATTRIBUTE = "event.name"
INFERENCE_DETAILS_EVENT = "gen_ai.client.inference.operation.details"
SYSTEM_MESSAGE_EVENT = "gen_ai.system.message"
USER_MESSAGE_EVENT = "gen_ai.user.message"
ASSISTANT_MESSAGE_EVENT = "gen_ai.assistant.message"
TOOL_MESSAGE_EVENT = "gen_ai.tool.message"
CHOICE_EVENT = "gen_ai.choice"
# The per-message events of semantic-conventions up to v1.36.0, and the role of the message each carries.
MESSAGE_EVENT_ROLES: dict[str, str] = {
    SYSTEM_MESSAGE_EVENT: "system",
    USER_MESSAGE_EVENT: "user",
    ASSISTANT_MESSAGE_EVENT: "assistant",
    TOOL_MESSAGE_EVENT: "tool",
    CHOICE_EVENT: "assistant",
}
# Attributes whose value an event must carry structured (a list of maps), not as JSON text.
STRUCTURED_ATTRIBUTES = (INPUT_MESSAGES, OUTPUT_MESSAGES, SYSTEM_INSTRUCTIONS, TOOL_DEFINITIONS)
_CHOICE_MESSAGE = "message"
# The body keys a per-message event's message is read from (removed once it is an attribute, unless keep_original).
_MESSAGE_KEYS = frozenset({"content", "role", "tool_calls", "id"})
_CHOICE_KEYS = frozenset({_CHOICE_MESSAGE, "finish_reason"})


def record_attributes(record: LogRecord) -> SpanAttributes:
    """A log record's attributes by key, read and edited in place as a span's are.

    ``SpanAttributes`` reads and writes nothing of its span but ``attributes``, which a log record
    has in the same shape (a repeated KeyValue).
    """
    return SpanAttributes(cast(Span, record))


def event_name(record: LogRecord) -> str:
    """The record's event name: the OTLP field, else the attribute that carried it before the field existed."""
    if record.event_name:
        return record.event_name
    for pair in record.attributes:
        if pair.key == EVENT_NAME_ATTRIBUTE and pair.value.WhichOneof("value") == "string_value":
            return pair.value.string_value
    return ""


def normalize_record(record: LogRecord, keep_original: bool) -> None:
    """Map one log record forward (see the module's docstring); a record that is no GenAI event is left alone."""
    name = event_name(record)
    attributes = record_attributes(record)
    consumed: set[str] = set()
    if name and not record.event_name:
        record.event_name = name
        consumed.add(EVENT_NAME_ATTRIBUTE)
    keys = frozenset(attributes.keys())
    if needs_normalizing(keys, ""):
        normalization = Normalization(attributes, "", keep_original)
        normalize(normalization, keys)
        consumed |= normalization.consumed
    if name in MESSAGE_EVENT_ROLES:
        _message_event(record, name, attributes, keep_original)
    if name.startswith("gen_ai."):
        _structured(attributes)
    if consumed and not keep_original:
        attributes.remove(consumed)


def _message_event(record: LogRecord, name: str, attributes: SpanAttributes, keep_original: bool) -> None:
    """A per-message event's body as the newest conventions' message, under the attribute they give it."""
    body = any_value(record.body)
    if not isinstance(body, dict):
        return
    target, value = event_content(name, body)
    if target in attributes:
        return  # the instrumentation wrote the newest form itself: the body is left as it came
    attributes.set(target, value)
    if not keep_original:
        _remove_body_keys(record, _CHOICE_KEYS if name == CHOICE_EVENT else _MESSAGE_KEYS)


def event_content(name: str, body: Mapping[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    """What an older per-message event's body holds (``name`` one of MESSAGE_EVENT_ROLES), as the newest
    conventions' attribute and its value: the choice as ``gen_ai.output.messages``, the others as
    ``gen_ai.input.messages``, one message each. The system message stays an input message with its role, as
    the same instrumentation records it in the newest conventions (a chat API's system message is part of the
    history it is sent; ``gen_ai.system_instructions`` is for instructions an API takes apart from it)."""
    if name == CHOICE_EVENT:
        inner = body.get(_CHOICE_MESSAGE)
        fields = _fields(inner if isinstance(inner, dict) else {}, MESSAGE_EVENT_ROLES[name])
        fields["finish_reason"] = body.get("finish_reason")
        return OUTPUT_MESSAGES, [_without_nulls(openllmetry_message(fields, output=True))]
    return INPUT_MESSAGES, [_without_nulls(openllmetry_message(_fields(body, MESSAGE_EVENT_ROLES[name])))]


def _fields(message: Mapping[str, Any], role: str) -> dict[str, Any]:
    """A message of an older event as the flat fields ``openllmetry_message`` reads."""
    fields: dict[str, Any] = {"role": message.get("role") or role}
    content = message.get("content")
    if isinstance(content, list | dict):
        content = dump_json(content)  # an OpenAI content array: parsed into parts there
    if content is not None:
        fields["content"] = content
    if message.get("id") is not None:
        fields["tool_call_id"] = message["id"]
    calls = message.get("tool_calls")
    for index, call in enumerate(calls if isinstance(calls, list) else []):
        if not isinstance(call, dict):
            continue
        function = call.get("function")
        if not isinstance(function, dict):
            function = {}
        fields[f"tool_calls.{index}.id"] = call.get("id")
        fields[f"tool_calls.{index}.name"] = function.get("name")
        fields[f"tool_calls.{index}.arguments"] = function.get("arguments")
    return fields


def _without_nulls(value: Any) -> Any:
    """``value`` without the map entries that hold nothing (a tool result with no call id)."""
    if isinstance(value, dict):
        return {key: _without_nulls(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [_without_nulls(item) for item in value]
    return value


def _remove_body_keys(record: LogRecord, keys: frozenset[str]) -> None:
    if record.body.WhichOneof("value") != "kvlist_value":
        return
    pairs = record.body.kvlist_value.values
    for index in range(len(pairs) - 1, -1, -1):
        if pairs[index].key in keys:
            del pairs[index]
    if not pairs:
        record.ClearField("body")


def _structured(attributes: SpanAttributes) -> None:
    """Content attributes an event holds as JSON text, in the structured form events must use."""
    for key in STRUCTURED_ATTRIBUTES:
        pair = attributes.pair(key)
        if pair is None or pair.value.WhichOneof("value") != "string_value":
            continue
        document = parse_json(pair.value.string_value)
        if isinstance(document, list):
            pair.ClearField("value")
            set_any_value(pair.value, document)
