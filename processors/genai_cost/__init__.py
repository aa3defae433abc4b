"""The ``genai_cost`` processor: what each GenAI call cost, in USD, and how that is known.

For every span with token usage it sets ``gen_ai.usage.cost`` (the total) and its
parts ``gen_ai.usage.cost.input`` (uncached input), ``.output`` (output without
reasoning), ``.cache_read``, ``.cache_write`` and ``.reasoning``, plus
``gen_ai.usage.cost.source``:

- ``provider``: the span already carried a cost (the provider or the
  instrumentation reported it); it wins and is left as it is;
- ``computed``: priced here, from the price-override file or the price
  database, whose version goes in ``gen_ai.usage.cost.price_version``;
- ``unpriced``: nobody knows the model's price. Such spans get no cost
  attribute at all, never a confident 0.

Provider and model come from the normalised attributes (run ``genai_normalize``
first): ``gen_ai.provider.name`` and ``gen_ai.response.model`` (the model that
answered, often a dated name), else ``gen_ai.request.model``. Spans without usage
pass through untouched.
"""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

from collector.component import (
    ComponentSettings,
    Host,
    Processor,
    ProcessorFactory,
    TracesConsumer,
    TracesData,
)
from collector.pdata import SpanAttributes
from processors.genai_cost.config import GenAiCostConfig, load_overrides
from processors.genai_cost.prices import Cost, PriceBook, Usage

INPUT_TOKENS = "gen_ai.usage.input_tokens"
OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
CACHE_READ_TOKENS = "gen_ai.usage.cache_read.input_tokens"
CACHE_WRITE_TOKENS = ("gen_ai.usage.cache_creation.input_tokens", "gen_ai.usage.cache_write.input_tokens")
REASONING_TOKENS = "gen_ai.usage.reasoning.output_tokens"
PROVIDER = "gen_ai.provider.name"
RESPONSE_MODEL = "gen_ai.response.model"
REQUEST_MODEL = "gen_ai.request.model"
COST = "gen_ai.usage.cost"
COST_SOURCE = "gen_ai.usage.cost.source"
PRICE_VERSION = "gen_ai.usage.cost.price_version"
COST_PARTS = ("input", "output", "cache_read", "cache_write", "reasoning")
# Sub-nano-dollar digits are float noise, not information.
COST_DECIMALS = 12
NANOS_PER_SECOND = 1_000_000_000


class GenAiCostProcessor:
    def __init__(self, settings: ComponentSettings, config: GenAiCostConfig, next_consumer: TracesConsumer) -> None:
        overrides = load_overrides(Path(config.price_overrides)) if config.price_overrides else ()
        self._prices = PriceBook(overrides, overrides_version=f"override {config.price_overrides}")
        self._next = next_consumer
        self._telemetry = settings.telemetry
        self._labels = {"processor": str(settings.id)}

    async def start(self, host: Host) -> None:
        return None

    async def shutdown(self) -> None:
        return None

    async def consume(self, traces: TracesData) -> None:
        for resource_spans in traces.resource_spans:
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    self._price(span)
        await self._next.consume(traces)

    def _price(self, span: Any) -> None:
        # A cheap look before any work: most spans of most traces are not LLM calls.
        keys = {pair.key for pair in span.attributes}
        if INPUT_TOKENS not in keys and OUTPUT_TOKENS not in keys:
            return
        attributes = SpanAttributes(span)
        if COST in keys:
            if COST_SOURCE not in keys:
                attributes.set(COST_SOURCE, "provider")
            return
        model = _text(attributes.get(RESPONSE_MODEL)) or _text(attributes.get(REQUEST_MODEL))
        cost = None
        if model:
            usage = Usage(
                input_tokens=_count(attributes.get(INPUT_TOKENS)),
                output_tokens=_count(attributes.get(OUTPUT_TOKENS)),
                cache_read_tokens=_count(attributes.get(CACHE_READ_TOKENS)),
                cache_write_tokens=max(_count(attributes.get(key)) for key in CACHE_WRITE_TOKENS),
                reasoning_tokens=_count(attributes.get(REASONING_TOKENS)),
            )
            provider = _text(attributes.get(PROVIDER))
            when = datetime.datetime.fromtimestamp(span.start_time_unix_nano / NANOS_PER_SECOND, datetime.UTC)
            cost = self._prices.cost(provider, model, usage, when)
        if cost is None:
            attributes.set(COST_SOURCE, "unpriced")
            self._telemetry.add("genai_cost_unpriced_spans", 1, **self._labels)
            return
        _set_cost(attributes, cost)


def _set_cost(attributes: SpanAttributes, cost: Cost) -> None:
    attributes.set(COST, round(cost.total, COST_DECIMALS))
    for part in COST_PARTS:
        attributes.set(f"{COST}.{part}", round(getattr(cost, part), COST_DECIMALS))
    attributes.set(COST_SOURCE, "computed")
    attributes.set(PRICE_VERSION, cost.version)


def _count(value: Any) -> int:
    """A token count as instrumentations send it: an int, a whole float, or a numeric string."""
    if isinstance(value, bool) or value is None:
        return 0
    if isinstance(value, int):
        return max(value, 0)
    try:
        return max(int(float(value)), 0)
    except (TypeError, ValueError):
        return 0


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def create_processor(settings: ComponentSettings, config: GenAiCostConfig, next_consumer: TracesConsumer) -> Processor:
    return GenAiCostProcessor(settings, config, next_consumer)


factory = ProcessorFactory(type="genai_cost", config_type=GenAiCostConfig, create=create_processor)
