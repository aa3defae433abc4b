"""The GenAI client metrics: the families of each conventions release, their buckets, and what each span adds.

``latest`` (the default) follows semantic-conventions-genai: token counters by
direction and modality (``gen_ai.client.inference.usage.*``), per-call token
histograms (``gen_ai.client.inference.operation.*``), inference and embeddings
durations, time to first chunk, and the cost histogram
(``gen_ai.client.operation.cost``). ``v1.41`` keeps v1.41.0's families
(``gen_ai.client.token.usage`` by ``gen_ai.token.type``,
``gen_ai.client.operation.duration``, ``...time_to_first_chunk``) and this
project's former cost counter (``gen_ai.client.cost_usd``), for dashboards built
on them. Attributes are the conventions' (``gen_ai.operation.name``,
``gen_ai.request.model``, ``error.type``, ...) plus ``service.name`` and
``tenant.id`` of the span, so each series says whose calls it counts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Protocol

from opentelemetry.proto.metrics.v1.metrics_pb2 import Metric, ScopeMetrics

from collector import semconv
from collector.component import TracesData
from connectors.genai_metrics.families import Counter, Histogram, LabelValues, Times
from connectors.genai_metrics.spans import LABEL_NAMES, STEP_LABEL_NAMES, CallFacts, StepFacts, batch_facts

# Token histograms, as the semantic conventions advise (powers of 4 from 1 to 4^13).
TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864)
# Durations and time to first chunk (seconds, doubling from 10 ms), as the conventions advise.
DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
# Cost of one call, in its currency: the conventions advise no buckets; decades from a hundred-thousandth to 100.
COST_BUCKETS = (0.00001, 0.0001, 0.001, 0.01, 0.1, 1.0, 10.0, 100.0)

SECONDS = "s"
TOKENS = "{token}"
# v1.41.0's cost counter: always in US dollars; the currency is in the name (an annotation as its unit).
USD = "{USD}"
MODALITY_LABEL = semconv.TOKEN_MODALITY
TOKEN_TYPE_LABEL = semconv.TOKEN_TYPE
ERROR_LABEL = semconv.ERROR_TYPE
CURRENCY_LABEL = semconv.USAGE_COST_CURRENCY
WITH_ERROR = (*LABEL_NAMES, ERROR_LABEL)
WITH_MODALITY = (*LABEL_NAMES, MODALITY_LABEL)
UNKNOWN = semconv.TOKEN_MODALITY_UNKNOWN
Overflow = Callable[[str], None]


class Family(Protocol):
    @property
    def series(self) -> Mapping[LabelValues, object]: ...

    def write(self, metric: Metric, times: Times) -> None: ...


class _Families:
    """The families of one release, built with the connector's series bound."""

    def __init__(self, max_series: int, on_overflow: Overflow) -> None:
        self._max_series = max_series
        self._on_overflow = on_overflow
        self.all: list[Family] = []

    def histogram(
        self, name: str, unit: str, help: str, labels: tuple[str, ...], buckets: tuple[float, ...]
    ) -> Histogram:
        family = Histogram(name, unit, help, labels, buckets, self._max_series, self._on_overflow)
        self.all.append(family)
        return family

    def counter(self, name: str, unit: str, help: str, labels: tuple[str, ...]) -> Counter:
        family = Counter(name, unit, help, labels, self._max_series, self._on_overflow)
        self.all.append(family)
        return family


class LatestMetrics:
    """semantic-conventions-genai's client metrics."""

    def __init__(self, families: _Families) -> None:
        usage = "tokens of inference calls, by modality"
        self.input = families.counter(semconv.INFERENCE_USAGE_INPUT_TOKENS, TOKENS, f"Input {usage}.", WITH_MODALITY)
        self.output = families.counter(semconv.INFERENCE_USAGE_OUTPUT_TOKENS, TOKENS, f"Output {usage}.", WITH_MODALITY)
        self.cache_read = families.counter(
            semconv.INFERENCE_USAGE_CACHE_READ_INPUT_TOKENS, TOKENS, "Input tokens read from a cache.", WITH_MODALITY
        )
        self.cache_write = families.counter(
            semconv.INFERENCE_USAGE_CACHE_WRITE_INPUT_TOKENS, TOKENS, "Input tokens written to a cache.", WITH_MODALITY
        )
        self.reasoning = families.counter(
            semconv.INFERENCE_USAGE_REASONING_OUTPUT_TOKENS, TOKENS, "Output tokens spent on reasoning.", WITH_MODALITY
        )
        self.call_input = families.histogram(
            semconv.INFERENCE_OPERATION_INPUT_TOKENS, TOKENS, "Input tokens per inference call.", WITH_ERROR,
            TOKEN_BUCKETS,
        )  # fmt: skip
        self.call_output = families.histogram(
            semconv.INFERENCE_OPERATION_OUTPUT_TOKENS, TOKENS, "Output tokens per inference call.", WITH_ERROR,
            TOKEN_BUCKETS,
        )  # fmt: skip
        self.duration = families.histogram(
            semconv.INFERENCE_DURATION, SECONDS, "Duration of inference calls.", WITH_ERROR, DURATION_BUCKETS
        )
        self.time_to_first_chunk = families.histogram(
            semconv.INFERENCE_TIME_TO_FIRST_CHUNK, SECONDS, "Time to the first chunk of streamed inference calls.",
            LABEL_NAMES, DURATION_BUCKETS,
        )  # fmt: skip
        self.embeddings_duration = families.histogram(
            semconv.EMBEDDINGS_DURATION, SECONDS, "Duration of embeddings calls.", WITH_ERROR, DURATION_BUCKETS
        )
        self.embeddings_input = families.histogram(
            semconv.EMBEDDINGS_OPERATION_INPUT_TOKENS, TOKENS, "Input tokens per embeddings call.", WITH_ERROR,
            TOKEN_BUCKETS,
        )  # fmt: skip
        self.cost = families.histogram(
            semconv.OPERATION_COST, "", "Cost per call to a model, in its currency (gen_ai.usage.cost.amount).",
            (*LABEL_NAMES, CURRENCY_LABEL), COST_BUCKETS,
        )  # fmt: skip
        self.invocation_duration = families.histogram(
            semconv.INVOCATION_DURATION, SECONDS, "Duration of agent, workflow and conversation-turn invocations.",
            (*STEP_LABEL_NAMES, ERROR_LABEL), DURATION_BUCKETS,
        )  # fmt: skip
        self.tool_duration = families.histogram(
            semconv.EXECUTE_TOOL_DURATION, SECONDS, "Duration of tool executions.", (*STEP_LABEL_NAMES, ERROR_LABEL),
            DURATION_BUCKETS,
        )  # fmt: skip

    def observe_step(self, facts: StepFacts) -> None:
        if facts.duration is not None:
            family = self.tool_duration if facts.tool else self.invocation_duration
            family.observe((*facts.labels, facts.error_type), facts.duration)

    def observe(self, facts: CallFacts) -> None:
        labels = facts.labels
        failed = (*labels, facts.error_type)
        if facts.cost is not None:
            self.cost.observe((*labels, facts.cost_currency), facts.cost)
        if not facts.inference:
            if facts.duration is not None:
                self.embeddings_duration.observe(failed, facts.duration)
            if facts.input_tokens is not None:
                self.embeddings_input.observe(failed, facts.input_tokens)
            return
        if facts.duration is not None:
            self.duration.observe(failed, facts.duration)
        if facts.time_to_first_chunk is not None:
            self.time_to_first_chunk.observe(labels, facts.time_to_first_chunk)
        # A failed call that reported no usage counts 0 tokens, as the conventions ask; a successful one without
        # usage (an instrumentation that records none) counts nothing rather than a false 0.
        for counter, histogram, total, by_modality in (
            (self.input, self.call_input, facts.input_tokens, facts.input_by_modality),
            (self.output, self.call_output, facts.output_tokens, facts.output_by_modality),
        ):
            if total is None and not facts.error_type:
                continue
            histogram.observe(failed, total or 0.0)
            for modality, amount in (by_modality or {UNKNOWN: 0.0}).items():
                counter.add((*labels, modality), amount)
        for subset, part in (
            (self.cache_read, facts.cache_read_tokens),
            (self.cache_write, facts.cache_write_tokens),
            (self.reasoning, facts.reasoning_tokens),
        ):
            if part:
                subset.add((*labels, UNKNOWN), part)


class PreviousMetrics:
    """v1.41.0's client metrics and this project's former cost counter."""

    def __init__(self, families: _Families) -> None:
        self.token_usage = families.histogram(
            semconv.PREVIOUS_TOKEN_USAGE, TOKENS, "Number of input and output tokens used, per LLM call.",
            (*LABEL_NAMES, TOKEN_TYPE_LABEL), TOKEN_BUCKETS,
        )  # fmt: skip
        self.duration = families.histogram(
            semconv.PREVIOUS_OPERATION_DURATION, SECONDS, "Duration of LLM calls (span duration).", WITH_ERROR,
            DURATION_BUCKETS,
        )  # fmt: skip
        self.time_to_first_chunk = families.histogram(
            semconv.PREVIOUS_TIME_TO_FIRST_CHUNK, SECONDS, "Time to the first chunk of streamed LLM responses.",
            LABEL_NAMES, DURATION_BUCKETS,
        )  # fmt: skip
        self.cost = families.counter(
            semconv.PREVIOUS_COST_TOTAL + "_usd", USD, "Cost of LLM calls in USD (gen_ai.usage.cost.amount).",
            LABEL_NAMES,
        )  # fmt: skip

    def observe_step(self, facts: StepFacts) -> None:
        """The previous metrics of this exporter were call metrics only; agent steps add nothing to them."""

    def observe(self, facts: CallFacts) -> None:
        labels: LabelValues = facts.labels
        if facts.input_tokens is not None:
            self.token_usage.observe((*labels, "input"), facts.input_tokens)
        if facts.output_tokens is not None:
            self.token_usage.observe((*labels, "output"), facts.output_tokens)
        if facts.duration is not None:
            self.duration.observe((*labels, facts.error_type), facts.duration)
        if facts.time_to_first_chunk is not None:
            self.time_to_first_chunk.observe(labels, facts.time_to_first_chunk)
        if facts.cost is not None and facts.cost_currency == semconv.COST_CURRENCY_USD:
            self.cost.add(labels, facts.cost)


class GenAiMetrics:
    """One release's families, fed span by span; ``on_overflow(metric)`` hears of each observation that overflowed.

    ``start`` (Unix nanoseconds) is when the cumulative aggregation began: every data point's start time.
    """

    def __init__(
        self, max_series: int, on_overflow: Overflow, version: semconv.Version = semconv.LATEST, start: int = 0
    ) -> None:
        families = _Families(max_series, on_overflow)
        self._metrics = LatestMetrics(families) if version == semconv.LATEST else PreviousMetrics(families)
        self._families = families.all
        self._start = start

    def record(self, traces: TracesData) -> None:
        self.observe(batch_facts(traces))

    def observe(self, facts: Iterable[CallFacts | StepFacts]) -> None:
        """Add what spans were found to say (``connectors.genai_metrics.spans``)."""
        for fact in facts:
            if isinstance(fact, CallFacts):
                self._metrics.observe(fact)
            else:
                self._metrics.observe_step(fact)

    def point_count(self) -> int:
        """How many data points ``write`` would write."""
        return sum(len(family.series) for family in self._families)

    def write(self, scope_metrics: ScopeMetrics, now: int) -> None:
        """Every family with a series, as OTLP metrics cumulative from ``start`` to ``now``, into ``scope_metrics``."""
        times = Times(self._start, now)
        for family in self._families:
            if family.series:
                family.write(scope_metrics.metrics.add(), times)
