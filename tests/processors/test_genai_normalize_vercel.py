"""genai_normalize on the Vercel AI SDK's spans: wrappers are agents, provider calls are calls, tools are tools.

Mostly on the SDK's own spans (tests/data/framework_traces/vercel_ai, recorded with ``ai`` and
``@ai-sdk/openai``, generateText and streamText); the provider ids of other providers and the prompt
format of SDK versions before 5 on spans written here the way those versions write them.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest
from opentelemetry.proto.trace.v1.trace_pb2 import Span, TracesData

from collector.component import ComponentSettings
from collector.pdata import SpanAttributes
from processors.genai_normalize import GenAiNormalizeConfig, GenAiNormalizeProcessor
from processors.genai_normalize.vercel import provider_name
from tests.conftest import RecordingConsumer
from tests.data import agent_traces, framework_traces
from tests.processors.test_genai_normalize import _normalized

RUNS = [run for run in framework_traces.manifest() if run.framework == "vercel_ai"]
USAGE = ("gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens")


def _normalize_run(make_settings: Callable[..., ComponentSettings], run: framework_traces.Recording) -> list[Span]:
    downstream = RecordingConsumer()
    processor = GenAiNormalizeProcessor(
        make_settings("genai_normalize", "processor"), GenAiNormalizeConfig(), downstream
    )
    request = framework_traces.spans_of(run)
    asyncio.run(processor.consume(TracesData(resource_spans=request.resource_spans)))
    return downstream.spans()


def _values(span: Span) -> dict[str, Any]:
    attributes = SpanAttributes(span)
    return {key: attributes.get(key) for key in attributes.by_key}


@pytest.mark.parametrize("run", RUNS, ids=[run.run for run in RUNS])
def test_one_chat_span_per_model_call_and_the_wrapper_is_the_agent(
    make_settings: Callable[..., ComponentSettings], run: framework_traces.Recording
) -> None:
    spans = [_values(span) for span in _normalize_run(make_settings, run)]
    operations = [span.get("gen_ai.operation.name") for span in spans]
    assert operations.count("chat") == run.model_calls
    agents = [span for span in spans if span.get("gen_ai.operation.name") == "invoke_agent"]
    assert len(agents) == len(run.trace_ids)  # one generateText / streamText per user turn, each its own trace
    for agent in agents:
        # The steps' sums stay under the SDK's names: nothing counts or prices them again.
        assert not set(USAGE) & agent.keys()
        assert agent["gen_ai.agent.name"] == "weather-agent" and agent["ai.usage.inputTokens"] > 0
    calls = [span for span in spans if span.get("gen_ai.operation.name") == "chat"]
    assert sum(call["gen_ai.usage.input_tokens"] for call in calls) == sum(a["ai.usage.inputTokens"] for a in agents)
    assert sum(call["gen_ai.usage.output_tokens"] for call in calls) == sum(a["ai.usage.outputTokens"] for a in agents)
    for call in calls:
        assert call["gen_ai.provider.name"] == "openai"  # the SDK said openai.responses
        assert call["gen_ai.request.model"] == call["gen_ai.response.model"] == "gpt-4o-mini"
        mapped = ("ai.usage.inputTokens", "ai.usage.outputTokens", "ai.prompt.messages", "gen_ai.system", "ai.model.id")
        assert not set(mapped) & call.keys()


def test_tool_calls_and_messages_in_the_conventions_shape(make_settings: Callable[..., ComponentSettings]) -> None:
    run = next(run for run in RUNS if run.run == "parallel_retry")
    spans = [_values(span) for span in _normalize_run(make_settings, run)]
    tools = sorted(
        (span for span in spans if span.get("gen_ai.operation.name") == "execute_tool"),
        key=lambda span: str(span["gen_ai.tool.call.id"]),
    )
    called = [
        (t["gen_ai.tool.name"], t["gen_ai.tool.call.id"], json.loads(t["gen_ai.tool.call.arguments"])) for t in tools
    ]
    assert called == [
        ("get_weather", "call_mock_1", {"city": "Berlin"}),
        ("get_weather", "call_mock_2", {"city": "Romee"}),
        ("get_weather", "call_mock_3", {"city": "Rome"}),
    ]  # fmt: skip
    assert [t.get("gen_ai.tool.call.result") for t in tools] == [
        '"Cloudy, 17 C in Berlin"',
        None,
        '"Clear, 27 C in Rome"',
    ]
    chats = [span for span in spans if span.get("gen_ai.operation.name") == "chat"]
    calls = sorted(chats, key=lambda span: len(json.loads(span["gen_ai.input.messages"])))  # the order they were made
    first, second, third = (json.loads(c["gen_ai.output.messages"]) for c in calls)
    assert [p["id"] for p in first[0]["parts"]] == ["call_mock_1", "call_mock_2"]
    assert first[0]["finish_reason"] == "tool_call" and second[0]["parts"][0]["arguments"] == {"city": "Rome"}
    assert third[0]["parts"] == [{"type": "text", "content": "Thanks! The tool said: Clear, 27 C in Rome"}]
    answered = json.loads(calls[2]["gen_ai.input.messages"])
    responses = [part for message in answered for part in message["parts"] if part["type"] == "tool_call_response"]
    assert [part["id"] for part in responses] == ["call_mock_1", "call_mock_2", "call_mock_3"]
    assert "Did you mean 'Rome'?" in responses[1]["response"]
    assert json.loads(calls[0]["gen_ai.system_instructions"]) == [
        {"type": "text", "content": "Answer weather questions. Use get_weather for current conditions."}
    ]
    assert json.loads(calls[0]["gen_ai.tool.definitions"])[0]["name"] == "get_weather"


@pytest.mark.parametrize(
    ("provider_id", "expected"),
    [
        ("openai.chat", "openai"),
        ("openai.responses", "openai"),
        ("anthropic.messages", "anthropic"),
        ("google.generative-ai", "gcp.gemini"),
        ("google.vertex.chat", "gcp.vertex_ai"),
        ("vertex.anthropic.messages", "gcp.vertex_ai"),
        ("mistral.chat", "mistral_ai"),
        ("amazon-bedrock", "aws.bedrock"),
        ("azure.responses", "azure.ai.openai"),
        ("xai.chat", "x_ai"),
        ("groq.chat", "groq"),
        ("deepseek.chat", "deepseek"),
        ("cohere.chat", "cohere"),
        ("perplexity", "perplexity"),
        ("ollama.chat", "ollama"),  # a provider no table names keeps its own name
    ],
)
def test_provider_ids_become_the_conventions_provider_names(provider_id: str, expected: str) -> None:
    assert provider_name(provider_id) == expected


def test_the_same_provider_on_every_span_whichever_key_named_it(
    make_settings: Callable[..., ComponentSettings],
) -> None:
    values = _normalized(
        make_settings,
        {
            "ai.operationId": "ai.streamText.doStream",
            "gen_ai.system": "mistral.chat",
            "ai.model.provider": "mistral.chat",
        },
        name="ai.streamText.doStream",
    )
    assert values["gen_ai.provider.name"] == "mistral_ai" and "gen_ai.system" not in values


def test_spans_of_sdk_versions_before_5(make_settings: Callable[..., ComponentSettings]) -> None:
    # ai 4.x: promptTokens/completionTokens, tool-call parts with "args", tool results with "result".
    prompt = [
        {"role": "user", "content": [{"type": "text", "text": "Weather in Oslo?"}]},
        {"role": "assistant", "content": [
            {"type": "tool-call", "toolCallId": "c1", "toolName": "weather", "args": {"city": "Oslo"}},
        ]},
        {"role": "tool", "content": [
            {"type": "tool-result", "toolCallId": "c1", "toolName": "weather", "result": "Rain"},
        ]},
    ]  # fmt: skip
    values = _normalized(
        make_settings,
        {
            "ai.operationId": "ai.generateText.doGenerate",
            "ai.model.provider": "openai.chat",
            "ai.model.id": "gpt-4o",
            "ai.usage.promptTokens": 40,
            "ai.usage.completionTokens": 7,
            "ai.prompt.messages": json.dumps(prompt),
            "ai.response.text": "It rains.",
            "ai.response.finishReason": "stop",
            "ai.response.msToFirstChunk": 250.0,
        },
        name="ai.generateText.doGenerate",
    )
    assert (
        values["gen_ai.operation.name"],
        values["gen_ai.usage.input_tokens"],
        values["gen_ai.usage.output_tokens"],
    ) == ("chat", 40, 7)
    assert values["gen_ai.response.time_to_first_chunk"] == 0.25
    assert json.loads(values["gen_ai.input.messages"]) == [
        {"role": "user", "parts": [{"type": "text", "content": "Weather in Oslo?"}]},
        {"role": "assistant", "parts": [
            {"type": "tool_call", "id": "c1", "name": "weather", "arguments": {"city": "Oslo"}},
        ]},
        {"role": "tool", "parts": [{"type": "tool_call_response", "id": "c1", "response": "Rain"}]},
    ]  # fmt: skip
    assert json.loads(values["gen_ai.output.messages"]) == [
        {"role": "assistant", "parts": [{"type": "text", "content": "It rains."}], "finish_reason": "stop"}
    ]
    wrapper = _normalized(
        make_settings,
        {"ai.operationId": "ai.generateText", "ai.model.provider": "openai.chat", "ai.usage.promptTokens": 90},
        name="ai.generateText",
    )
    assert wrapper["gen_ai.operation.name"] == "invoke_agent" and "gen_ai.usage.input_tokens" not in wrapper


@pytest.mark.parametrize(("wrapper", "inner", "operation"), [
    ("ai.generateObject", "ai.generateObject.doGenerate", "chat"),
    ("ai.streamObject", "ai.streamObject.doStream", "chat"),
    ("ai.embedMany", "ai.embedMany.doEmbed", "embeddings"),
    ("ai.embed", "ai.embed.doEmbed", "embeddings"),
])  # fmt: skip
def test_other_wrappers_are_neither_calls_nor_agents(
    make_settings: Callable[..., ComponentSettings], wrapper: str, inner: str, operation: str
) -> None:
    usage = {"ai.model.provider": "openai.embedding", "ai.model.id": "text-embedding-3-small", "ai.usage.tokens": 9}
    outer = _normalized(make_settings, {"ai.operationId": wrapper, **usage}, name=wrapper)
    assert "gen_ai.operation.name" not in outer and "gen_ai.usage.input_tokens" not in outer
    call = _normalized(make_settings, {"ai.operationId": inner, **usage}, name=inner)
    assert call["gen_ai.operation.name"] == operation and call["gen_ai.usage.input_tokens"] == 9


def test_the_recording_is_as_the_sdk_emitted_it() -> None:
    request = framework_traces.load_framework("vercel_ai")
    names = {span.name for span in agent_traces.spans(request)}
    assert {
        "ai.generateText",
        "ai.generateText.doGenerate",
        "ai.streamText",
        "ai.streamText.doStream",
        "ai.toolCall",
    } <= names
    assert not any(
        pair.key == "gen_ai.operation.name" for span in agent_traces.spans(request) for pair in span.attributes
    )
