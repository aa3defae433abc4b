"""Agent spans for the loop-detection tests: an agent's LLM and tool calls, as the GenAI conventions record them."""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status, TracesData

from collector.pdata import set_any_value

SECOND = 1_000_000_000
_call_ids = itertools.count(1)


def _span(trace_id: bytes, name: str, start: int, end: int, attributes: dict[str, Any]) -> Span:
    span = Span(trace_id=trace_id, span_id=os.urandom(8), name=name, start_time_unix_nano=start, end_time_unix_nano=end)
    for key, value in attributes.items():
        pair = span.attributes.add()
        pair.key = key
        set_any_value(pair.value, json.dumps(value) if isinstance(value, list) else value)
    return span


@dataclass
class Agent:
    """Builds the spans of one agent run, in the order they end; ``messages`` is its growing conversation."""

    model: str = "gpt-4o"
    conversation_id: str | None = None
    trace_id: bytes = field(default_factory=lambda: os.urandom(16))
    clock: int = 1_700_000_000 * SECOND
    messages: list[dict[str, Any]] = field(default_factory=list)
    spans: list[Span] = field(default_factory=list)
    agent_start: int = 0

    def __post_init__(self) -> None:
        self.agent_start = self.clock
        self.messages.append({"role": "user", "parts": [{"type": "text", "content": "find the report"}]})

    def _common(self) -> dict[str, Any]:
        return {"gen_ai.conversation.id": self.conversation_id} if self.conversation_id else {}

    def chat(
        self, calls: Sequence[tuple[str, dict[str, Any]]] = (), text: str = "", seconds: float = 1.0, tokens: int = 100
    ) -> list[str]:
        """One LLM call on the conversation so far, answering ``text`` or asking for ``calls``; their ids."""
        start, self.clock = self.clock, self.clock + int(seconds * SECOND)
        ids = [f"call_{next(_call_ids)}" for _ in calls]
        parts: list[dict[str, Any]] = [
            {"type": "tool_call", "id": call_id, "name": name, "arguments": arguments}
            for call_id, (name, arguments) in zip(ids, calls, strict=True)
        ]
        if text:
            parts.insert(0, {"type": "text", "content": text})
        reply = {"role": "assistant", "parts": parts}
        attributes = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": self.model,
            "gen_ai.usage.input_tokens": tokens,
            "gen_ai.usage.output_tokens": 10,
            "gen_ai.usage.cost": 0.001,
            "gen_ai.input.messages": list(self.messages),
            "gen_ai.output.messages": [{**reply, "finish_reason": "tool_call" if calls else "stop"}],
            **self._common(),
        }
        self.spans.append(_span(self.trace_id, f"chat {self.model}", start, self.clock, attributes))
        self.messages.append(reply)
        self.clock += SECOND // 100
        return ids

    def tool(self, call_id: str | None, name: str, arguments: dict[str, Any], result: str, error: bool = False) -> None:
        """The execute_tool span of one call, and its result added to the conversation."""
        start, self.clock = self.clock, self.clock + SECOND // 10
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": name,
            "gen_ai.tool.call.arguments": json.dumps(arguments),
            **self._common(),
        }
        if call_id:
            attributes["gen_ai.tool.call.id"] = call_id
        if error:
            attributes["error.type"] = "ToolError"
        span = _span(self.trace_id, f"execute_tool {name}", start, self.clock, attributes)
        if error:
            span.status.code = Status.STATUS_CODE_ERROR
        self.spans.append(span)
        self.messages.append(
            {"role": "tool", "parts": [{"type": "tool_call_response", "id": call_id, "response": result}]}
        )
        self.clock += SECOND // 100

    def step(self, name: str, arguments: dict[str, Any], result: str, error: bool = False) -> None:
        """An LLM call asking for one tool call, then that call."""
        [call_id] = self.chat([(name, arguments)])
        self.tool(call_id, name, arguments, result, error)

    def finish(self) -> Span:
        """The invoke_agent span around everything so far (it ends last)."""
        attributes = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "researcher", **self._common()}
        span = _span(self.trace_id, "invoke_agent researcher", self.agent_start, self.clock, attributes)
        self.spans.append(span)
        return span


def batch(spans: list[Span]) -> TracesData:
    traces = TracesData()
    resource_spans = traces.resource_spans.add()
    pair = resource_spans.resource.attributes.add()
    pair.key, pair.value.string_value = "service.name", "agent"
    scope = resource_spans.scope_spans.add()
    for span in spans:
        scope.spans.add().CopyFrom(span)
    return traces
