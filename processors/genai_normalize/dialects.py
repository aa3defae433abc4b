"""The dialects GenAI spans arrive in, mapped onto the current OpenTelemetry GenAI semantic conventions.

Each rule reads source keys and writes current ones; a current key the span
already has always wins. ``Normalization`` collects which source keys a rule
consumed, so the processor can drop them (or keep them, when configured).

Dialects:
- deprecated GenAI names (gen_ai.system, gen_ai.usage.prompt_tokens, the
  gen_ai.openai.* request and response keys, and OpenLLMetry's indexed
  gen_ai.prompt.N.* / gen_ai.completion.N.* messages and llm.request.type);
- OpenInference (llm.*, openinference.span.kind, tool.name);
- the Vercel AI SDK (ai.*; see ``vercel``);
- spans that name a model but no provider: the provider is inferred from the
  model's family name (gpt-, claude-, gemini-...).
"""

from __future__ import annotations

import functools
import json
import re
from typing import Any
from urllib.parse import urlsplit

from collector.jsonvalues import parse_json
from processors.genai_normalize import langchain, vercel
from processors.genai_normalize.normalization import (
    AGENT_NAME,
    CACHE_WRITE_TOKENS,
    CONVERSATION_ID,
    COST,
    FINISH_REASONS,
    INPUT_MESSAGES,
    INPUT_TOKENS,
    OPERATION,
    OUTPUT_MESSAGES,
    OUTPUT_TOKENS,
    PREVIOUS_NAMES,
    PREVIOUS_OPERATIONS,
    PROVIDER,
    PROVIDER_NAMES,
    REQUEST_MODEL,
    RESPONSE_ID,
    RESPONSE_MODEL,
    TOOL_CALL_ARGUMENTS,
    TOOL_CALL_ID,
    TOOL_CALL_RESULT,
    TOOL_DEFINITIONS,
    WORKFLOW_NAME,
    Normalization,
)

# Plain renames: old key → current key.
RENAMES: dict[str, str] = {
    "gen_ai.usage.prompt_tokens": INPUT_TOKENS,
    "gen_ai.usage.completion_tokens": OUTPUT_TOKENS,
    "gen_ai.usage.cache_read_input_tokens": "gen_ai.usage.cache_read.input_tokens",
    "gen_ai.usage.cache_creation_input_tokens": CACHE_WRITE_TOKENS,
    "gen_ai.openai.request.seed": "gen_ai.request.seed",
    "gen_ai.openai.request.service_tier": "openai.request.service_tier",
    "gen_ai.openai.response.service_tier": "openai.response.service_tier",
    "gen_ai.openai.response.system_fingerprint": "openai.response.system_fingerprint",
    # OpenLLMetry's own names next to the current ones
    "gen_ai.usage.reasoning_tokens": "gen_ai.usage.reasoning.output_tokens",
    "gen_ai.is_streaming": "gen_ai.request.stream",
    # OpenInference
    "llm.token_count.prompt": INPUT_TOKENS,
    "llm.token_count.completion": OUTPUT_TOKENS,
    "llm.token_count.prompt_details.cache_read": "gen_ai.usage.cache_read.input_tokens",
    "llm.token_count.prompt_details.cache_write": CACHE_WRITE_TOKENS,
    "llm.token_count.completion_details.reasoning": "gen_ai.usage.reasoning.output_tokens",
    "llm.cost.total": COST,
    "embedding.model_name": REQUEST_MODEL,
    "tool.name": "gen_ai.tool.name",
    "tool.description": "gen_ai.tool.description",
}

RENAME_KEYS = frozenset(RENAMES)
PREVIOUS_KEYS = frozenset(PREVIOUS_NAMES) | {WORKFLOW_NAME}
PROVIDER_KEYS = frozenset({"gen_ai.system", "llm.provider", "llm.system"})
# A span with none of these keys, no key with one of these prefixes, and a provider when it names a model,
# has nothing to normalise: the common case, decided by one set intersection and one pass over key names.
TRIGGER_KEYS = (
    RENAME_KEYS
    | PREVIOUS_KEYS
    | PROVIDER_KEYS
    | {
        "gen_ai.openai.request.response_format",
        "gen_ai.openai.api_base",
        "llm.request.type",
        langchain.SPAN_KIND,
    }
)
TRIGGER_PREFIXES = ("llm.", "openinference.", "embedding.", "gen_ai.prompt.", "gen_ai.completion.")
MAX_CACHED_KEY_SETS = 4096  # distinct attribute key sets whose verdict is remembered
_DIALECT_OF_PREFIX = {"llm": "openinference", "openinference": "openinference", "embedding": "openinference"}

# A model's family name → its provider, for spans that name no provider.
MODEL_FAMILIES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^(gpt-|o\d|chatgpt-|text-embedding-|davinci|babbage|codex-)"), "openai"),
    (re.compile(r"^claude-"), "anthropic"),
    (re.compile(r"^gemini-"), "gcp.gemini"),
    (re.compile(r"^(mistral|mixtral|codestral|ministral|pixtral)"), "mistral_ai"),
    (re.compile(r"^grok-"), "x_ai"),
    (re.compile(r"^deepseek-"), "deepseek"),
    (re.compile(r"^command"), "cohere"),
)

OPENINFERENCE_OPERATIONS = {
    "EMBEDDING": "embeddings",
    "TOOL": "execute_tool",
    "AGENT": "invoke_agent",
    "RETRIEVER": "retrieval",
}
# The ``object`` (OpenAI) or ``type`` (Anthropic) of a provider's reply whose ``id`` is the response id.
PROVIDER_REPLY_OBJECTS = frozenset({"chat.completion", "text_completion", "response", "message"})
LLM_REQUEST_TYPES = {"chat": "chat", "completion": "text_completion", "embedding": "embeddings"}
OUTPUT_TYPES = {"json_object": "json", "json_schema": "json", "text": "text"}
FINISH_REASON_VALUES = {"tool_calls": "tool_call", "function_call": "tool_call"}
INVOCATION_PARAMETERS = {
    "temperature": "gen_ai.request.temperature",
    "top_p": "gen_ai.request.top_p",
    "max_tokens": "gen_ai.request.max_tokens",
    "max_completion_tokens": "gen_ai.request.max_tokens",
    "max_output_tokens": "gen_ai.request.max_tokens",
    "seed": "gen_ai.request.seed",
    "frequency_penalty": "gen_ai.request.frequency_penalty",
    "presence_penalty": "gen_ai.request.presence_penalty",
}

_OPENLLMETRY_MESSAGE = re.compile(r"^gen_ai\.(prompt|completion)\.(\d+)\.(.+)$")
_OPENINFERENCE_MESSAGE = re.compile(r"^llm\.(input|output)_messages\.(\d+)\.message\.(.+)$")
_OPENINFERENCE_TOOL = re.compile(r"^llm\.tools\.(\d+)\.tool\.json_schema$")
_OPENLLMETRY_FUNCTION = re.compile(r"^llm\.request\.functions\.(\d+)\.(name|description|parameters)$")
_TOOL_CALL_FIELD = re.compile(
    r"^tool_calls\.(\d+)\.(?:tool_call\.)?(id|name|arguments|function\.name|function\.arguments)$"
)
_CONTENT_PART = re.compile(r"^contents\.(\d+)\.message_content\.(type|text|image\.image\.url)$")


def normalize(span: Normalization, keys: frozenset[str]) -> None:
    """Apply the rules whose dialect ``keys`` (the span's attribute keys) show."""
    # These two first: their gen_ai.system values are not the provider names other dialects write there.
    if vercel.is_vercel(keys, span.span_name):
        vercel.normalize(span, keys)
    if langchain.is_langsmith(keys):
        langchain.normalize_langsmith(span)
    for old in sorted(keys & RENAME_KEYS):
        span.rename(old, RENAMES[old])
    if keys & PREVIOUS_KEYS:
        _previous_release(span, keys)
    if keys & PROVIDER_KEYS:
        _provider(span)
    if "gen_ai.openai.request.response_format" in keys:
        value = span.get("gen_ai.openai.request.response_format")
        span.put(
            "gen_ai.output.type", OUTPUT_TYPES.get(str(value), str(value)), "gen_ai.openai.request.response_format"
        )
    dialects = {_DIALECT_OF_PREFIX.get(key.split(".", 1)[0]) for key in keys}
    if "openinference" in dialects:
        _openinference(span)
    if "llm.request.type" in keys or any(key.startswith(("gen_ai.prompt.", "gen_ai.completion.")) for key in keys):
        _openllmetry(span)
    if "gen_ai.openai.api_base" in keys:
        _server(span)
    if PROVIDER not in span.attributes and (REQUEST_MODEL in span.attributes or RESPONSE_MODEL in span.attributes):
        _provider_from_model(span)


def needs_normalizing(keys: frozenset[str], span_name: str) -> bool:
    """Whether any rule has work on a span with these attribute keys: the fast test every span takes."""
    return _keys_need_normalizing(keys) or vercel.is_vercel(keys, span_name)


@functools.lru_cache(maxsize=MAX_CACHED_KEY_SETS)
def _keys_need_normalizing(keys: frozenset[str]) -> bool:
    """The part of the test that reads only the keys: cached, as one instrumentation sends the same few key sets."""
    if keys & TRIGGER_KEYS:
        return True
    if PROVIDER not in keys and (REQUEST_MODEL in keys or RESPONSE_MODEL in keys):
        return True
    return any(key.startswith(TRIGGER_PREFIXES) for key in keys)


def _provider(span: Normalization) -> None:
    for key in ("gen_ai.system", "llm.provider", "llm.system"):
        if span.has(key) and key not in span.consumed:
            value = str(span.get(key)).lower()
            span.rename(key, PROVIDER, PROVIDER_NAMES.get(value, value))


def _openinference(span: Normalization) -> None:
    kind = span.get("openinference.span.kind")
    if kind is not None:
        kind = str(kind).upper()
        operation = OPENINFERENCE_OPERATIONS.get(kind)
        if kind == "LLM":
            operation = (
                "text_completion"
                if span.has("llm.prompts") and not span.has("llm.input_messages.0.message.role")
                else "chat"
            )
        elif kind == "AGENT" and langchain.is_graph_node(span.get("metadata")):
            operation = None  # a LangGraph node the instrumentation calls an agent; the graph is the agent
        span.put(OPERATION, operation, "openinference.span.kind")
        if kind == "LLM":
            span.put(RESPONSE_ID, _openinference_response_id(span.get("output.value")))
        elif kind == "TOOL":  # a tool span's input and output are the call's arguments and result
            span.put(TOOL_CALL_ID, span.get("tool_call.id"), "tool_call.id")
            span.put(TOOL_CALL_ARGUMENTS, span.get("input.value"), "input.value")
            # LangChain's tools answer with a ToolMessage, which holds the call id and the result.
            call_id, content = langchain.tool_message(span.get("output.value"))
            span.put(TOOL_CALL_ID, call_id)
            span.put(TOOL_CALL_RESULT, content if call_id else span.get("output.value"), "output.value")
        elif kind == "AGENT":
            span.put(AGENT_NAME, span.get("agent.name") or span.get("graph.node.id"), "agent.name")
    span.put(CONVERSATION_ID, span.get("session.id"), "session.id")
    reason = span.get("llm.finish_reason")
    if isinstance(reason, str):
        span.put(FINISH_REASONS, [reason], "llm.finish_reason")
    if span.has("embedding.invocation_parameters"):
        embedding = parse_json(span.get("embedding.invocation_parameters"))
        if isinstance(embedding, dict) and isinstance(embedding.get("encoding_format"), str):
            span.put("gen_ai.request.encoding_formats", [embedding["encoding_format"]])
    parameters = parse_json(span.get("llm.invocation_parameters"))
    if isinstance(parameters, dict):
        for name, key in INVOCATION_PARAMETERS.items():
            if isinstance(parameters.get(name), int | float) and not isinstance(parameters.get(name), bool):
                span.put(key, parameters[name])
        stop = parameters.get("stop")
        if isinstance(stop, str):
            stop = [stop]
        if isinstance(stop, list) and all(isinstance(s, str) for s in stop):
            span.put("gen_ai.request.stop_sequences", stop)
        if isinstance(parameters.get("model"), str):
            span.put(REQUEST_MODEL, parameters["model"])
        # The JSON stays: it holds more than the conventions have names for (tools, response formats...).
    if span.has("llm.model_name"):
        model = span.get("llm.model_name")
        span.put(RESPONSE_MODEL, model, "llm.model_name")
        span.put(REQUEST_MODEL, model)
    messages = _indexed(span, _OPENINFERENCE_MESSAGE)
    if messages.get("input"):
        span.put(INPUT_MESSAGES, json.dumps([_openinference_message(m) for m in messages["input"]]))
    if messages.get("output"):
        output = [_openinference_message(m) for m in messages["output"]]
        span.put(OUTPUT_MESSAGES, json.dumps(output))
    tools = []
    for key in [k for k in span.attributes if _OPENINFERENCE_TOOL.match(k)]:
        schema = parse_json(span.get(key))
        span.consumed.add(key)
        if isinstance(schema, dict):
            tools.append(_tool_definition(schema))
    if tools:
        span.put(TOOL_DEFINITIONS, json.dumps(tools))


def _openinference_response_id(output: Any) -> str | None:
    """The provider's response id in an OpenInference model call's output: the reply, or LangChain's LLMResult."""
    if not isinstance(output, str) or not output.startswith("{"):
        return None
    decoded = parse_json(output)
    if not isinstance(decoded, dict):
        return None
    if "generations" in decoded:
        return langchain.response_id(decoded)
    kind = decoded.get("object", decoded.get("type"))
    if kind in PROVIDER_REPLY_OBJECTS and isinstance(decoded.get("id"), str) and decoded["id"]:
        return str(decoded["id"])
    return None


def _openllmetry(span: Normalization) -> None:
    request_type = span.get("llm.request.type")
    if isinstance(request_type, str):
        span.put(OPERATION, LLM_REQUEST_TYPES.get(request_type), "llm.request.type")
    messages = _indexed(span, _OPENLLMETRY_MESSAGE)
    if messages.get("prompt"):
        span.put(INPUT_MESSAGES, json.dumps([openllmetry_message(m) for m in messages["prompt"]]))
    if messages.get("completion"):
        completions = messages["completion"]
        span.put(OUTPUT_MESSAGES, json.dumps([openllmetry_message(m, output=True) for m in completions]))
        reasons = [str(m["finish_reason"]) for m in completions if m.get("finish_reason")]
        if reasons:
            span.put(FINISH_REASONS, reasons)
    functions: dict[int, dict[str, Any]] = {}
    for key in list(span.attributes):
        match = _OPENLLMETRY_FUNCTION.match(key)
        if match:
            functions.setdefault(int(match.group(1)), {})[match.group(2)] = span.get(key)
            span.consumed.add(key)
    if functions:
        definitions = []
        for index in sorted(functions):
            function = functions[index]
            definition: dict[str, Any] = {"type": "function", "name": function.get("name")}
            if "description" in function:
                definition["description"] = function["description"]
            if "parameters" in function:
                definition["parameters"] = parse_json(function["parameters"]) or function["parameters"]
            definitions.append(definition)
        span.put(TOOL_DEFINITIONS, json.dumps(definitions))


def _previous_release(span: Normalization, keys: frozenset[str]) -> None:
    """Names and values of the previous conventions release (and this project's earlier ones) → the newest."""
    for old in sorted(keys & PREVIOUS_NAMES.keys()):
        span.rename(old, PREVIOUS_NAMES[old])
    operation = span.get(OPERATION)
    if isinstance(operation, str) and operation in PREVIOUS_OPERATIONS:
        span.replace(OPERATION, PREVIOUS_OPERATIONS[operation])


def _server(span: Normalization) -> None:
    """OpenLLMetry's gen_ai.openai.api_base URL as server.address and server.port."""
    url = span.get("gen_ai.openai.api_base")
    if not isinstance(url, str):
        return
    try:
        parts = urlsplit(url)
    except ValueError:
        return
    span.put("server.address", parts.hostname, "gen_ai.openai.api_base")
    try:
        span.put("server.port", parts.port or (443 if parts.scheme == "https" else 80))
    except ValueError:  # a port that is not a number: the address alone
        pass


def _provider_from_model(span: Normalization) -> None:
    model = span.get(RESPONSE_MODEL) or span.get(REQUEST_MODEL)
    if not isinstance(model, str):
        return
    name = model.lower().rsplit("/", 1)[-1]  # "openai/gpt-4o" → "gpt-4o"
    for pattern, provider in MODEL_FAMILIES:
        if pattern.match(name):
            span.put(PROVIDER, provider)
            return


def _indexed(span: Normalization, pattern: re.Pattern[str]) -> dict[str, list[dict[str, Any]]]:
    """Indexed message keys (``prefix.N.field``) gathered into lists of field mappings, per direction."""
    found: dict[str, dict[int, dict[str, Any]]] = {}
    for key in list(span.attributes):
        match = pattern.match(key)
        if match:
            direction, index, field = match.group(1), int(match.group(2)), match.group(3)
            found.setdefault(direction, {}).setdefault(index, {})[field] = span.get(key)
            span.consumed.add(key)
    return {direction: [fields[i] for i in sorted(fields)] for direction, fields in found.items()}


def _tool_calls(fields: dict[str, Any]) -> list[dict[str, Any]]:
    calls: dict[int, dict[str, Any]] = {}
    for field, value in fields.items():
        match = _TOOL_CALL_FIELD.match(field)
        if match:
            name = match.group(2).removeprefix("function.")
            calls.setdefault(int(match.group(1)), {})[name] = value
    return [
        {
            "type": "tool_call",
            "id": call.get("id"),
            "name": call.get("name"),
            "arguments": parse_json(call.get("arguments"))
            if parse_json(call.get("arguments")) is not None
            else call.get("arguments"),
        }
        for _, call in sorted(calls.items())
    ]


def openllmetry_message(fields: dict[str, Any], output: bool = False) -> dict[str, Any]:
    """One message in the conventions' shape from its flat fields (``role``, ``content``, ``tool_call_id``,
    ``finish_reason``, ``tool_calls.N.function.name``...): OpenLLMetry's indexed keys, the older events' bodies."""
    role = fields.get("role") or ("assistant" if output else "user")
    parts: list[dict[str, Any]] = []
    content = fields.get("content")
    if role == "tool":
        parts.append({"type": "tool_call_response", "id": fields.get("tool_call_id"), "response": content})
    elif content not in (None, ""):
        parts.extend(_content_parts(content))
    parts.extend(_tool_calls(fields))
    message: dict[str, Any] = {"role": role, "parts": parts}
    if output:
        reason = str(fields.get("finish_reason") or "stop")
        message["finish_reason"] = FINISH_REASON_VALUES.get(reason, reason)
    return message


def _openinference_message(fields: dict[str, Any]) -> dict[str, Any]:
    role = fields.get("role") or "user"
    parts: list[dict[str, Any]] = []
    if role == "tool":
        parts.append(
            {"type": "tool_call_response", "id": fields.get("tool_call_id"), "response": fields.get("content")}
        )
        return {"role": role, "parts": parts}
    if fields.get("content") not in (None, ""):
        parts.extend(_content_parts(fields["content"]))
    contents: dict[int, dict[str, Any]] = {}
    for field, value in fields.items():
        match = _CONTENT_PART.match(field)
        if match:
            contents.setdefault(int(match.group(1)), {})[match.group(2)] = value
    for _, part in sorted(contents.items()):
        if part.get("type") == "image" and part.get("image.image.url"):
            parts.append({"type": "uri", "modality": "image", "uri": part["image.image.url"]})
        elif part.get("text") is not None:
            parts.append({"type": "text", "content": part["text"]})
    parts.extend(_tool_calls(fields))
    message: dict[str, Any] = {"role": role, "parts": parts}
    if isinstance(fields.get("name"), str):
        message["name"] = fields["name"]
    return message


def _content_parts(content: Any) -> list[dict[str, Any]]:
    """OpenLLMetry writes content as text, or as the JSON of an OpenAI content array."""
    decoded = parse_json(content) if isinstance(content, str) and content.startswith("[") else None
    if isinstance(decoded, list):
        parts = []
        for part in decoded:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                parts.append({"type": "text", "content": part["text"]})
            elif isinstance(part, dict) and isinstance(part.get("image_url"), dict):
                parts.append({"type": "uri", "modality": "image", "uri": part["image_url"].get("url")})
        return parts
    return [{"type": "text", "content": str(content)}]


def _tool_definition(schema: dict[str, Any]) -> dict[str, Any]:
    """An OpenAI-style tool ({"type": "function", "function": {...}}) as the conventions' definition."""
    function: dict[str, Any] = schema["function"] if isinstance(schema.get("function"), dict) else schema
    definition: dict[str, Any] = {"type": "function", "name": function.get("name")}
    for key in ("description", "parameters"):
        if key in function:
            definition[key] = function[key]
    return definition
