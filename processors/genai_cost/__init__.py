"""The ``genai_cost`` processor: what each GenAI call cost, and how that is known.

For every span with token usage it sets the conventions' cost attributes:
``gen_ai.usage.cost.amount``, ``gen_ai.usage.cost.currency`` (``USD``) and
``gen_ai.usage.cost.source``, plus this project's parts of the amount,
``gen_ai.usage.cost.input`` (uncached input) and ``.output`` (output without
reasoning), and ``.cache_read``, ``.cache_write`` and ``.reasoning`` when the
call had such tokens; the parts add up to the amount. The source is:

- ``provider``: the span already carried an amount (the provider, a gateway or
  the instrumentation reported it); it wins and is left as it is;
- ``local``: priced here once, as the span passes, from the price-override file
  or the price database in force then, whose version goes in
  ``gen_ai.usage.cost.price_version``; never priced again later;
- ``unpriced`` (this project's value): nobody knows the model's price. Such
  spans get no amount at all, never a confident 0.

Provider and model come from the normalised attributes (run ``genai_normalize``
first): ``gen_ai.provider.name`` and ``gen_ai.response.model`` (the model that
answered, often a dated name), else ``gen_ai.request.model``. Spans without usage
pass through untouched.
"""

from __future__ import annotations

from pathlib import Path

from collector import semconv
from collector.component import ComponentSettings, Processor, ProcessorFactory, TracesConsumer
from processors.genai_cost.config import GenAiCostConfig, load_overrides
from processors.genai_cost.generated_metrics import GenaiCostSelfMetrics
from processors.genai_cost.prices import PriceBook, Usage
from processors.span_view import SpanView, ViewProcessor

# v1.41.0 named cache writes cache_creation; both are read.
CACHE_WRITE_TOKENS = (semconv.USAGE_CACHE_WRITE_INPUT_TOKENS, semconv.USAGE_CACHE_CREATION_INPUT_TOKENS)
# An amount under the project's former name (until genai_normalize maps it) is a reported cost too.
_COST_NAMES = semconv.spellings(semconv.USAGE_COST_AMOUNT)
# Sub-nano-dollar digits are float noise, not information.
COST_DECIMALS = 12
# Each part of the amount, with the attribute it is written to.
_PARTS = tuple((part, semconv.USAGE_COST_PART[part]) for part in semconv.USAGE_COST_PARTS)


class GenAiCostProcessor(ViewProcessor):
    def __init__(self, settings: ComponentSettings, config: GenAiCostConfig, next_consumer: TracesConsumer) -> None:
        super().__init__(next_consumer)
        overrides = load_overrides(Path(config.price_overrides)) if config.price_overrides else ()
        self._prices = PriceBook(overrides, overrides_version=f"override {config.price_overrides}")
        self._unpriced = GenaiCostSelfMetrics(settings.telemetry).cost_unpriced_spans.bind(processor=str(settings.id))

    def edit(self, view: SpanView) -> None:
        texts = view.texts  # every attribute's key, each with its string value or ""
        # Most spans of most traces are not LLM calls and leave here.
        if semconv.USAGE_INPUT_TOKENS not in texts and semconv.USAGE_OUTPUT_TOKENS not in texts:
            return
        if semconv.USAGE_COST_SOURCE in texts:
            return  # priced before (a collector earlier in the path): once is enough
        if any(name in texts for name in _COST_NAMES):
            view.set(semconv.USAGE_COST_SOURCE, semconv.COST_SOURCE_PROVIDER)
            return
        model = texts.get(semconv.RESPONSE_MODEL) or texts.get(semconv.REQUEST_MODEL)
        cost = None
        if model:
            usage = Usage(
                input_tokens=_count(view, semconv.USAGE_INPUT_TOKENS),
                output_tokens=_count(view, semconv.USAGE_OUTPUT_TOKENS),
                cache_read_tokens=_count(view, semconv.USAGE_CACHE_READ_INPUT_TOKENS),
                cache_write_tokens=_count(view, _last_of(view, CACHE_WRITE_TOKENS)),
                reasoning_tokens=_count(view, semconv.USAGE_REASONING_OUTPUT_TOKENS),
            )
            provider = texts.get(semconv.PROVIDER_NAME, "")
            cost = self._prices.cost(provider, model, usage, view.span.start_time_unix_nano)
        if cost is None:
            view.set(semconv.USAGE_COST_SOURCE, semconv.COST_SOURCE_UNPRICED)
            self._unpriced.add(1)
            return
        view.set(semconv.USAGE_COST_AMOUNT, round(cost.total, COST_DECIMALS))
        view.set(semconv.USAGE_COST_CURRENCY, semconv.COST_CURRENCY_USD)
        for part, key in _PARTS:
            value = getattr(cost, part)
            # Cache and reasoning parts only when there were such tokens; input and output always.
            if value or part in ("input", "output"):
                view.set(key, round(value, COST_DECIMALS))
        view.set(semconv.USAGE_COST_SOURCE, semconv.COST_SOURCE_LOCAL)
        view.set(semconv.USAGE_COST_PRICE_VERSION, cost.version)


def _last_of(view: SpanView, names: tuple[str, ...]) -> str:
    """Whichever of ``names`` the span lists last (a span may carry a count under both spellings); "" for none."""
    present = [name for name in names if name in view.texts]
    if len(present) > 1:
        order = list(view.texts)
        present.sort(key=order.index)
    return present[-1] if present else ""


def _count(view: SpanView, key: str) -> int:
    """A token count as instrumentations send it: an int, a whole double, or a numeric string."""
    if key not in view.texts:
        return 0
    value = view.scalars.get(key)
    if type(value) is int:  # not a bool
        return max(value, 0)
    if type(value) is float:
        return max(int(value), 0)
    text = view.texts.get(key)
    if text:
        try:
            return max(int(float(text)), 0)
        except ValueError:
            return 0
    return 0


def create_processor(settings: ComponentSettings, config: GenAiCostConfig, next_consumer: TracesConsumer) -> Processor:
    return GenAiCostProcessor(settings, config, next_consumer)


factory = ProcessorFactory(
    type="genai_cost", config_type=GenAiCostConfig, create=create_processor, runs_in="worker"
)
