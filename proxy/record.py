"""What the proxy learns about one call, from its request and its response, before it becomes a span.

Adapters (one per API, in ``proxy.apis``) fill a ``CallRecord``; ``proxy.spans``
turns it into attributes. Usage follows the conventions: input tokens include
cached ones, output tokens include reasoning ones.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.util.types import AttributeValue

from collector import semconv
from proxy.semconv import Dialect

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1


@dataclass
class Usage:
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_input_tokens: int | None = None
    cache_write_input_tokens: int | None = None
    reasoning_output_tokens: int | None = None
    source: str = "provider"  # or "estimated"

    @property
    def known(self) -> bool:
        return self.input_tokens is not None or self.output_tokens is not None


@dataclass
class OutputChoice:
    """One generated message (a choice or candidate), built whole or from stream deltas."""

    text: list[str] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)
    # tool calls by their position in the message: id, name, argument fragments
    tool_calls: dict[int, dict[str, Any]] = field(default_factory=dict)
    finish_reason: str | None = None

    def add_tool_call_fragment(self, index: int, call_id: Any, name: Any, arguments: Any) -> None:
        """One piece of a tool call; pieces of unexpected types are kept as text, never trusted."""
        call = self.tool_calls.setdefault(index, {"id": None, "name": None, "arguments": []})
        if call_id:
            call["id"] = str(call_id)
        if name:
            call["name"] = str(name)
        if arguments:
            call["arguments"].append(arguments if isinstance(arguments, str) else json.dumps(arguments))


@dataclass
class CallRecord:
    """Request- and response-side facts of one proxied call."""

    operation: str
    provider: str
    dialect: Dialect
    capture_content: bool
    request_model: str | None = None
    stream: bool = False
    attributes: dict[str, AttributeValue] = field(default_factory=dict)
    usage: Usage = field(default_factory=Usage)
    choices: dict[int, OutputChoice] = field(default_factory=dict)
    finish_reasons_raw: list[str] = field(default_factory=list)
    # Opt-in content, already in the conventions' JSON shapes.
    input_messages: list[dict[str, Any]] | None = None
    system_instructions: list[dict[str, Any]] | None = None
    tool_definitions: list[dict[str, Any]] | None = None
    # Text the request sends, for estimating input tokens when the upstream reports none.
    prompt_texts: list[str] = field(default_factory=list)
    # Messages of a prompt in OpenAI's chat format, which adds tokens per message; 0 for other formats.
    prompt_chat_messages: int = 0
    # An error the upstream reported inside a 200 stream (its type or code).
    stream_error: str | None = None

    def choice(self, index: int = 0) -> OutputChoice:
        return self.choices.setdefault(index, OutputChoice())

    def set(self, name: str, value: Any) -> None:
        """Set an attribute when the value is present (not None, not "") and of an attribute type."""
        if value is None or value == "":
            return
        if isinstance(value, bool | str | int | float):
            self.attributes[name] = value
        elif isinstance(value, list | tuple) and value and all(isinstance(v, str) for v in value):
            self.attributes[name] = tuple(value)

    def output_texts(self) -> list[str]:
        """What the reply delivered, each text whole: a streamed text's deltas joined, never counted apart."""
        texts: list[str] = []
        for choice in self.choices.values():
            texts.append("".join(choice.text))
            texts.append("".join(choice.reasoning))
            for call in choice.tool_calls.values():
                texts.append(call["name"] or "")
                texts.append("".join(call["arguments"]))
        return [text for text in texts if text]

    def output_messages(self, finish_reason_map: dict[str, str]) -> list[dict[str, Any]]:
        """Every choice as the conventions' OutputMessage."""
        messages: list[dict[str, Any]] = []
        for index in sorted(self.choices):
            choice = self.choices[index]
            parts: list[dict[str, Any]] = []
            if choice.reasoning:
                parts.append({"type": "reasoning", "content": "".join(choice.reasoning)})
            if choice.text:
                parts.append({"type": "text", "content": "".join(choice.text)})
            for position in sorted(choice.tool_calls):
                call = choice.tool_calls[position]
                parts.append(
                    {
                        "type": "tool_call",
                        "id": call["id"],
                        "name": call["name"],
                        "arguments": parse_arguments("".join(call["arguments"])),
                    }
                )
            message: dict[str, Any] = {"role": "assistant", "parts": parts}
            if self.dialect.finish_reason_in_output_messages:
                raw = reason_text(choice.finish_reason) or "error"
                message["finish_reason"] = finish_reason_map.get(raw, raw)
            messages.append(message)
        return messages


def parse_arguments(text: str) -> Any:
    """Tool-call arguments as an object when they are JSON (the conventions prefer it), else the text."""
    if not text:
        return {}
    try:
        return json.loads(text)
    except ValueError:
        return text


def usage_from_openai(document: Any, record: CallRecord) -> None:
    """Chat/completions usage: prompt_tokens already include cached tokens."""
    if not isinstance(document, dict):
        return
    usage = record.usage
    usage.input_tokens = as_int(document.get("prompt_tokens", document.get("input_tokens")))
    usage.output_tokens = as_int(document.get("completion_tokens", document.get("output_tokens")))
    prompt_details = as_dict(document.get("prompt_tokens_details") or document.get("input_tokens_details"))
    completion_details = as_dict(document.get("completion_tokens_details") or document.get("output_tokens_details"))
    if isinstance(prompt_details, dict):
        usage.cache_read_input_tokens = as_int(prompt_details.get("cached_tokens"))
    if isinstance(completion_details, dict):
        usage.reasoning_output_tokens = as_int(completion_details.get("reasoning_tokens"))
    usage.source = "provider"


def error_kind(error: Any) -> str:
    """The low-cardinality name of a provider error object: its code, else its type."""
    if isinstance(error, dict):
        kind = error.get("code") or error.get("type")
        if isinstance(kind, str) and kind:
            return kind
    return "stream_error"


def provider_error_kind(document: Any) -> str | None:
    """The provider's error type of an error response body (its ``error``'s code, else its type), never its
    message: a provider's message may quote what it was sent, a key's prefix among it."""
    if isinstance(document, dict) and isinstance(document.get("error"), dict):
        error = document["error"]
        kind = error.get("code") or error.get("type")
        return str(kind) if kind else None
    return None


def as_int(value: Any) -> int | None:
    """An integer an OTLP attribute can hold (int64); anything else, or out of range, is None."""
    if isinstance(value, int) and not isinstance(value, bool) and INT64_MIN <= value <= INT64_MAX:
        return value
    return None


def as_list(value: Any) -> list[Any]:
    """``value`` when a provider sent the JSON array expected, else an empty list."""
    return value if isinstance(value, list) else []


def as_dict(value: Any) -> dict[str, Any]:
    """``value`` when a provider sent the JSON object expected, else an empty dict."""
    return value if isinstance(value, dict) else {}


def reason_text(value: Any) -> str | None:
    """A finish reason as sent, when it is the non-empty string it should be."""
    return value if isinstance(value, str) and value else None


def number(value: Any) -> float | None:
    """A JSON number as a float; None for anything else, or an integer too large for one."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return float(value)
        except OverflowError:
            return None
    return None


def stop_sequences(value: Any) -> list[str] | None:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    return None


COMMON_FINISH_REASONS = {"tool_calls": "tool_call", "function_call": "tool_call"}
SERVICE_TIER_AUTO = "auto"


def set_openai_request(record: CallRecord, body: dict[str, Any], max_tokens_keys: tuple[str, ...]) -> None:
    """Request parameters that OpenAI-style APIs share."""
    for key in max_tokens_keys:
        if as_int(body.get(key)) is not None:
            record.set(semconv.REQUEST_MAX_TOKENS, body[key])
            break
    record.set(semconv.REQUEST_TEMPERATURE, number(body.get("temperature")))
    record.set(semconv.REQUEST_TOP_P, number(body.get("top_p")))
    record.set(semconv.REQUEST_FREQUENCY_PENALTY, number(body.get("frequency_penalty")))
    record.set(semconv.REQUEST_PRESENCE_PENALTY, number(body.get("presence_penalty")))
    record.set(semconv.REQUEST_SEED, as_int(body.get("seed")))
    record.set(semconv.REQUEST_STOP_SEQUENCES, stop_sequences(body.get("stop")))
    choice_count = as_int(body.get("n"))
    if choice_count is not None and choice_count != 1:
        record.set(semconv.REQUEST_CHOICE_COUNT, choice_count)
    tier = body.get("service_tier")
    if isinstance(tier, str) and tier != SERVICE_TIER_AUTO:
        record.set(semconv.OPENAI_REQUEST_SERVICE_TIER, tier)


def set_openai_response(record: CallRecord, document: dict[str, Any]) -> None:
    """Response fields that OpenAI-style APIs share."""
    record.set(semconv.RESPONSE_ID, document.get("id"))
    record.set(semconv.RESPONSE_MODEL, document.get("model"))
    record.set(semconv.OPENAI_RESPONSE_SERVICE_TIER, document.get("service_tier"))
    record.set(semconv.OPENAI_RESPONSE_SYSTEM_FINGERPRINT, document.get("system_fingerprint"))
