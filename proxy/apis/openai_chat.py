"""OpenAI Chat Completions (POST /v1/chat/completions), streamed and not (streams: see openai_stream)."""

from __future__ import annotations

import json
from typing import Any

from collector import semconv
from proxy.apis import media_part, text_part
from proxy.apis.openai_stream import ChunkStreamTee, wants_usage_injected, with_usage_requested
from proxy.errors import ApiFamily
from proxy.record import (
    COMMON_FINISH_REASONS,
    CallRecord,
    as_dict,
    as_int,
    as_list,
    parse_arguments,
    set_openai_request,
    set_openai_response,
    usage_from_openai,
)

_OUTPUT_TYPES = {"json_object": "json", "json_schema": "json", "text": "text"}


class ChatCompletions:
    name = "chat_completions"
    family: ApiFamily = "openai"
    operation = semconv.CHAT

    def describe_request(self, body: dict[str, Any], record: CallRecord) -> None:
        set_openai_request(record, body, ("max_completion_tokens", "max_tokens"))
        record.set(semconv.OPENAI_API_TYPE, "chat_completions")
        response_format = body.get("response_format")
        if isinstance(response_format, dict):
            record.set(semconv.OUTPUT_TYPE, _OUTPUT_TYPES.get(str(response_format.get("type"))))
        effort = body.get("reasoning_effort")
        if record.dialect.reasoning_level and isinstance(effort, str):
            record.set(record.dialect.reasoning_level, effort)
        messages = body.get("messages")
        if isinstance(messages, list):
            record.prompt_texts.extend(_texts(messages))
            record.prompt_chat_messages = sum(1 for m in messages if isinstance(m, dict))
            # Always built: conversation grouping compares histories even when content is not captured.
            record.input_messages = [_input_message(m) for m in messages if isinstance(m, dict)]
        tools = body.get("tools")
        if isinstance(tools, list):
            record.prompt_texts.append(json.dumps(tools))
            if record.capture_content:
                record.tool_definitions = [d for t in tools if (d := _tool_definition(t)) is not None]

    def upstream_body(self, body: dict[str, Any]) -> dict[str, Any] | None:
        return with_usage_requested(body)

    def read_response(self, document: Any, record: CallRecord) -> None:
        if not isinstance(document, dict):
            return
        set_openai_response(record, document)
        usage_from_openai(document.get("usage"), record)
        for choice in as_list(document.get("choices")):
            if not isinstance(choice, dict):
                continue
            out = record.choice(as_int(choice.get("index")) or 0)
            message = as_dict(choice.get("message"))
            content = message.get("content")
            if isinstance(content, str):
                out.text.append(content)
            refusal = message.get("refusal")
            if isinstance(refusal, str):
                out.text.append(refusal)
            reasoning = _reasoning_text(message)
            if reasoning:
                out.reasoning.append(reasoning)
            for position, call in enumerate(as_list(message.get("tool_calls"))):
                if not isinstance(call, dict):
                    continue
                function: dict[str, Any] = call["function"] if isinstance(call.get("function"), dict) else {}
                out.add_tool_call_fragment(
                    position, call.get("id"), function.get("name"), function.get("arguments") or ""
                )
            out.finish_reason = choice.get("finish_reason")

    def stream_tee(self, body: dict[str, Any], record: CallRecord) -> ChunkStreamTee:
        return ChunkStreamTee(record, wants_usage_injected(body), _add_delta)

    def finish_reason_map(self) -> dict[str, str]:
        return COMMON_FINISH_REASONS


def _add_delta(record: CallRecord, choice: Any) -> None:
    """One streamed choice delta: text, refusal, reasoning, tool-call fragments, finish reason."""
    if not isinstance(choice, dict):
        return
    out = record.choice(as_int(choice.get("index")) or 0)
    delta = as_dict(choice.get("delta"))
    content = delta.get("content")
    if isinstance(content, str) and content:
        out.text.append(content)
    refusal = delta.get("refusal")
    if isinstance(refusal, str) and refusal:
        out.text.append(refusal)
    reasoning = _reasoning_text(delta)
    if reasoning:
        out.reasoning.append(reasoning)
    for call in as_list(delta.get("tool_calls")):
        if not isinstance(call, dict):
            continue
        function: dict[str, Any] = call["function"] if isinstance(call.get("function"), dict) else {}
        out.add_tool_call_fragment(
            as_int(call.get("index")) or 0, call.get("id"), function.get("name"), function.get("arguments") or ""
        )
    if choice.get("finish_reason"):
        out.finish_reason = choice["finish_reason"]


def _reasoning_text(message: dict[str, Any]) -> str | None:
    """Reasoning an OpenAI-compatible server adds to a message or delta: vLLM, llama.cpp and LM Studio call it
    ``reasoning_content``, Ollama and newer vLLM ``reasoning``."""
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    return reasoning if isinstance(reasoning, str) and reasoning else None


def _texts(messages: list[Any]) -> list[str]:
    texts: list[str] = []
    for message in messages:
        if not isinstance(message, dict):
            continue
        content = message.get("content")
        if isinstance(content, str):
            texts.append(content)
        elif isinstance(content, list):
            texts.extend(p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
        for call in as_list(message.get("tool_calls")):
            if isinstance(call, dict) and isinstance(call.get("function"), dict):
                texts.append(str(call["function"].get("name", "")) + str(call["function"].get("arguments", "")))
    return texts


def _input_message(message: dict[str, Any]) -> dict[str, Any]:
    role = message.get("role")
    role = "system" if role == "developer" else role
    parts: list[dict[str, Any]] = []
    content = message.get("content")
    if role == "tool":
        parts.append({"type": "tool_call_response", "id": message.get("tool_call_id"), "response": content})
        return {"role": "tool", "parts": parts}
    if isinstance(content, str):
        parts.append(text_part(content))
    elif isinstance(content, list):
        for part in content:
            if not isinstance(part, dict):
                continue
            kind = part.get("type")
            if kind == "text":
                parts.append(text_part(str(part.get("text", ""))))
            elif kind == "image_url":
                parts.append(media_part(str(as_dict(part.get("image_url")).get("url", "")), "image"))
            elif kind == "input_audio":
                audio = as_dict(part.get("input_audio"))
                parts.append({"type": "blob", "modality": "audio", "mime_type": None, "content": audio.get("data")})
            else:
                parts.append({"type": str(kind)})
    for call in as_list(message.get("tool_calls")):
        if not isinstance(call, dict):
            continue
        function = as_dict(call.get("function"))
        parts.append(
            {
                "type": "tool_call",
                "id": call.get("id"),
                "name": function.get("name"),
                "arguments": parse_arguments(function.get("arguments") or ""),
            }
        )
    converted: dict[str, Any] = {"role": role, "parts": parts}
    if isinstance(message.get("name"), str):
        converted["name"] = message["name"]
    return converted


def _tool_definition(tool: Any) -> dict[str, Any] | None:
    if not isinstance(tool, dict):
        return None
    if tool.get("type") == "function":
        function = as_dict(tool.get("function"))
        definition: dict[str, Any] = {"type": "function", "name": function.get("name")}
        if "description" in function:
            definition["description"] = function["description"]
        if "parameters" in function:
            definition["parameters"] = function["parameters"]
        return definition
    return {"type": str(tool.get("type")), "name": str(tool.get("name") or tool.get("type"))}
