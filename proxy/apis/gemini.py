"""Google's Gemini API (``models/{model}:generateContent`` and its siblings), as the google-genai SDK calls it.

The model is named by the path, not the body. ``:streamGenerateContent`` streams
either server-sent events (``?alt=sse``, what the SDK asks for), one
``GenerateContentResponse`` per event, or, without it, one JSON array whose
elements arrive as they are generated; the array is read whole once relayed.
Every chunk may carry ``usageMetadata``; the last one's counts are the call's.
Gemini counts thinking tokens (``thoughtsTokenCount``) apart from
``candidatesTokenCount``; the conventions' output tokens are their sum, and
``promptTokenCount`` already includes ``cachedContentTokenCount``.
"""

from __future__ import annotations

import json
from typing import Any

from collector import semconv
from proxy.apis import event_json, text_part
from proxy.apis.openai_embeddings import PassEvents
from proxy.apis.token_count import TokenCount
from proxy.errors import ApiFamily
from proxy.record import CallRecord, as_dict, as_int, as_list, number, stop_sequences
from proxy.sse import SseEvent

# The SDK's default API version first; v1 and v1alpha take the same bodies.
API_VERSIONS = ("v1beta", "v1", "v1alpha")
# Versions no other API's paths use: everything under them is Gemini's (v1 is told apart by its key header).
OWN_API_VERSIONS = ("v1beta", "v1alpha")
COUNT_TOKENS = "count_tokens"

FINISH_REASONS = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
    "MALFORMED_FUNCTION_CALL": "error",
    "UNEXPECTED_TOOL_CALL": "error",
}
# Gemini's name for the model's turn; the conventions call it the assistant's.
_ROLES = {"model": "assistant", "user": "user", "function": "tool", "tool": "tool", "system": "system"}


def model_of_path(target: str) -> tuple[str, str] | None:
    """``gemini-2.5-flash:generateContent`` (the path's last segment) as (model, method); None when it is not one."""
    model, colon, method = target.rpartition(":")
    if not colon or not model or not method:
        return None
    return model, method


class GenerateContent:
    """``:generateContent`` and ``:streamGenerateContent``: ``generate_content`` spans."""

    name = "gemini_generate_content"
    family: ApiFamily = "gemini"
    operation = semconv.GENERATE_CONTENT

    def __init__(self, stream: bool) -> None:
        self.stream = stream

    def describe_request(self, body: dict[str, Any], record: CallRecord) -> None:
        record.stream = self.stream
        describe_generation(body, record)

    def upstream_body(self, body: dict[str, Any]) -> dict[str, Any] | None:
        return None

    def read_response(self, document: Any, record: CallRecord) -> None:
        # A stream asked without alt=sse is one JSON array of the chunks an SSE stream would carry.
        for chunk in document if isinstance(document, list) else [document]:
            read_chunk(chunk, record)

    def stream_tee(self, body: dict[str, Any], record: CallRecord) -> GeminiStreamTee:
        return GeminiStreamTee(record)

    def finish_reason_map(self) -> dict[str, str]:
        return FINISH_REASONS


class GeminiStreamTee:
    """Each event is one GenerateContentResponse chunk: text and thoughts as deltas, the latest usage."""

    def __init__(self, record: CallRecord) -> None:
        self._record = record

    def on_event(self, event: SseEvent) -> bytes:
        chunk = event_json(event)
        if chunk is not None:
            read_chunk(chunk, self._record)
        return event.raw


class CountTokens(TokenCount):
    """``:countTokens``: not an inference; its span names the operation and model, without usage."""

    name = "gemini_count_tokens"
    family: ApiFamily = "gemini"
    operation = COUNT_TOKENS

    def describe_request(self, body: dict[str, Any], record: CallRecord) -> None:
        inner = body.get("generateContentRequest")
        describe_generation(inner if isinstance(inner, dict) else body, record)
        record.prompt_texts.clear()  # nothing to estimate: no usage is recorded for a count


class EmbedContent:
    """``:embedContent`` (one content) and ``:batchEmbedContents`` (what the SDK calls): ``embeddings`` spans."""

    name = "gemini_embed_content"
    family: ApiFamily = "gemini"
    operation = semconv.EMBEDDINGS

    def describe_request(self, body: dict[str, Any], record: CallRecord) -> None:
        requests = body.get("requests")
        for request in as_list(requests) if requests is not None else [body]:
            if not isinstance(request, dict):
                continue
            for part in as_list(as_dict(request.get("content")).get("parts")):
                if isinstance(part, dict) and isinstance(part.get("text"), str):
                    record.prompt_texts.append(part["text"])

    def upstream_body(self, body: dict[str, Any]) -> dict[str, Any] | None:
        return None

    def read_response(self, document: Any, record: CallRecord) -> None:
        if not isinstance(document, dict):
            return
        embeddings = document.get("embeddings")
        first = as_dict(as_list(embeddings)[0]) if as_list(embeddings) else as_dict(document.get("embedding"))
        values = first.get("values")
        if isinstance(values, list):
            record.set(semconv.EMBEDDINGS_DIMENSION_COUNT, len(values))
        usage = as_dict(document.get("usageMetadata"))
        if as_int(usage.get("promptTokenCount")) is not None:
            record.usage.input_tokens = as_int(usage.get("promptTokenCount"))
            record.usage.source = "provider"

    def stream_tee(self, body: dict[str, Any], record: CallRecord) -> PassEvents:
        return PassEvents()

    def finish_reason_map(self) -> dict[str, str]:
        return {}


def describe_generation(body: dict[str, Any], record: CallRecord) -> None:
    """A GenerateContentRequest: generation settings, system instruction, contents and tools."""
    config = as_dict(body.get("generationConfig"))
    record.set(semconv.REQUEST_MAX_TOKENS, as_int(config.get("maxOutputTokens")))
    record.set(semconv.REQUEST_TEMPERATURE, number(config.get("temperature")))
    record.set(semconv.REQUEST_TOP_P, number(config.get("topP")))
    top_k = number(config.get("topK"))
    if top_k is not None:
        record.set(semconv.REQUEST_TOP_K, int(top_k) if record.dialect.top_k_is_int else top_k)
    record.set(semconv.REQUEST_STOP_SEQUENCES, stop_sequences(config.get("stopSequences")))
    record.set(semconv.REQUEST_SEED, as_int(config.get("seed")))
    record.set(semconv.REQUEST_FREQUENCY_PENALTY, number(config.get("frequencyPenalty")))
    record.set(semconv.REQUEST_PRESENCE_PENALTY, number(config.get("presencePenalty")))
    count = as_int(config.get("candidateCount"))
    if count is not None and count != 1:
        record.set(semconv.REQUEST_CHOICE_COUNT, count)
    if config.get("responseMimeType") == "application/json" or "responseSchema" in config:
        record.set(semconv.OUTPUT_TYPE, "json")
    thinking = as_dict(config.get("thinkingConfig"))
    # Protobuf's JSON parsing takes either spelling of a field, and the SDK writes this object's in snake case.
    level = thinking.get("thinkingLevel", thinking.get("thinking_level"))
    if record.dialect.reasoning_level and isinstance(level, str):
        record.set(record.dialect.reasoning_level, level.lower())
    system = body.get("systemInstruction")
    if isinstance(system, dict):
        parts = [_part(p) for p in as_list(system.get("parts")) if isinstance(p, dict)]
        record.system_instructions = parts or None
        record.prompt_texts.extend(_texts(parts))
    messages: list[dict[str, Any]] = []
    for content in as_list(body.get("contents")):
        if not isinstance(content, dict):
            continue
        parts = [_part(p) for p in as_list(content.get("parts")) if isinstance(p, dict)]
        role = _ROLES.get(str(content.get("role") or "user"), str(content.get("role")))
        if parts and all(p["type"] == "tool_call_response" for p in parts):
            role = "tool"  # a function's result travels in a user turn; the conventions give it the tool role
        messages.append({"role": role, "parts": parts})
        record.prompt_texts.extend(_texts(parts))
    record.input_messages = messages
    tools = body.get("tools")
    if isinstance(tools, list):
        record.prompt_texts.append(json.dumps(tools))
        if record.capture_content:
            record.tool_definitions = [d for tool in tools for d in _tool_definitions(tool)]


def read_chunk(chunk: Any, record: CallRecord) -> None:
    """One GenerateContentResponse (whole, or one chunk of a stream) into ``record``."""
    if not isinstance(chunk, dict):
        return
    if isinstance(chunk.get("error"), dict):  # an error inside a 200 stream
        error = chunk["error"]
        record.stream_error = str(error.get("status") or error.get("code") or "stream_error")
        return
    record.set(semconv.RESPONSE_ID, chunk.get("responseId"))
    record.set(semconv.RESPONSE_MODEL, chunk.get("modelVersion"))
    for position, candidate in enumerate(as_list(chunk.get("candidates"))):
        if not isinstance(candidate, dict):
            continue
        out = record.choice(as_int(candidate.get("index")) or position)
        for part in as_list(as_dict(candidate.get("content")).get("parts")):
            if not isinstance(part, dict):
                continue
            text = part.get("text")
            if isinstance(text, str) and text:
                (out.reasoning if part.get("thought") is True else out.text).append(text)
            call = part.get("functionCall")
            if isinstance(call, dict):  # a stream sends each call whole, in one chunk
                arguments = call.get("args") or {}
                out.add_tool_call_fragment(len(out.tool_calls), call.get("id"), call.get("name"), arguments)
        if candidate.get("finishReason"):
            out.finish_reason = candidate["finishReason"]
    usage = chunk.get("usageMetadata")
    if isinstance(usage, dict):
        read_usage(usage, record)


def read_usage(usage: dict[str, Any], record: CallRecord) -> None:
    """``usageMetadata``: each chunk's counts are running totals, so the last one read wins."""
    target = record.usage
    prompt = as_int(usage.get("promptTokenCount"))
    candidates = as_int(usage.get("candidatesTokenCount"))
    thoughts = as_int(usage.get("thoughtsTokenCount"))
    if prompt is not None:
        target.input_tokens = prompt + (as_int(usage.get("toolUsePromptTokenCount")) or 0)
    if candidates is not None or thoughts is not None:
        target.output_tokens = (candidates or 0) + (thoughts or 0)
    target.cache_read_input_tokens = as_int(usage.get("cachedContentTokenCount"))
    target.reasoning_output_tokens = thoughts
    target.source = "provider"


def _part(part: dict[str, Any]) -> dict[str, Any]:
    """A Gemini Part as the conventions' message part."""
    if isinstance(part.get("text"), str):
        if part.get("thought") is True:
            return {"type": "reasoning", "content": part["text"]}
        return text_part(part["text"])
    if isinstance(part.get("functionCall"), dict):
        call = part["functionCall"]
        return {"type": "tool_call", "id": call.get("id"), "name": call.get("name"), "arguments": call.get("args")}
    if isinstance(part.get("functionResponse"), dict):
        response = part["functionResponse"]
        return {"type": "tool_call_response", "id": response.get("id"), "response": response.get("response")}
    if isinstance(part.get("inlineData"), dict):
        data = part["inlineData"]
        mime_type = data.get("mimeType")
        return {"type": "blob", "modality": _modality(mime_type), "mime_type": mime_type, "content": data.get("data")}
    if isinstance(part.get("fileData"), dict):
        data = part["fileData"]
        mime_type = data.get("mimeType")
        return {"type": "uri", "modality": _modality(mime_type), "mime_type": mime_type, "uri": data.get("fileUri")}
    kinds = [key for key in part if key not in ("thought", "thoughtSignature")]
    return {"type": kinds[0] if kinds else "unknown"}


def _modality(mime_type: Any) -> str:
    kind = mime_type.partition("/")[0] if isinstance(mime_type, str) else ""
    return kind if kind in ("image", "audio", "video") else "document"


def _texts(parts: list[dict[str, Any]]) -> list[str]:
    texts: list[str] = []
    for part in parts:
        if part["type"] in ("text", "reasoning"):
            texts.append(part["content"])
        elif part["type"] == "tool_call":
            texts.append(str(part.get("name") or "") + json.dumps(part.get("arguments")))
        elif part["type"] == "tool_call_response":
            texts.append(json.dumps(part.get("response")))
    return texts


def _tool_definitions(tool: Any) -> list[dict[str, Any]]:
    if not isinstance(tool, dict):
        return []
    definitions: list[dict[str, Any]] = []
    for declaration in as_list(tool.get("functionDeclarations")):
        if not isinstance(declaration, dict):
            continue
        definition: dict[str, Any] = {"type": "function", "name": declaration.get("name")}
        if "description" in declaration:
            definition["description"] = declaration["description"]
        schema = declaration.get("parameters", declaration.get("parametersJsonSchema"))
        if schema is not None:
            definition["parameters"] = schema
        definitions.append(definition)
    for kind in tool:
        if kind != "functionDeclarations":  # built-in tools: googleSearch, codeExecution, urlContext...
            definitions.append({"type": kind, "name": kind})
    return definitions
