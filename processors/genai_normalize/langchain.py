"""LangChain and LangGraph: LangSmith's OpenTelemetry export, and LangChain's messages wherever they appear.

LangSmith (``LANGSMITH_TRACING_MODE=otel``) writes one span per LangChain run, its kind in
``langsmith.span.kind``, and ``gen_ai.*`` names with LangChain's own values:

- ``llm``: a model call, already ``gen_ai.operation.name: chat``. Its ``gen_ai.prompt`` (the messages
  in LangChain's serialised form) and ``gen_ai.completion`` (the generations) become
  ``gen_ai.input.messages`` (system messages: ``gen_ai.system_instructions``) and
  ``gen_ai.output.messages``.
- ``tool``: ``execute_tool`` with the call id; ``gen_ai.prompt`` holds the arguments and
  ``gen_ai.completion`` the ToolMessage, whose content is the result.
- ``chain``: ``gen_ai.operation.name: chain``, which is no GenAI operation. The graph itself (the
  root LangGraph run, no ``langgraph_node``) is the agent (``invoke_agent``, named after the run);
  every other chain (nodes, prompts, sequences) loses the operation. Chains that wrap a model
  carry its usage again: those stay on the span but are no call.

``gen_ai.system: langchain`` on chains and tools names no model provider and is dropped.

OpenInference's LangChain instrumentation records a tool's output as the ToolMessage's JSON
(``tool_message`` reads the call id and the content out of it), and calls LangGraph's ``agent`` node an
AGENT span on every step: ``is_graph_node`` tells such a node from the graph, the one agent invocation.
"""

from __future__ import annotations

import json
from typing import Any

from collector.jsonvalues import parse_json
from processors.genai_normalize.normalization import (
    AGENT_NAME,
    INPUT_MESSAGES,
    OPERATION,
    OUTPUT_MESSAGES,
    SYSTEM_INSTRUCTIONS,
    TOOL_CALL_ARGUMENTS,
    TOOL_CALL_RESULT,
    Normalization,
    json_or_text,
)

SPAN_KIND = "langsmith.span.kind"
GRAPH_NODE = "langsmith.metadata.langgraph_node"
INTEGRATION = "langsmith.metadata.ls_integration"
RUN_NAME = "langsmith.trace.name"
PROMPT = "gen_ai.prompt"
COMPLETION = "gen_ai.completion"
SYSTEM = "gen_ai.system"
LANGCHAIN_SYSTEM = "langchain"

# LangChain message types → the conventions' roles.
ROLES = {"human": "user", "ai": "assistant", "system": "system", "tool": "tool", "function": "tool"}
FINISH_REASONS_OUT = {"tool_calls": "tool_call", "function_call": "tool_call"}


def is_langsmith(keys: frozenset[str]) -> bool:
    return SPAN_KIND in keys


def normalize_langsmith(span: Normalization) -> None:
    kind = str(span.get(SPAN_KIND) or "").lower()
    if span.get(SYSTEM) == LANGCHAIN_SYSTEM:
        span.consumed.add(SYSTEM)
    if kind == "llm":
        _model_call(span)
    elif kind == "tool":
        span.put(TOOL_CALL_ARGUMENTS, span.get(PROMPT), PROMPT)
        completion = parse_json(span.get(COMPLETION))
        output = completion.get("output") if isinstance(completion, dict) else None
        content = _message_fields(output).get("content") if output is not None else None
        span.put(TOOL_CALL_RESULT, content if content is not None else span.get(COMPLETION), COMPLETION)
    elif kind == "chain" and span.get(OPERATION) == "chain":
        if span.get(INTEGRATION) == "langgraph" and not span.has(GRAPH_NODE):
            span.replace(OPERATION, "invoke_agent")
            span.put(AGENT_NAME, span.get(RUN_NAME))
        elif not span.keep_original:
            span.consumed.add(OPERATION)


def _model_call(span: Normalization) -> None:
    prompt = parse_json(span.get(PROMPT))
    batches = prompt.get("messages") if isinstance(prompt, dict) else None
    if isinstance(batches, list) and batches and isinstance(batches[0], list):
        messages = [_message_fields(m) for m in batches[0]]
        system = [part for m in messages if m.get("type") == "system" for part in _text_parts(m.get("content"))]
        span.put(SYSTEM_INSTRUCTIONS, json.dumps(system) if system else None)
        others = [conventions_message(m) for m in messages if m.get("type") != "system"]
        span.put(INPUT_MESSAGES, json.dumps(others), PROMPT)
    completion = parse_json(span.get(COMPLETION))
    generations = completion.get("generations") if isinstance(completion, dict) else None
    if isinstance(generations, list) and generations and isinstance(generations[0], list):
        outputs = []
        for generation in generations[0]:
            if not isinstance(generation, dict):
                continue
            message = conventions_message(_message_fields(generation.get("message")), role="assistant")
            info = generation.get("generation_info")
            reason = str(info.get("finish_reason") or "stop") if isinstance(info, dict) else "stop"
            message["finish_reason"] = FINISH_REASONS_OUT.get(reason, reason)
            outputs.append(message)
        span.put(OUTPUT_MESSAGES, json.dumps(outputs), COMPLETION)


def _message_fields(message: Any) -> dict[str, Any]:
    """A LangChain message's fields, from its serialised (``kwargs``) or dumped (``data``) form, or as is."""
    if not isinstance(message, dict):
        return {}
    for wrapper in ("kwargs", "data"):
        inner = message.get(wrapper)
        if isinstance(inner, dict):
            return {"type": message.get("type") if wrapper == "data" else inner.get("type"), **inner}
    return message


def conventions_message(fields: dict[str, Any], role: str | None = None) -> dict[str, Any]:
    """A LangChain message (its fields) in the conventions' shape: role and parts."""
    role = role or ROLES.get(str(fields.get("type")), "user")
    if role == "tool":
        part = {"type": "tool_call_response", "id": fields.get("tool_call_id"), "response": fields.get("content")}
        return {"role": role, "parts": [part]}
    parts = _text_parts(fields.get("content"))
    for call in fields.get("tool_calls") or []:
        if isinstance(call, dict):
            arguments = json_or_text(call.get("args"))
            parts.append({"type": "tool_call", "id": call.get("id"), "name": call.get("name"), "arguments": arguments})
    return {"role": role, "parts": parts}


def _text_parts(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "content": content}] if content else []
    parts = []
    for item in content if isinstance(content, list) else []:
        if isinstance(item, dict) and item.get("type") == "text" and isinstance(item.get("text"), str):
            parts.append({"type": "text", "content": item["text"]})
        elif isinstance(item, str):
            parts.append({"type": "text", "content": item})
    return parts


def is_graph_node(metadata: Any) -> bool:
    """Whether OpenInference's ``metadata`` (LangChain's run metadata, JSON) places the span inside a LangGraph node."""
    if not isinstance(metadata, str) or '"langgraph_node"' not in metadata:
        return False
    decoded = parse_json(metadata)
    return isinstance(decoded, dict) and "langgraph_node" in decoded


def tool_message(value: Any) -> tuple[str | None, Any]:
    """The call id and content of a LangChain ToolMessage in JSON (dumped, or under ``output``); (None, None)."""
    decoded = parse_json(value) if isinstance(value, str) and value.startswith("{") else None
    if isinstance(decoded, dict) and isinstance(decoded.get("output"), dict):
        decoded = decoded["output"]
    fields = _message_fields(decoded)
    if fields.get("type") != "tool" or not isinstance(fields.get("tool_call_id"), str):
        return None, None
    return fields["tool_call_id"], fields.get("content")
