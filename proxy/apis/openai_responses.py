"""OpenAI Responses (POST /v1/responses): ``chat`` spans from the response object or its event stream.

Streams always end with ``response.completed`` (or ``.incomplete`` / ``.failed``),
which carries the whole response with its usage, so nothing is injected.
"""

from __future__ import annotations

import json
from typing import Any

from collector import semconv
from proxy.apis import event_json, media_part, text_part
from proxy.errors import ApiFamily
from proxy.record import (
    COMMON_FINISH_REASONS,
    CallRecord,
    as_dict,
    as_int,
    as_list,
    error_kind,
    number,
    parse_arguments,
    set_openai_response,
)
from proxy.record import usage_from_openai as read_usage
from proxy.sse import SseEvent

_FINAL_EVENTS = ("response.completed", "response.incomplete", "response.failed")
_INCOMPLETE_REASONS = {"max_output_tokens": "length", "content_filter": "content_filter"}


class Responses:
    name = "responses"
    family: ApiFamily = "openai"
    operation = semconv.CHAT

    def describe_request(self, body: dict[str, Any], record: CallRecord) -> None:
        record.set(semconv.OPENAI_API_TYPE, "responses")
        record.set(semconv.REQUEST_MAX_TOKENS, as_int(body.get("max_output_tokens")))
        record.set(semconv.REQUEST_TEMPERATURE, number(body.get("temperature")))
        record.set(semconv.REQUEST_TOP_P, number(body.get("top_p")))
        tier = body.get("service_tier")
        if isinstance(tier, str) and tier != "auto":
            record.set(semconv.OPENAI_REQUEST_SERVICE_TIER, tier)
        text_format = as_dict(body.get("text")).get("format")
        if isinstance(text_format, dict) and text_format.get("type") in ("json_schema", "json_object"):
            record.set(semconv.OUTPUT_TYPE, "json")
        dialect = record.dialect
        reasoning = body.get("reasoning")
        if dialect.reasoning_level and isinstance(reasoning, dict):
            record.set(dialect.reasoning_level, reasoning.get("effort"))
        if dialect.previous_response_id:
            record.set(dialect.previous_response_id, body.get("previous_response_id"))
        instructions = body.get("instructions")
        if isinstance(instructions, str):
            record.prompt_texts.append(instructions)
            record.system_instructions = [text_part(instructions)]
        items = body.get("input")
        messages = [{"role": "user", "content": items}] if isinstance(items, str) else items
        if isinstance(messages, list):
            converted = [_input_item(item) for item in messages if isinstance(item, dict)]
            for message in converted:
                record.prompt_texts.extend(_part_texts(message["parts"]))
            record.input_messages = converted
        tools = body.get("tools")
        if isinstance(tools, list):
            record.prompt_texts.append(json.dumps(tools))
            if record.capture_content:
                record.tool_definitions = [_tool_definition(t) for t in tools if isinstance(t, dict)]

    def upstream_body(self, body: dict[str, Any]) -> dict[str, Any] | None:
        return None

    def read_response(self, document: Any, record: CallRecord) -> None:
        if not isinstance(document, dict):
            return
        set_openai_response(record, document)
        read_usage(document.get("usage"), record)
        out = record.choice(0)
        out.text, out.reasoning, out.tool_calls = [], [], {}
        for item in as_list(document.get("output")):
            if not isinstance(item, dict):
                continue
            kind = item.get("type")
            if kind == "message":
                for part in as_list(item.get("content")):
                    if isinstance(part, dict) and isinstance(part.get("text"), str):
                        out.text.append(part["text"])
                    elif isinstance(part, dict) and isinstance(part.get("refusal"), str):
                        out.text.append(part["refusal"])
            elif kind == "function_call":
                position = len(out.tool_calls)
                out.add_tool_call_fragment(position, item.get("call_id"), item.get("name"), item.get("arguments") or "")
            elif kind == "reasoning":
                for summary in as_list(item.get("summary")):
                    if isinstance(summary, dict) and isinstance(summary.get("text"), str):
                        out.reasoning.append(summary["text"])
        out.finish_reason = _finish_reason(document, bool(out.tool_calls))

    def stream_tee(self, body: dict[str, Any], record: CallRecord) -> ResponsesStreamTee:
        return ResponsesStreamTee(self, record)

    def finish_reason_map(self) -> dict[str, str]:
        return COMMON_FINISH_REASONS


class ResponsesStreamTee:
    """Text deltas as they come (for what was delivered if the stream is cut), the final response when it ends."""

    def __init__(self, api: Responses, record: CallRecord) -> None:
        self._api = api
        self._record = record

    def on_event(self, event: SseEvent) -> bytes:
        document = event_json(event)
        if document is None:
            return event.raw
        kind = document.get("type") or event.event
        if kind == "response.created" and isinstance(document.get("response"), dict):
            set_openai_response(self._record, document["response"])
        elif kind == "response.output_text.delta" and isinstance(document.get("delta"), str):
            self._record.choice(0).text.append(document["delta"])
        elif kind in _FINAL_EVENTS and isinstance(document.get("response"), dict):
            self._api.read_response(document["response"], self._record)
            if kind == "response.failed":
                self._record.stream_error = error_kind(document["response"].get("error"))
        elif kind == "error":
            self._record.stream_error = error_kind(document)
        return event.raw


def _finish_reason(response: dict[str, Any], has_tool_calls: bool) -> str:
    status = response.get("status")
    if status == "incomplete":
        reason = as_dict(response.get("incomplete_details")).get("reason")
        return _INCOMPLETE_REASONS.get(str(reason), str(reason or "incomplete"))
    if status == "failed":
        return "error"
    return "tool_calls" if has_tool_calls else "stop"


def _input_item(item: dict[str, Any]) -> dict[str, Any]:
    kind = item.get("type")
    if kind == "function_call":
        call = {
            "type": "tool_call",
            "id": item.get("call_id"),
            "name": item.get("name"),
            "arguments": parse_arguments(item.get("arguments") or ""),
        }
        return {"role": "assistant", "parts": [call]}
    if kind == "function_call_output":
        return {
            "role": "tool",
            "parts": [{"type": "tool_call_response", "id": item.get("call_id"), "response": item.get("output")}],
        }
    role = item.get("role", "user")
    role = "system" if role == "developer" else role
    content = item.get("content")
    parts: list[dict[str, Any]] = []
    if isinstance(content, str):
        parts.append(text_part(content))
    elif isinstance(content, list):
        for part in content:
            if not isinstance(part, dict):
                continue
            if isinstance(part.get("text"), str):
                parts.append(text_part(part["text"]))
            elif part.get("type") == "input_image" and isinstance(part.get("image_url"), str):
                parts.append(media_part(part["image_url"], "image"))
            elif part.get("type") == "input_file" and isinstance(part.get("file_id"), str):
                parts.append({"type": "file", "modality": "document", "file_id": part["file_id"]})
            else:
                parts.append({"type": str(part.get("type"))})
    return {"role": role, "parts": parts}


def _part_texts(parts: list[dict[str, Any]]) -> list[str]:
    texts: list[str] = []
    for part in parts:
        if part["type"] == "text":
            texts.append(part["content"])
        elif part["type"] == "tool_call":
            texts.append(json.dumps(part.get("arguments")))
        elif part["type"] == "tool_call_response":
            texts.append(str(part.get("response")))
    return texts


def _tool_definition(tool: dict[str, Any]) -> dict[str, Any]:
    if tool.get("type") == "function":
        definition: dict[str, Any] = {"type": "function", "name": tool.get("name")}
        for key in ("description", "parameters"):
            if key in tool:
                definition[key] = tool[key]
        return definition
    return {"type": str(tool.get("type")), "name": str(tool.get("name") or tool.get("type"))}
