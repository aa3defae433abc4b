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
from typing import Any

from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from collector import semconv
from collector.component import ComponentSettings, Processor, ProcessorFactory, TracesConsumer
from processors.genai_cost.config import GenAiCostConfig, load_overrides
from processors.genai_cost.prices import PriceBook, Usage
from processors.span_editor import SpanEditor

# v1.41.0 named cache writes cache_creation; both are read.
CACHE_WRITE_TOKENS = (semconv.USAGE_CACHE_WRITE_INPUT_TOKENS, semconv.USAGE_CACHE_CREATION_INPUT_TOKENS)
# Where each attribute pricing reads lands in the one-pass lookup.
(
    _INPUT,
    _OUTPUT,
    _CACHE_READ,
    _CACHE_WRITE,
    _REASONING,
    _PROVIDER,
    _RESPONSE_MODEL,
    _REQUEST_MODEL,
    _COST,
    _COST_SOURCE,
) = range(10)
_WANTED_SLOTS = range(10)
_WANTED = {
    semconv.USAGE_INPUT_TOKENS: _INPUT,
    semconv.USAGE_OUTPUT_TOKENS: _OUTPUT,
    semconv.USAGE_CACHE_READ_INPUT_TOKENS: _CACHE_READ,
    CACHE_WRITE_TOKENS[0]: _CACHE_WRITE,
    CACHE_WRITE_TOKENS[1]: _CACHE_WRITE,
    semconv.USAGE_REASONING_OUTPUT_TOKENS: _REASONING,
    semconv.PROVIDER_NAME: _PROVIDER,
    semconv.RESPONSE_MODEL: _RESPONSE_MODEL,
    semconv.REQUEST_MODEL: _REQUEST_MODEL,
    # An amount under the project's former name (until genai_normalize maps it) is a reported cost too.
    **dict.fromkeys(semconv.spellings(semconv.USAGE_COST_AMOUNT), _COST),
    semconv.USAGE_COST_SOURCE: _COST_SOURCE,
}
# Sub-nano-dollar digits are float noise, not information.
COST_DECIMALS = 12


class GenAiCostProcessor(SpanEditor):
    def __init__(self, settings: ComponentSettings, config: GenAiCostConfig, next_consumer: TracesConsumer) -> None:
        super().__init__(next_consumer)
        overrides = load_overrides(Path(config.price_overrides)) if config.price_overrides else ()
        self._prices = PriceBook(overrides, overrides_version=f"override {config.price_overrides}")
        self._telemetry = settings.telemetry
        self._labels = {"processor": str(settings.id)}

    def edit(self, span: Span) -> None:
        # One pass over the attributes, picking what pricing needs: most spans of most traces are not
        # LLM calls and leave here after it.
        found: list[Any] = [None] * len(_WANTED_SLOTS)
        for pair in span.attributes:
            slot = _WANTED.get(pair.key)
            if slot is not None:
                found[slot] = pair.value
        if found[_INPUT] is None and found[_OUTPUT] is None:
            return
        attributes = span.attributes
        if found[_COST_SOURCE] is not None:
            return  # priced before (a collector earlier in the path): once is enough
        if found[_COST] is not None:
            _add(attributes, semconv.USAGE_COST_SOURCE, semconv.COST_SOURCE_PROVIDER)
            return
        model = _text(found[_RESPONSE_MODEL]) or _text(found[_REQUEST_MODEL])
        cost = None
        if model:
            usage = Usage(
                input_tokens=_count(found[_INPUT]),
                output_tokens=_count(found[_OUTPUT]),
                cache_read_tokens=_count(found[_CACHE_READ]),
                cache_write_tokens=_count(found[_CACHE_WRITE]),
                reasoning_tokens=_count(found[_REASONING]),
            )
            cost = self._prices.cost(_text(found[_PROVIDER]), model, usage, span.start_time_unix_nano)
        if cost is None:
            _add(attributes, semconv.USAGE_COST_SOURCE, semconv.COST_SOURCE_UNPRICED)
            self._telemetry.add("genai_cost_unpriced_spans", 1, **self._labels)
            return
        _add(attributes, semconv.USAGE_COST_AMOUNT, round(cost.total, COST_DECIMALS))
        _add(attributes, semconv.USAGE_COST_CURRENCY, semconv.COST_CURRENCY_USD)
        for part in semconv.USAGE_COST_PARTS:
            value = getattr(cost, part)
            # Cache and reasoning parts only when there were such tokens; input and output always.
            if value or part in ("input", "output"):
                _add(attributes, semconv.USAGE_COST_PART[part], round(value, COST_DECIMALS))
        _add(attributes, semconv.USAGE_COST_SOURCE, semconv.COST_SOURCE_LOCAL)
        _add(attributes, semconv.USAGE_COST_PRICE_VERSION, cost.version)


def _add(attributes: Any, key: str, value: str | float) -> None:
    pair = attributes.add()
    pair.key = key
    if isinstance(value, str):
        pair.value.string_value = value
    else:
        pair.value.double_value = value


def _count(value: AnyValue | None) -> int:
    """A token count as instrumentations send it: an int, a whole double, or a numeric string."""
    if value is None:
        return 0
    kind = value.WhichOneof("value")
    if kind == "int_value":
        return max(value.int_value, 0)
    if kind == "double_value":
        return max(int(value.double_value), 0)
    if kind == "string_value":
        try:
            return max(int(float(value.string_value)), 0)
        except ValueError:
            return 0
    return 0


def _text(value: AnyValue | None) -> str:
    return value.string_value if value is not None else ""


def create_processor(settings: ComponentSettings, config: GenAiCostConfig, next_consumer: TracesConsumer) -> Processor:
    return GenAiCostProcessor(settings, config, next_consumer)


factory = ProcessorFactory(
    type="genai_cost", config_type=GenAiCostConfig, create=create_processor, runs_in="worker"
)
