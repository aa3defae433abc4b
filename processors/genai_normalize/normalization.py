"""What every dialect rule works with: one span's attributes, the source keys consumed, the target names.

A rule reads source keys and writes current ones through ``Normalization``; a
current key the span already has always wins. ``Normalization`` collects which
source keys were consumed, so the processor can drop them (or keep them, when
configured).
"""

from __future__ import annotations

from typing import Any

from collector.jsonvalues import parse_json
from collector.pdata import SpanAttributes

OPERATION = "gen_ai.operation.name"
PROVIDER = "gen_ai.provider.name"
REQUEST_MODEL = "gen_ai.request.model"
RESPONSE_MODEL = "gen_ai.response.model"
INPUT_MESSAGES = "gen_ai.input.messages"
OUTPUT_MESSAGES = "gen_ai.output.messages"
SYSTEM_INSTRUCTIONS = "gen_ai.system_instructions"
TOOL_DEFINITIONS = "gen_ai.tool.definitions"
FINISH_REASONS = "gen_ai.response.finish_reasons"
INPUT_TOKENS = "gen_ai.usage.input_tokens"
OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
# A reported cost in USD. The newest conventions' gen_ai.usage.cost.amount (with .currency) replaces it;
# genai_cost reads an amount under this name as reported.
COST = "gen_ai.usage.cost"
CACHE_READ_TOKENS = "gen_ai.usage.cache_read.input_tokens"
CACHE_WRITE_TOKENS = "gen_ai.usage.cache_write.input_tokens"
REASONING_TOKENS = "gen_ai.usage.reasoning.output_tokens"
RESPONSE_ID = "gen_ai.response.id"
TIME_TO_FIRST_CHUNK = "gen_ai.response.time_to_first_chunk"
AGENT_NAME = "gen_ai.agent.name"
WORKFLOW_NAME = "gen_ai.workflow.name"
CONVERSATION_ID = "gen_ai.conversation.id"
TOOL_NAME = "gen_ai.tool.name"
TOOL_TYPE = "gen_ai.tool.type"
TOOL_CALL_ID = "gen_ai.tool.call.id"
TOOL_CALL_ARGUMENTS = "gen_ai.tool.call.arguments"
TOOL_CALL_RESULT = "gen_ai.tool.call.result"

# Names of the previous release (open-telemetry/semantic-conventions v1.41.0) → the newest release's
# (docs/semconv.md lists them all; cost is genai_cost's to read in either spelling).
PREVIOUS_NAMES: dict[str, str] = {"gen_ai.usage.cache_creation.input_tokens": CACHE_WRITE_TOKENS}
PREVIOUS_OPERATIONS = {"invoke_workflow": "handle_conversation_turn"}

# Provider names other dialects use → gen_ai.provider.name.
PROVIDER_NAMES = {
    "openai": "openai",
    "anthropic": "anthropic",
    "azure": "azure.ai.openai",
    "az.ai.openai": "azure.ai.openai",
    "az.ai.inference": "azure.ai.inference",
    "google": "gcp.gemini",
    "gemini": "gcp.gemini",
    "vertex_ai": "gcp.vertex_ai",
    "vertexai": "gcp.vertex_ai",
    "aws": "aws.bedrock",
    "bedrock": "aws.bedrock",
    "cohere": "cohere",
    "mistralai": "mistral_ai",
    "mistral": "mistral_ai",
    "xai": "x_ai",
    "deepseek": "deepseek",
    "groq": "groq",
    "perplexity": "perplexity",
    "watsonx": "ibm.watsonx.ai",
}


class Normalization:
    """One span's attributes and the source keys rules have consumed."""

    def __init__(self, attributes: SpanAttributes, name: str, keep_original: bool) -> None:
        self.attributes = attributes
        self.span_name = name
        self.keep_original = keep_original
        self.consumed: set[str] = set()

    def has(self, key: str) -> bool:
        return key in self.attributes

    def get(self, key: str) -> Any:
        return self.attributes.get(key)

    def put(self, key: str, value: Any, *sources: str) -> None:
        """Set ``key`` unless the span already has it; ``sources`` were read to make it."""
        self.consumed.update(sources)
        if value is None or value == "" or key in self.attributes:
            return
        self.attributes.set(key, value)

    def replace(self, key: str, value: Any) -> None:
        """Overwrite ``key``: for a dialect that writes its own values under a current name."""
        self.attributes.set(key, value)

    def rename(self, old: str, new: str, value: Any = None) -> None:
        """``old`` becomes ``new`` (with ``value``, if given): in place when the original is not kept."""
        if new in self.attributes:
            self.consumed.add(old)
        elif self.keep_original:
            self.attributes.set(new, self.attributes.get(old) if value is None else value)
        else:
            self.attributes.rename(old, new)
            if value is not None and value != self.attributes.get(new):
                self.attributes.set(new, value)


def json_or_text(value: Any) -> Any:
    """Tool-call arguments as an object when they are JSON (the conventions prefer it), else as they came."""
    decoded = parse_json(value)
    return decoded if decoded is not None else value
