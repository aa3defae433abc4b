"""genai_cost against hand-computed figures: list prices per million tokens, cache and reasoning at their own rates."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.trace.v1.trace_pb2 import Span, TracesData

from collector.component import ComponentSettings
from collector.config.decode import decode
from collector.config.problems import ConfigError
from collector.pdata import SpanAttributes, set_any_value
from processors.genai_cost import GenAiCostProcessor
from processors.genai_cost.config import GenAiCostConfig
from processors.span_view import SpanView
from tests.conftest import RecordingConsumer

M = 1_000_000
# 2025-11-01, when every price below was the list price.
START_NS = 1_761_955_200 * 1_000_000_000


def _span(attributes: dict[str, Any]) -> Span:
    span = Span(name="chat", start_time_unix_nano=START_NS)
    for key, value in attributes.items():
        pair = span.attributes.add()
        pair.key = key
        set_any_value(pair.value, value)
    return span


def _priced(
    make_settings: Callable[..., ComponentSettings], attributes: dict[str, Any], config: GenAiCostConfig | None = None
) -> dict[str, Any]:
    downstream = RecordingConsumer()
    processor = GenAiCostProcessor(make_settings("genai_cost", "processor"), config or GenAiCostConfig(), downstream)
    traces = TracesData()
    traces.resource_spans.add().scope_spans.add().spans.append(_span(attributes))
    asyncio.run(processor.consume(traces))
    [span] = downstream.spans()
    values = SpanAttributes(span)
    return {pair: values.get(pair) for pair in values.by_key}


def _usage(provider: str, model: str, input_tokens: int, output_tokens: int, **extra: int) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "gen_ai.provider.name": provider,
        "gen_ai.response.model": model,
        "gen_ai.usage.input_tokens": input_tokens,
        "gen_ai.usage.output_tokens": output_tokens,
    }
    names = {
        "cache_read": "gen_ai.usage.cache_read.input_tokens",
        "cache_write": "gen_ai.usage.cache_write.input_tokens",
        "reasoning": "gen_ai.usage.reasoning.output_tokens",
    }
    attributes.update({names[key]: value for key, value in extra.items()})
    return attributes


# (provider, model as the span names it, tokens, expected USD by part) — rates are list prices in USD per MTok.
CASES = [
    # gpt-4o: $2.50 in, $10 out, $1.25 cached; a dated name resolves to the model.
    ("openai", "gpt-4o-2024-08-06", dict(input_tokens=10_000, output_tokens=2_000, cache_read=4_000),
     dict(input=6_000 * 2.5 / M, cache_read=4_000 * 1.25 / M, output=2_000 * 10 / M)),
    # gpt-4o-mini: $0.15 / $0.60 / $0.075 cached.
    ("openai", "gpt-4o-mini", dict(input_tokens=1_000, output_tokens=500),
     dict(input=1_000 * 0.15 / M, output=500 * 0.6 / M)),
    # o3-mini: $1.10 / $4.40; reasoning tokens are output tokens, priced at the output rate.
    ("openai", "o3-mini", dict(input_tokens=2_000, output_tokens=3_000, reasoning=2_500),
     dict(input=2_000 * 1.1 / M, output=500 * 4.4 / M, reasoning=2_500 * 4.4 / M)),
    # gpt-4.1: $2 / $8 / $0.50 cached.
    ("openai", "gpt-4.1", dict(input_tokens=50_000, output_tokens=1_000, cache_read=40_000),
     dict(input=10_000 * 2 / M, cache_read=40_000 * 0.5 / M, output=1_000 * 8 / M)),
    # text-embedding-3-small: $0.02 in, no output.
    ("openai", "text-embedding-3-small", dict(input_tokens=8_000, output_tokens=0),
     dict(input=8_000 * 0.02 / M)),
    # Claude Sonnet 4.5: $3 / $15, cache read $0.30, cache write $3.75 (under 200k tokens).
    ("anthropic", "claude-sonnet-4-5-20250929",
     dict(input_tokens=12_000, output_tokens=800, cache_read=8_000, cache_write=2_000),
     dict(input=2_000 * 3 / M, cache_read=8_000 * 0.3 / M, cache_write=2_000 * 3.75 / M, output=800 * 15 / M)),
    # Past 200k input tokens every token of the call pays the long-context rate: $6 / $22.50.
    ("anthropic", "claude-sonnet-4-5", dict(input_tokens=250_000, output_tokens=1_000),
     dict(input=250_000 * 6 / M, output=1_000 * 22.5 / M)),
    # Claude Opus 4.1: $15 / $75, cache read $1.50, cache write $18.75.
    ("anthropic", "claude-opus-4-1", dict(input_tokens=3_000, output_tokens=1_000, cache_write=1_000),
     dict(input=2_000 * 15 / M, cache_write=1_000 * 18.75 / M, output=1_000 * 75 / M)),
    # Gemini 2.5 Pro: $1.25 / $10, cached $0.125 (under 200k).
    ("gcp.gemini", "gemini-2.5-pro",
     dict(input_tokens=100_000, output_tokens=4_000, cache_read=50_000, reasoning=3_000),
     dict(input=50_000 * 1.25 / M, cache_read=50_000 * 0.125 / M, output=1_000 * 10 / M, reasoning=3_000 * 10 / M)),
    # Gemini 2.0 Flash: $0.10 / $0.40.
    ("gcp.gemini", "gemini-2.0-flash", dict(input_tokens=20_000, output_tokens=2_000),
     dict(input=20_000 * 0.1 / M, output=2_000 * 0.4 / M)),
    # Open weights on Groq: Llama 3.3 70B, $0.59 / $0.79.
    ("groq", "llama-3.3-70b-versatile", dict(input_tokens=5_000, output_tokens=1_000),
     dict(input=5_000 * 0.59 / M, output=1_000 * 0.79 / M)),
    # Grok 4 (an alias of grok-4-0709): $3 / $15, cached $0.75.
    ("x_ai", "grok-4", dict(input_tokens=4_000, output_tokens=2_000, cache_read=1_000, reasoning=1_500),
     dict(input=3_000 * 3 / M, cache_read=1_000 * 0.75 / M, output=500 * 15 / M, reasoning=1_500 * 15 / M)),
]  # fmt: skip


@pytest.mark.parametrize(("provider", "model", "tokens", "expected"), CASES, ids=[c[1] for c in CASES])
def test_prices_match_hand_computed_figures(
    make_settings: Callable[..., ComponentSettings],
    provider: str,
    model: str,
    tokens: dict[str, int],
    expected: dict[str, float],
) -> None:
    values = _priced(make_settings, _usage(provider, model, **tokens))

    parts = {
        part: values.get(f"gen_ai.usage.cost.{part}", 0.0)
        for part in ("input", "output", "cache_read", "cache_write", "reasoning")
    }
    # Cache and reasoning parts appear only when there were such tokens.
    optional = ("cache_read", "cache_write", "reasoning")
    assert [part for part in optional if f"gen_ai.usage.cost.{part}" in values] == [
        part for part in optional if part in expected
    ]
    assert parts == pytest.approx({part: expected.get(part, 0.0) for part in parts}, abs=1e-12)
    assert values["gen_ai.usage.cost.amount"] == pytest.approx(sum(expected.values()), abs=1e-12)
    assert values["gen_ai.usage.cost.currency"] == "USD"
    assert values["gen_ai.usage.cost.source"] == "local"
    assert values["gen_ai.usage.cost.price_version"].startswith("genai-prices ")


def test_an_unknown_model_gets_no_cost_at_all(make_settings: Callable[..., ComponentSettings]) -> None:
    values = _priced(make_settings, _usage("vllm", "my-finetune-7b", 1_000, 100))
    assert values["gen_ai.usage.cost.source"] == "unpriced"
    assert not [key for key in values if key.startswith("gen_ai.usage.cost") and key != "gen_ai.usage.cost.source"]


def test_cache_writes_under_the_previous_name_are_priced_alike(make_settings: Callable[..., ComponentSettings]) -> None:
    tokens = {"gen_ai.usage.cache_write.input_tokens": 2_000}
    current = _priced(make_settings, {**_usage("anthropic", "claude-opus-4-1", 3_000, 1_000), **tokens})
    tokens = {"gen_ai.usage.cache_creation.input_tokens": 2_000}
    previous = _priced(make_settings, {**_usage("anthropic", "claude-opus-4-1", 3_000, 1_000), **tokens})
    assert current["gen_ai.usage.cost.cache_write"] == previous["gen_ai.usage.cost.cache_write"] > 0


def test_a_cost_the_provider_reported_wins(make_settings: Callable[..., ComponentSettings]) -> None:
    reported = {"gen_ai.usage.cost.amount": 0.5, "gen_ai.usage.cost.currency": "EUR"}
    values = _priced(make_settings, {**_usage("openai", "gpt-4o", 1_000, 100), **reported})
    assert values["gen_ai.usage.cost.amount"] == 0.5
    assert values["gen_ai.usage.cost.currency"] == "EUR"
    assert values["gen_ai.usage.cost.source"] == "provider"
    assert "gen_ai.usage.cost.input" not in values


def test_a_cost_under_the_former_name_is_a_reported_cost(make_settings: Callable[..., ComponentSettings]) -> None:
    values = _priced(make_settings, {**_usage("openai", "gpt-4o", 1_000, 100), "gen_ai.usage.cost": 0.5})
    assert values["gen_ai.usage.cost.source"] == "provider"
    assert "gen_ai.usage.cost.amount" not in values and "gen_ai.usage.cost.input" not in values


def test_spans_without_usage_are_left_alone(make_settings: Callable[..., ComponentSettings]) -> None:
    values = _priced(make_settings, {"http.request.method": "GET", "gen_ai.request.model": "gpt-4o"})
    assert values == {"http.request.method": "GET", "gen_ai.request.model": "gpt-4o"}


def test_an_override_file_prices_self_hosted_models_and_wins_over_the_database(
    make_settings: Callable[..., ComponentSettings], tmp_path: Path
) -> None:
    overrides = tmp_path / "prices.yaml"
    overrides.write_text(
        "prices:\n"
        '  - {model: "llama-3.1-*", provider: vllm, input: 0.2, output: 0.6, reasoning: 1.0}\n'
        '  - {model: "gpt-4o", input: 2.0, output: 8.0, cache_read: 0.5}\n'
    )
    config = GenAiCostConfig(price_overrides=str(overrides))

    local = _priced(make_settings, _usage("vllm", "llama-3.1-8b-instruct", 10_000, 2_000, reasoning=1_000), config)
    negotiated = _priced(make_settings, _usage("openai", "gpt-4o", 10_000, 1_000, cache_read=2_000), config)

    assert local["gen_ai.usage.cost.amount"] == pytest.approx((10_000 * 0.2 + 1_000 * 0.6 + 1_000 * 1.0) / M)
    assert negotiated["gen_ai.usage.cost.amount"] == pytest.approx((8_000 * 2.0 + 2_000 * 0.5 + 1_000 * 8.0) / M)
    assert negotiated["gen_ai.usage.cost.price_version"] == f"override {overrides}"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("prices: [{input: 1, output: 2}]", "prices[0].model: is required (a model name or glob)"),
        ("prices: [{model: m, input: 1}]", "prices[0].output: is required (USD per million tokens)"),
        (
            "prices: [{model: m, input: -1, output: 2}]",
            "prices[0].input: expected a price in USD per million tokens, got -1",
        ),
        ("prices: [{model: m, input: 1, output: 2, cached: 1}]", "prices[0].cached: unknown key"),
        ("models: []", "expected a mapping with a list under prices"),
    ],
)
def test_a_bad_override_file_is_one_config_line(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "prices.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as error:
        decode(GenAiCostConfig, {"price_overrides": str(path)}, "processors.genai_cost")
    [line] = [str(p) for p in error.value.problems]
    assert line.startswith(f"processors.genai_cost.price_overrides: {path}")
    assert problem in line


@pytest.mark.parametrize("model", ["gpt-4o", "my-finetune-7b"], ids=["local", "unpriced"])
def test_a_span_priced_before_is_left_as_it_is(make_settings: Callable[..., ComponentSettings], model: str) -> None:
    processor = GenAiCostProcessor(make_settings("genai_cost", "processor"), GenAiCostConfig(), RecordingConsumer())
    span = _span(_usage("openai", model, 1_000, 100))
    processor.edit(SpanView(span))
    priced = [(pair.key, pair.value.WhichOneof("value")) for pair in span.attributes]
    processor.edit(SpanView(span))  # a second collector on the way, running genai_cost again
    assert [(pair.key, pair.value.WhichOneof("value")) for pair in span.attributes] == priced
