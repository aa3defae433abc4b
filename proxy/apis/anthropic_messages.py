"""Anthropic Messages (POST /v1/messages) and token counting (POST /v1/messages/count_tokens).

Anthropic reports cache reads and cache writes apart from ``input_tokens``; the
conventions' input token count is their sum. Streams carry usage in
``message_start`` (input side) and ``message_delta`` (output side, cumulative).
"""

from __future__ import annotations

import json
from typing import Any

from collector import semconv
from proxy.apis import event_json, media_part, text_part
from proxy.apis.token_count import TokenCount
from proxy.errors import ApiFamily
from proxy.record import CallRecord, as_dict, as_int, as_list, error_kind, number, stop_sequences
from proxy.sse import SseEvent

FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_call",
    "refusal": "content_filter",
}


class Messages:
    name = "messages"
    family: ApiFamily = "anthropic"
    operation = semconv.CHAT

    def describe_request(self, body: dict[str, Any], record: CallRecord) -> None:
        record.set(semconv.REQUEST_MAX_TOKENS, as_int(body.get("max_tokens")))
        record.set(semconv.REQUEST_TEMPERATURE, number(body.get("temperature")))
        record.set(semconv.REQUEST_TOP_P, number(body.get("top_p")))
        top_k = as_int(body.get("top_k"))
        if top_k is not None:
            record.set(semconv.REQUEST_TOP_K, top_k if record.dialect.top_k_is_int else float(top_k))
        record.set(semconv.REQUEST_STOP_SEQUENCES, stop_sequences(body.get("stop_sequences")))
        describe_prompt(body, record)

    def upstream_body(self, body: dict[str, Any]) -> dict[str, Any] | None:
        return None

    def read_response(self, document: Any, record: CallRecord) -> None:
        if not isinstance(document, dict):
            return
        record.set(semconv.RESPONSE_ID, document.get("id"))
        record.set(semconv.RESPONSE_MODEL, document.get("model"))
        _read_usage(document.get("usage"), record)
        out = record.choice(0)
        for index, block in enumerate(as_list(document.get("content"))):
            if not isinstance(block, dict):
                continue
            kind = block.get("type")
            if kind == "text" and isinstance(block.get("text"), str):
                out.text.append(block["text"])
            elif kind == "thinking" and isinstance(block.get("thinking"), str):
                out.reasoning.append(block["thinking"])
            elif kind in ("tool_use", "server_tool_use"):
                out.add_tool_call_fragment(index, block.get("id"), block.get("name"), json.dumps(block.get("input")))
        out.finish_reason = document.get("stop_reason")

    def stream_tee(self, body: dict[str, Any], record: CallRecord) -> MessagesStreamTee:
        return MessagesStreamTee(record)

    def finish_reason_map(self) -> dict[str, str]:
        return FINISH_REASONS


class MessagesStreamTee:
    def __init__(self, record: CallRecord) -> None:
        self._record = record
        self._tool_blocks: set[int] = set()

    def on_event(self, event: SseEvent) -> bytes:
        document = event_json(event)
        if document is None:
            return event.raw
        record = self._record
        out = record.choice(0)
        kind = document.get("type") or event.event
        if kind == "message_start" and isinstance(document.get("message"), dict):
            message = document["message"]
            record.set(semconv.RESPONSE_ID, message.get("id"))
            record.set(semconv.RESPONSE_MODEL, message.get("model"))
            usage = message.get("usage")
            # Its output_tokens is a placeholder (1); the real count comes with message_delta, and a
            # stream cut before that is estimated from what was delivered.
            _read_usage(
                {k: v for k, v in usage.items() if k != "output_tokens"} if isinstance(usage, dict) else None, record
            )
        elif kind == "content_block_start" and isinstance(document.get("content_block"), dict):
            block, index = document["content_block"], as_int(document.get("index")) or 0
            if block.get("type") in ("tool_use", "server_tool_use"):
                self._tool_blocks.add(index)
                out.add_tool_call_fragment(index, block.get("id"), block.get("name"), "")
        elif kind == "content_block_delta" and isinstance(document.get("delta"), dict):
            delta, index = document["delta"], as_int(document.get("index")) or 0
            if delta.get("type") == "text_delta" and isinstance(delta.get("text"), str):
                out.text.append(delta["text"])
            elif delta.get("type") == "thinking_delta" and isinstance(delta.get("thinking"), str):
                out.reasoning.append(delta["thinking"])
            elif delta.get("type") == "input_json_delta" and index in self._tool_blocks:
                out.add_tool_call_fragment(index, None, None, str(delta.get("partial_json") or ""))
        elif kind == "error":
            record.stream_error = error_kind(document.get("error"))
        elif kind == "message_delta":
            delta = as_dict(document.get("delta"))
            if isinstance(delta, dict) and delta.get("stop_reason"):
                out.finish_reason = delta["stop_reason"]
            _read_usage(document.get("usage"), record)
        return event.raw


class CountTokens(TokenCount):
    """Token counting is not an inference: its span names the operation and model, without usage."""

    name = "count_tokens"
    family: ApiFamily = "anthropic"
    operation = "count_tokens"

    def describe_request(self, body: dict[str, Any], record: CallRecord) -> None:
        describe_prompt(body, record)
        record.prompt_texts.clear()  # nothing to estimate: no usage is recorded for a count


def describe_prompt(body: dict[str, Any], record: CallRecord) -> None:
    """System prompt, messages and tools, as content and as prompt text."""
    system = body.get("system")
    system_parts = _blocks_to_parts(system) if system is not None else []
    messages = body.get("messages")
    converted: list[dict[str, Any]] = []
    if isinstance(messages, list):
        converted = [
            {"role": m.get("role"), "parts": _blocks_to_parts(m.get("content"))}
            for m in messages
            if isinstance(m, dict)
        ]
    for part in system_parts + [p for m in converted for p in m["parts"]]:
        if part["type"] in ("text", "reasoning"):
            record.prompt_texts.append(part["content"])
        elif part["type"] == "tool_call":
            record.prompt_texts.append(json.dumps(part.get("arguments")))
        elif part["type"] == "tool_call_response":
            record.prompt_texts.append(json.dumps(part.get("response")))
    tools = body.get("tools")
    if isinstance(tools, list):
        record.prompt_texts.append(json.dumps(tools))
        if record.capture_content:
            record.tool_definitions = [_tool_definition(t) for t in tools if isinstance(t, dict)]
    if system_parts:
        record.system_instructions = system_parts
    # A tool result travels in a user message; the conventions give it the tool role.
    for message in converted:
        if message["parts"] and all(p["type"] == "tool_call_response" for p in message["parts"]):
            message["role"] = "tool"
    record.input_messages = converted


def _read_usage(usage: Any, record: CallRecord) -> None:
    if not isinstance(usage, dict):
        return
    target = record.usage
    for key, attribute in (
        ("cache_read_input_tokens", "cache_read_input_tokens"),
        ("cache_creation_input_tokens", "cache_write_input_tokens"),
        ("output_tokens", "output_tokens"),
    ):
        value = as_int(usage.get(key))
        if value is not None:
            setattr(target, attribute, value)
    uncached = as_int(usage.get("input_tokens"))
    if uncached is not None:
        cached = (target.cache_read_input_tokens or 0) + (target.cache_write_input_tokens or 0)
        target.input_tokens = uncached + cached
    target.source = "provider"


def _blocks_to_parts(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [text_part(content)]
    parts: list[dict[str, Any]] = []
    for block in content if isinstance(content, list) else []:
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind == "text":
            parts.append(text_part(str(block.get("text", ""))))
        elif kind == "thinking":
            parts.append({"type": "reasoning", "content": str(block.get("thinking", ""))})
        elif kind == "tool_use":
            parts.append(
                {"type": "tool_call", "id": block.get("id"), "name": block.get("name"), "arguments": block.get("input")}
            )
        elif kind == "tool_result":
            parts.append(
                {"type": "tool_call_response", "id": block.get("tool_use_id"), "response": block.get("content")}
            )
        elif kind in ("image", "document"):
            source = as_dict(block.get("source"))
            modality = "image" if kind == "image" else "document"
            if source.get("type") == "base64":
                parts.append(
                    {
                        "type": "blob",
                        "modality": modality,
                        "mime_type": source.get("media_type"),
                        "content": source.get("data"),
                    }
                )
            elif source.get("type") == "url":
                parts.append(media_part(str(source.get("url")), modality))
            else:
                parts.append({"type": str(kind)})
        else:
            parts.append({"type": str(kind)})
    return parts


def _tool_definition(tool: dict[str, Any]) -> dict[str, Any]:
    if "input_schema" in tool:
        definition: dict[str, Any] = {"type": "function", "name": tool.get("name")}
        if "description" in tool:
            definition["description"] = tool["description"]
        definition["parameters"] = tool["input_schema"]
        return definition
    return {"type": str(tool.get("type")), "name": str(tool.get("name") or tool.get("type"))}
