"""The GenAI client metrics: the semantic conventions' bucket boundaries, and what each span adds."""

from __future__ import annotations

from collections.abc import Callable

from collector.component import TracesData
from exporters.prometheus.families import Counter, Histogram
from exporters.prometheus.spans import LABEL_NAMES, CallFacts, call_facts, service_name

# gen_ai.client.token.usage, as the semantic conventions advise (powers of 4 from 1 to 4^13).
TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864)
# gen_ai.client.operation.duration and .time_to_first_chunk (seconds, doubling from 10 ms).
DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)

TOKEN_USAGE = "gen_ai_client_token_usage"
DURATION = "gen_ai_client_operation_duration_seconds"
TIME_TO_FIRST_CHUNK = "gen_ai_client_operation_time_to_first_chunk_seconds"
COST = "gen_ai_client_cost_usd_total"


class GenAiMetrics:
    """The four families, fed span by span; ``on_overflow(metric)`` hears of each observation that overflowed."""

    def __init__(self, max_series: int, on_overflow: Callable[[str], None]) -> None:
        self.token_usage = Histogram(
            TOKEN_USAGE,
            "Number of input and output tokens used, per LLM call.",
            (*LABEL_NAMES, "gen_ai_token_type"),
            TOKEN_BUCKETS,
            max_series,
            on_overflow,
        )
        self.duration = Histogram(
            DURATION,
            "Duration of LLM calls (span duration).",
            (*LABEL_NAMES, "error_type"),
            DURATION_BUCKETS,
            max_series,
            on_overflow,
        )
        self.time_to_first_chunk = Histogram(
            TIME_TO_FIRST_CHUNK,
            "Time to the first chunk of streamed LLM responses.",
            LABEL_NAMES,
            DURATION_BUCKETS,
            max_series,
            on_overflow,
        )
        self.cost = Counter(COST, "Cost of LLM calls in USD (gen_ai.usage.cost).", LABEL_NAMES, max_series, on_overflow)

    def record(self, traces: TracesData) -> None:
        for resource_spans in traces.resource_spans:
            service = service_name(resource_spans.resource)
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    facts = call_facts(span, service)
                    if facts is not None:
                        self._observe(facts)

    def _observe(self, facts: CallFacts) -> None:
        labels = facts.labels
        if facts.input_tokens is not None:
            self.token_usage.observe((*labels, "input"), facts.input_tokens)
        if facts.output_tokens is not None:
            self.token_usage.observe((*labels, "output"), facts.output_tokens)
        if facts.duration is not None:
            self.duration.observe((*labels, facts.error_type), facts.duration)
        if facts.time_to_first_chunk is not None:
            self.time_to_first_chunk.observe(labels, facts.time_to_first_chunk)
        if facts.cost is not None:
            self.cost.add(labels, facts.cost)

    def render(self) -> str:
        """Every family in the Prometheus text exposition format (version 0.0.4)."""
        lines: list[str] = []
        for family in (self.token_usage, self.duration, self.time_to_first_chunk):
            family.render(lines)
        self.cost.render(lines)
        return "\n".join(lines) + "\n"
