"""Prices per token for a provider and model: the user's overrides first, then the genai-prices snapshot.

genai-prices (pydantic's maintained price database, bundled in the package and
used offline) knows each model's input, output, cache-read and cache-write rates,
with tiers (a prompt past a threshold prices every token at the tier's rate) and
price changes over time; dated model names and aliases resolve to their model.
Reasoning tokens are billed as output tokens by every provider it lists.
"""

from __future__ import annotations

import bisect
import datetime
import fnmatch
import functools
from dataclasses import dataclass
from decimal import Decimal
from importlib.metadata import version

from genai_prices import data_snapshot
from genai_prices.types import ModelPrice, TieredPrices

PER_MILLION = 1_000_000
SECONDS_PER_DAY = 86_400
NS_PER_DAY = SECONDS_PER_DAY * 1_000_000_000
PRICES_PACKAGE = "genai-prices"

# gen_ai.provider.name (the conventions' values) → genai-prices provider id.
PROVIDER_IDS = {
    "openai": "openai",
    "anthropic": "anthropic",
    "gcp.gemini": "google",
    "gcp.vertex_ai": "google",
    "gcp.gen_ai": "google",
    "aws.bedrock": "aws",
    "azure.ai.openai": "azure",
    "azure.ai.inference": "azure",
    "mistral_ai": "mistral",
    "x_ai": "x-ai",
    "deepseek": "deepseek",
    "groq": "groq",
    "cohere": "cohere",
    "perplexity": "perplexity",
    "moonshot_ai": "moonshotai",
}


@dataclass(frozen=True)
class Usage:
    """Token counts as the conventions define them: input includes cache reads and writes, output includes reasoning."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0


@dataclass(frozen=True)
class Cost:
    """USD, in parts that add up to ``total``: input is the uncached input, output excludes reasoning."""

    input: float
    output: float
    cache_read: float
    cache_write: float
    reasoning: float
    version: str

    @property
    def total(self) -> float:
        return self.input + self.output + self.cache_read + self.cache_write + self.reasoning


@dataclass(frozen=True)
class Rates:
    """USD per million tokens; a missing cache or reasoning rate falls back to the input or output rate."""

    input: float
    output: float
    cache_read: float | None = None
    cache_write: float | None = None
    reasoning: float | None = None

    def cost(self, usage: Usage, version: str) -> Cost:
        cache_read = min(usage.cache_read_tokens, usage.input_tokens)
        cache_write = min(usage.cache_write_tokens, usage.input_tokens - cache_read)
        reasoning = min(usage.reasoning_tokens, usage.output_tokens)
        return Cost(
            input=(usage.input_tokens - cache_read - cache_write) * self.input / PER_MILLION,
            output=(usage.output_tokens - reasoning) * self.output / PER_MILLION,
            cache_read=cache_read * _or(self.cache_read, self.input) / PER_MILLION,
            cache_write=cache_write * _or(self.cache_write, self.input) / PER_MILLION,
            reasoning=reasoning * _or(self.reasoning, self.output) / PER_MILLION,
            version=version,
        )


@dataclass(frozen=True)
class PriceOverride:
    """A price the user sets (self-hosted models, negotiated prices); ``model`` and ``provider`` may be globs."""

    model: str
    rates: Rates
    provider: str = "*"

    def matches(self, provider: str, model: str) -> bool:
        return fnmatch.fnmatchcase(model, self.model) and fnmatch.fnmatchcase(provider, self.provider)


class PriceBook:
    """Answers what a call cost; ``None`` when nobody knows the model's price."""

    def __init__(self, overrides: tuple[PriceOverride, ...] = (), overrides_version: str = "") -> None:
        self._overrides = overrides
        self._overrides_version = overrides_version
        self.snapshot_version = f"{PRICES_PACKAGE} {version(PRICES_PACKAGE)}"

    def cost(self, provider: str, model: str, usage: Usage, start_ns: int) -> Cost | None:
        """The cost of ``usage`` for a call to ``model`` that started at ``start_ns`` (prices change over time)."""
        rates = self.rates(provider, model, start_ns, usage.input_tokens)
        if rates is None:
            return None
        return rates[0].cost(usage, rates[1])

    def rates(self, provider: str, model: str, start_ns: int, input_tokens: int) -> tuple[Rates, str] | None:
        for override in self._overrides:
            if override.matches(provider, model):
                return override.rates, self._overrides_version
        provider_id = PROVIDER_IDS.get(provider, provider)
        day = start_ns // NS_PER_DAY
        thresholds = _thresholds(provider_id, model, day)
        if thresholds is None:
            return None
        rates = _rates_at(provider_id, model, day, bisect.bisect_left(thresholds, input_tokens))
        return (rates, self.snapshot_version) if rates is not None else None


# Caches: a model's price for a day, its tier thresholds, its rates per tier. Spans repeat a few
# models over and over; each lookup after the first is a dictionary hit.
@functools.lru_cache(maxsize=4096)
def _price(provider_id: str, model: str, day: int) -> ModelPrice | None:
    try:
        _, model_info = data_snapshot.get_snapshot().find_provider_model(model, None, provider_id or None, None)
    except LookupError:
        return None
    return model_info.get_prices(datetime.datetime.fromtimestamp(day * SECONDS_PER_DAY, datetime.UTC))


@functools.lru_cache(maxsize=4096)
def _thresholds(provider_id: str, model: str, day: int) -> tuple[int, ...] | None:
    """Every tier start of the model's token prices, sorted: which tier a prompt is in is a bisection."""
    price = _price(provider_id, model, day)
    if price is None:
        return None
    starts = {
        tier.start
        for field in (price.input_mtok, price.output_mtok, price.cache_read_mtok, price.cache_write_mtok)
        if isinstance(field, TieredPrices)
        for tier in field.tiers
    }
    return tuple(sorted(starts))


@functools.lru_cache(maxsize=16384)
def _rates_at(provider_id: str, model: str, day: int, tier: int) -> Rates | None:
    price = _price(provider_id, model, day)
    thresholds = _thresholds(provider_id, model, day)
    if price is None or thresholds is None:
        return None
    # Any count in (thresholds[tier - 1], thresholds[tier]] prices alike; take the bracket's top.
    input_tokens = thresholds[tier] if tier < len(thresholds) else (thresholds[-1] + 1 if thresholds else 0)
    return _rates(price, input_tokens)


def _rates(price: ModelPrice, input_tokens: int) -> Rates | None:
    input_rate = _rate(price.input_mtok, input_tokens)
    output_rate = _rate(price.output_mtok, input_tokens)
    if input_rate is None and output_rate is None:
        return None  # priced by something else (requests, images): not a token price
    return Rates(
        input=input_rate or 0.0,
        output=output_rate or 0.0,
        cache_read=_rate(price.cache_read_mtok, input_tokens),
        cache_write=_rate(price.cache_write_mtok, input_tokens),
    )


def _rate(value: Decimal | TieredPrices | None, input_tokens: int) -> float | None:
    """The per-million rate that applies: past a tier's threshold, every token pays the tier's rate."""
    if value is None:
        return None
    if isinstance(value, TieredPrices):
        rate = value.base
        for tier in value.tiers:
            if input_tokens > tier.start:
                rate = tier.price
        return float(rate)
    return float(value)


def _or(value: float | None, fallback: float) -> float:
    return fallback if value is None else value
