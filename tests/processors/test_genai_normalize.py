"""genai_normalize: each dialect's keys onto the current GenAI conventions; everything else untouched."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from opentelemetry.proto.trace.v1.trace_pb2 import Span, TracesData

from collector.component import ComponentSettings
from collector.pdata import SpanAttributes, set_any_value
from processors.genai_normalize import GenAiNormalizeConfig, GenAiNormalizeProcessor
from tests.conftest import RecordingConsumer


def _normalized(
    make_settings: Callable[..., ComponentSettings], attributes: dict[str, Any], name: str = "span", keep: bool = False
) -> dict[str, Any]:
    span = Span(name=name)
    for key, value in attributes.items():
        pair = span.attributes.add()
        pair.key = key
        set_any_value(pair.value, value)
    downstream = RecordingConsumer()
    processor = GenAiNormalizeProcessor(
        make_settings("genai_normalize", "processor"), GenAiNormalizeConfig(keep_original=keep), downstream
    )
    traces = TracesData()
    traces.resource_spans.add().scope_spans.add().spans.append(span)
    asyncio.run(processor.consume(traces))
    [out] = downstream.spans()
    values = SpanAttributes(out)
    return {key: values.get(key) for key in values.by_key}


def test_deprecated_names_become_current_ones(make_settings: Callable[..., ComponentSettings]) -> None:
    values = _normalized(
        make_settings,
        {
            "gen_ai.system": "openai",
            "gen_ai.request.model": "gpt-4o",
            "gen_ai.usage.prompt_tokens": 12,
            "gen_ai.usage.completion_tokens": 5,
            "gen_ai.openai.request.seed": 7,
            "gen_ai.openai.response.system_fingerprint": "fp_1",
            "gen_ai.openai.request.response_format": "json_object",
        },
    )
    assert values == {
        "gen_ai.request.model": "gpt-4o",
        "gen_ai.provider.name": "openai",
        "gen_ai.usage.input_tokens": 12,
        "gen_ai.usage.output_tokens": 5,
        "gen_ai.request.seed": 7,
        "openai.response.system_fingerprint": "fp_1",
        "gen_ai.output.type": "json",
    }


def test_current_names_win_and_originals_can_be_kept(make_settings: Callable[..., ComponentSettings]) -> None:
    values = _normalized(
        make_settings,
        {"gen_ai.system": "az.ai.openai", "gen_ai.provider.name": "azure.ai.openai", "gen_ai.usage.prompt_tokens": 3},
        keep=True,
    )
    assert values["gen_ai.provider.name"] == "azure.ai.openai"
    assert values["gen_ai.system"] == "az.ai.openai"
    assert values["gen_ai.usage.prompt_tokens"] == 3 and values["gen_ai.usage.input_tokens"] == 3


def test_openllmetry_indexed_messages_become_json_messages(make_settings: Callable[..., ComponentSettings]) -> None:
    values = _normalized(
        make_settings,
        {
            "gen_ai.system": "openai",
            "llm.request.type": "chat",
            "gen_ai.prompt.0.role": "system",
            "gen_ai.prompt.0.content": "Be brief.",
            "gen_ai.prompt.1.role": "user",
            "gen_ai.prompt.1.content": "Weather in Paris?",
            "gen_ai.completion.0.role": "assistant",
            "gen_ai.completion.0.finish_reason": "tool_calls",
            "gen_ai.completion.0.tool_calls.0.id": "call_1",
            "gen_ai.completion.0.tool_calls.0.name": "get_weather",
            "gen_ai.completion.0.tool_calls.0.arguments": '{"city": "Paris"}',
            "llm.request.functions.0.name": "get_weather",
            "llm.request.functions.0.parameters": '{"type": "object"}',
            "llm.usage.total_tokens": 30,
        },
    )
    assert values["gen_ai.operation.name"] == "chat"
    assert json.loads(values["gen_ai.input.messages"]) == [
        {"role": "system", "parts": [{"type": "text", "content": "Be brief."}]},
        {"role": "user", "parts": [{"type": "text", "content": "Weather in Paris?"}]},
    ]
    assert json.loads(values["gen_ai.output.messages"]) == [
        {
            "role": "assistant",
            "parts": [{"type": "tool_call", "id": "call_1", "name": "get_weather", "arguments": {"city": "Paris"}}],
            "finish_reason": "tool_call",
        }
    ]
    assert values["gen_ai.response.finish_reasons"] == ["tool_calls"]
    assert json.loads(values["gen_ai.tool.definitions"]) == [
        {"type": "function", "name": "get_weather", "parameters": {"type": "object"}}
    ]
    assert not [key for key in values if key.startswith(("gen_ai.prompt.", "gen_ai.completion.", "llm.request."))]
    assert values["llm.usage.total_tokens"] == 30  # unknown keys stay


def test_openinference_spans(make_settings: Callable[..., ComponentSettings]) -> None:
    values = _normalized(
        make_settings,
        {
            "openinference.span.kind": "LLM",
            "llm.provider": "openai",
            "llm.system": "openai",
            "llm.model_name": "gpt-4o-mini-2024-07-18",
            "llm.invocation_parameters": '{"model": "gpt-4o-mini", "temperature": 0.2, "max_tokens": 50}',
            "llm.input_messages.0.message.role": "user",
            "llm.input_messages.0.message.content": "Hi",
            "llm.output_messages.0.message.role": "assistant",
            "llm.output_messages.0.message.content": "Hello!",
            "llm.token_count.prompt": 9,
            "llm.token_count.completion": 3,
            "llm.token_count.prompt_details.cache_read": 4,
            "llm.tools.0.tool.json_schema": '{"type": "function", "function": {"name": "f", "parameters": {}}}',
            "input.value": "{}",
        },
    )
    assert values["gen_ai.operation.name"] == "chat"
    assert values["gen_ai.provider.name"] == "openai"
    assert values["gen_ai.request.model"] == "gpt-4o-mini"
    assert values["gen_ai.response.model"] == "gpt-4o-mini-2024-07-18"
    assert values["gen_ai.request.temperature"] == 0.2 and values["gen_ai.request.max_tokens"] == 50
    assert (values["gen_ai.usage.input_tokens"], values["gen_ai.usage.output_tokens"]) == (9, 3)
    assert values["gen_ai.usage.cache_read.input_tokens"] == 4
    assert json.loads(values["gen_ai.input.messages"]) == [
        {"role": "user", "parts": [{"type": "text", "content": "Hi"}]}
    ]
    assert json.loads(values["gen_ai.output.messages"])[0]["parts"] == [{"type": "text", "content": "Hello!"}]
    assert json.loads(values["gen_ai.tool.definitions"]) == [{"type": "function", "name": "f", "parameters": {}}]
    assert values["input.value"] == "{}"
    # Only the invocation parameters stay: they hold more than the conventions name.
    assert [key for key in values if key.startswith(("llm.", "openinference."))] == ["llm.invocation_parameters"]


def test_openinference_embedding_and_tool_spans(make_settings: Callable[..., ComponentSettings]) -> None:
    embedding = _normalized(make_settings, {"openinference.span.kind": "EMBEDDING", "embedding.model_name": "m"})
    tool = _normalized(
        make_settings,
        {
            "openinference.span.kind": "TOOL",
            "tool.name": "search",
            "input.value": '{"q": "x"}',
            "output.value": "3 results",
        },
    )
    assert embedding["gen_ai.operation.name"] == "embeddings"
    assert (tool["gen_ai.operation.name"], tool["gen_ai.tool.name"]) == ("execute_tool", "search")
    assert (tool["gen_ai.tool.call.arguments"], tool["gen_ai.tool.call.result"]) == ('{"q": "x"}', "3 results")
    assert "input.value" not in tool and "output.value" not in tool


def test_vercel_ai_sdk_spans(make_settings: Callable[..., ComponentSettings]) -> None:
    values = _normalized(
        make_settings,
        {
            "ai.model.provider": "anthropic.messages",
            "ai.model.id": "claude-sonnet-4-5",
            "ai.usage.promptTokens": 20,
            "ai.usage.completionTokens": 4,
            "ai.response.finishReason": "stop",
        },
        name="ai.generateText.doGenerate",
    )
    assert values == {
        "gen_ai.provider.name": "anthropic",
        "gen_ai.request.model": "claude-sonnet-4-5",
        "gen_ai.usage.input_tokens": 20,
        "gen_ai.usage.output_tokens": 4,
        "gen_ai.response.finish_reasons": ["stop"],
        "gen_ai.operation.name": "chat",
    }


def test_a_span_naming_only_a_model_gets_its_provider(make_settings: Callable[..., ComponentSettings]) -> None:
    assert (
        _normalized(make_settings, {"gen_ai.request.model": "claude-3-5-haiku"})["gen_ai.provider.name"] == "anthropic"
    )
    assert _normalized(make_settings, {"gen_ai.request.model": "openai/gpt-4o"})["gen_ai.provider.name"] == "openai"
    assert "gen_ai.provider.name" not in _normalized(make_settings, {"gen_ai.request.model": "my-model"})


def test_other_spans_pass_untouched(make_settings: Callable[..., ComponentSettings]) -> None:
    attributes = {"http.request.method": "GET", "url.path": "/health", "llmish": "x"}
    assert _normalized(make_settings, attributes) == attributes


def test_the_previous_conventions_release_is_mapped_forward(make_settings: Callable[..., ComponentSettings]) -> None:
    # v1.41.0's names (docs/semconv.md).
    values = _normalized(
        make_settings, {"gen_ai.operation.name": "chat", "gen_ai.usage.cache_creation.input_tokens": 12}
    )
    assert values == {"gen_ai.operation.name": "chat", "gen_ai.usage.cache_write.input_tokens": 12}
    workflow = _normalized(
        make_settings, {"gen_ai.operation.name": "invoke_workflow", "gen_ai.workflow.name": "weather_agent"}
    )
    assert workflow["gen_ai.operation.name"] == "handle_conversation_turn"
    # The dialects land on the newest names too.
    openinference = _normalized(
        make_settings,
        {"openinference.span.kind": "LLM", "llm.cost.total": 0.5, "llm.token_count.prompt_details.cache_write": 3},
    )
    assert openinference["gen_ai.usage.cost"] == 0.5  # a reported cost: genai_cost keeps it
    assert openinference["gen_ai.usage.cache_write.input_tokens"] == 3
    kept = _normalized(make_settings, {"gen_ai.usage.cache_creation.input_tokens": 12}, keep=True)
    assert kept == {"gen_ai.usage.cache_creation.input_tokens": 12, "gen_ai.usage.cache_write.input_tokens": 12}
