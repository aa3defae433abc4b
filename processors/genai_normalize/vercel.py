"""The Vercel AI SDK's telemetry (npm ``ai``, ``experimental_telemetry``) onto the GenAI conventions.

The SDK names each span after its ``ai.operationId``, and the operation says what the span is:

- ``ai.generateText`` / ``ai.streamText``: one call of the function, which runs every step of the
  tool loop: an agent invocation (``invoke_agent``), never an LLM call. Its ``ai.usage.*`` are the
  sums of its steps and keep the SDK's names, so nothing counts or prices them a second time.
- ``ai.generateObject``, ``ai.streamObject``, ``ai.embed``, ``ai.embedMany``, ``ai.rerank``: wrappers
  around one or more provider calls; no GenAI operation, their sums kept under the SDK's names too.
- ``<wrapper>.doGenerate`` / ``<wrapper>.doStream``: one provider call each (``chat``), with the model,
  usage, the prompt as the provider got it (``ai.prompt.messages``) and the reply (``ai.response.*``);
  ``<wrapper>.doEmbed``: one embeddings call.
- ``ai.toolCall``: one tool execution (``execute_tool``): name, call id, arguments, result.

Provider ids (``ai.model.provider``, also sent as ``gen_ai.system``) name the provider and its API
(``openai.chat``, ``openai.responses``, ``anthropic.messages``, ``google.generative-ai``...); the
provider alone becomes ``gen_ai.provider.name``. Message parts follow the SDK's prompt format, both
the current one (``input``, ``output``: ``{type, value}``) and the one before (``args``, ``result``).
"""

from __future__ import annotations

import json
from typing import Any

from collector.jsonvalues import parse_json
from processors.genai_normalize.normalization import (
    AGENT_NAME,
    CACHE_READ_TOKENS,
    CACHE_WRITE_TOKENS,
    FINISH_REASONS,
    INPUT_MESSAGES,
    INPUT_TOKENS,
    OPERATION,
    OUTPUT_MESSAGES,
    OUTPUT_TOKENS,
    PROVIDER,
    PROVIDER_NAMES,
    REASONING_TOKENS,
    REQUEST_MODEL,
    RESPONSE_ID,
    RESPONSE_MODEL,
    SYSTEM_INSTRUCTIONS,
    TIME_TO_FIRST_CHUNK,
    TOOL_CALL_ARGUMENTS,
    TOOL_CALL_ID,
    TOOL_CALL_RESULT,
    TOOL_DEFINITIONS,
    TOOL_NAME,
    TOOL_TYPE,
    Normalization,
    json_or_text,
)

OPERATION_ID = "ai.operationId"
FUNCTION_ID = "ai.telemetry.functionId"
MODEL_PROVIDER = "ai.model.provider"
AGENT_FUNCTIONS = frozenset({"ai.generateText", "ai.streamText"})
CALL_SUFFIXES = {".doGenerate": "chat", ".doStream": "chat", ".doEmbed": "embeddings"}
TOOL_CALL = "ai.toolCall"
MILLISECONDS = 1000.0

# Usage on a provider call span → the conventions' usage names. The SDK has written both
# generations of names (promptTokens before v5, inputTokens since).
CALL_USAGE: dict[str, str] = {
    "ai.usage.promptTokens": INPUT_TOKENS,
    "ai.usage.inputTokens": INPUT_TOKENS,
    "ai.usage.completionTokens": OUTPUT_TOKENS,
    "ai.usage.outputTokens": OUTPUT_TOKENS,
    "ai.usage.tokens": INPUT_TOKENS,  # embeddings
    "ai.usage.cachedInputTokens": CACHE_READ_TOKENS,
    "ai.usage.inputTokenDetails.cacheReadTokens": CACHE_READ_TOKENS,
    "ai.usage.inputTokenDetails.cacheWriteTokens": CACHE_WRITE_TOKENS,
    "ai.usage.reasoningTokens": REASONING_TOKENS,
    "ai.usage.outputTokenDetails.reasoningTokens": REASONING_TOKENS,
    "ai.response.model": RESPONSE_MODEL,
    "ai.response.id": RESPONSE_ID,
    "ai.model.id": REQUEST_MODEL,
}

# The SDK's provider id, up to its API part, → gen_ai.provider.name; the longest prefix wins.
VERCEL_PROVIDERS: dict[str, str] = {
    "openai": "openai",
    "azure": "azure.ai.openai",
    "azure-openai": "azure.ai.openai",
    "anthropic": "anthropic",
    "google": "gcp.gemini",  # google.generative-ai: the Gemini API
    "google.vertex": "gcp.vertex_ai",  # google.vertex.chat, google.vertex.embedding
    "vertex": "gcp.vertex_ai",  # vertex.anthropic.messages
    "amazon-bedrock": "aws.bedrock",
    "bedrock": "aws.bedrock",
    "mistral": "mistral_ai",
    "xai": "x_ai",
    "cohere": "cohere",
    "groq": "groq",
    "deepseek": "deepseek",
    "perplexity": "perplexity",
}

# The SDK's finish reasons → the conventions' output message finish_reason.
FINISH_REASONS_OUT = {"tool-calls": "tool_call", "content-filter": "content_filter"}


def is_vercel(keys: frozenset[str], span_name: str) -> bool:
    return OPERATION_ID in keys or (span_name.startswith("ai.") and MODEL_PROVIDER in keys)


def provider_name(provider_id: str) -> str:
    """``openai.responses`` → ``openai``; an id no table names keeps its part before the first dot."""
    parts = provider_id.lower().split(".")
    for length in range(len(parts), 0, -1):
        known = VERCEL_PROVIDERS.get(".".join(parts[:length]))
        if known is not None:
            return known
    return PROVIDER_NAMES.get(parts[0], parts[0])


def normalize(span: Normalization, keys: frozenset[str]) -> None:
    operation_id = str(span.get(OPERATION_ID) or span.span_name.split(" ", 1)[0])
    provider = span.get(MODEL_PROVIDER) or span.get("gen_ai.system")
    if isinstance(provider, str):
        span.put(PROVIDER, provider_name(provider), MODEL_PROVIDER, "gen_ai.system")
    if operation_id in AGENT_FUNCTIONS:
        span.put(OPERATION, "invoke_agent")
        span.put(AGENT_NAME, span.get(FUNCTION_ID))
        span.put(REQUEST_MODEL, span.get("ai.model.id"), "ai.model.id")
    elif operation_id == TOOL_CALL:
        _tool_call(span)
    else:
        for suffix, operation in CALL_SUFFIXES.items():
            if operation_id.endswith(suffix):
                span.put(OPERATION, operation)
                _provider_call(span, keys)


def _provider_call(span: Normalization, keys: frozenset[str]) -> None:
    for old in sorted(keys & CALL_USAGE.keys()):
        span.put(CALL_USAGE[old], span.get(old), old)
    first_chunk = span.get("ai.response.msToFirstChunk")
    if isinstance(first_chunk, int | float) and not isinstance(first_chunk, bool):
        span.put(TIME_TO_FIRST_CHUNK, first_chunk / MILLISECONDS, "ai.response.msToFirstChunk")
    reason = span.get("ai.response.finishReason")
    if isinstance(reason, str):
        span.put(FINISH_REASONS, [reason], "ai.response.finishReason")
    prompt = parse_json(span.get("ai.prompt.messages"))
    if isinstance(prompt, list):
        system = [part for message in prompt if _role(message) == "system" for part in _parts(message)]
        others = [_input_message(message) for message in prompt if _role(message) != "system"]
        span.put(SYSTEM_INSTRUCTIONS, json.dumps(system) if system else None)
        span.put(INPUT_MESSAGES, json.dumps(others), "ai.prompt.messages")
    output = _output_message(span, reason)
    if output is not None:
        span.put(OUTPUT_MESSAGES, json.dumps([output]), "ai.response.text", "ai.response.toolCalls")
    tools = span.get("ai.prompt.tools")
    if isinstance(tools, list | tuple):
        definitions = [_tool_definition(parse_json(tool)) for tool in tools]
        span.put(TOOL_DEFINITIONS, json.dumps([d for d in definitions if d]), "ai.prompt.tools")


def _tool_call(span: Normalization) -> None:
    span.put(OPERATION, "execute_tool")
    span.put(TOOL_TYPE, "function")
    span.put(TOOL_NAME, span.get("ai.toolCall.name"), "ai.toolCall.name")
    span.put(TOOL_CALL_ID, span.get("ai.toolCall.id"), "ai.toolCall.id")
    span.put(TOOL_CALL_ARGUMENTS, span.get("ai.toolCall.args"), "ai.toolCall.args")
    span.put(TOOL_CALL_RESULT, span.get("ai.toolCall.result"), "ai.toolCall.result")


def _role(message: Any) -> str:
    return str(message.get("role", "")) if isinstance(message, dict) else ""


def _parts(message: Any) -> list[dict[str, Any]]:
    """A prompt message's content (text, or a list of the SDK's parts) as the conventions' parts."""
    content = message.get("content") if isinstance(message, dict) else None
    if isinstance(content, str):
        return [{"type": "text", "content": content}]
    parts: list[dict[str, Any]] = []
    for part in content if isinstance(content, list) else []:
        if not isinstance(part, dict):
            continue
        kind = part.get("type")
        if kind in ("text", "reasoning") and isinstance(part.get("text"), str):
            parts.append({"type": "text" if kind == "text" else "reasoning", "content": part["text"]})
        elif kind == "tool-call":
            arguments = part["input"] if "input" in part else part.get("args")
            parts.append(
                {"type": "tool_call", "id": part.get("toolCallId"), "name": part.get("toolName"),
                 "arguments": json_or_text(arguments)}
            )  # fmt: skip
        elif kind == "tool-result":
            parts.append({"type": "tool_call_response", "id": part.get("toolCallId"), "response": _result(part)})
        elif kind in ("image", "file"):
            data = part.get("image") if kind == "image" else part.get("data")
            media_type = part.get("mediaType") or part.get("mimeType")
            if isinstance(data, str) and data.startswith(("http://", "https://")):
                parts.append({"type": "uri", "modality": _modality(media_type, kind), "uri": data})
            elif isinstance(data, str):
                parts.append({"type": "blob", "modality": _modality(media_type, kind), "content": data})
    return parts


def _result(part: dict[str, Any]) -> Any:
    """A tool result's value: the current format's ``output: {type, value}``, or the older ``result``."""
    output = part.get("output")
    if isinstance(output, dict) and "value" in output:
        return output["value"]
    return output if "output" in part else part.get("result")


def _modality(media_type: Any, kind: str) -> str:
    if isinstance(media_type, str) and "/" in media_type:
        return media_type.split("/", 1)[0]
    return "image" if kind == "image" else "file"


def _input_message(message: dict[str, Any]) -> dict[str, Any]:
    return {"role": _role(message) or "user", "parts": _parts(message)}


def _output_message(span: Normalization, reason: Any) -> dict[str, Any] | None:
    text = span.get("ai.response.text")
    calls = parse_json(span.get("ai.response.toolCalls"))
    if text is None and calls is None:
        return None
    parts: list[dict[str, Any]] = []
    if isinstance(text, str) and text:
        parts.append({"type": "text", "content": text})
    for call in calls if isinstance(calls, list) else []:
        if isinstance(call, dict):
            arguments = call["input"] if "input" in call else call.get("args")
            parts.append(
                {"type": "tool_call", "id": call.get("toolCallId"), "name": call.get("toolName"),
                 "arguments": json_or_text(arguments)}
            )  # fmt: skip
    finish = str(reason) if isinstance(reason, str) else ("tool-calls" if calls else "stop")
    return {"role": "assistant", "parts": parts, "finish_reason": FINISH_REASONS_OUT.get(finish, finish)}


def _tool_definition(tool: Any) -> dict[str, Any] | None:
    if not isinstance(tool, dict) or not tool.get("name"):
        return None
    definition: dict[str, Any] = {"type": "function", "name": tool["name"]}
    if isinstance(tool.get("description"), str):
        definition["description"] = tool["description"]
    parameters = tool.get("inputSchema", tool.get("parameters"))
    if parameters is not None:
        definition["parameters"] = parameters
    return definition
