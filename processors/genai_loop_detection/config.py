"""Settings of the ``genai_loop_detection`` processor: what counts as a loop, budgets, and memory bounds."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from collector.config.types import Duration

DEFAULT_MAX_TRACES = 10_000
DEFAULT_MAX_CONVERSATIONS = 10_000
DEFAULT_MAX_STEPS = 500
DEFAULT_TRACE_IDLE = Duration(300.0)
DEFAULT_CONVERSATION_IDLE = Duration(1800.0)
# A trace whose agent span came before some of its steps (exporters that send parents first) is judged this
# long after its last span: its spans come in one or two export batches, seconds apart.
DEFAULT_LATE_SPAN_WAIT = Duration(30.0)
DEFAULT_REPEATED_TOOL_CALLS = 3
DEFAULT_CYCLE_REPETITIONS = 3
DEFAULT_MAX_CYCLE_LENGTH = 6
DEFAULT_REPEATED_REQUESTS = 3
DEFAULT_TRACE_MAX_STEPS = 200
DEFAULT_TRACE_MAX_TOKENS = 2_000_000
DEFAULT_CONVERSATION_MAX_STEPS = 2_000
DEFAULT_CONVERSATION_MAX_TOKENS = 20_000_000
DEFAULT_LATENCY_MIN_SAMPLES = 50
DEFAULT_LATENCY_DEVIATIONS = 4.0
DEFAULT_LATENCY_MIN_SECONDS = Duration(1.0)


@dataclass(frozen=True)
class Budget:
    """Limits for one trace or one conversation; 0 switches a limit off."""

    max_steps: int = 0  # LLM calls plus tool calls
    max_tokens: int = 0  # input plus output tokens of the LLM calls
    max_cost: float = 0.0  # gen_ai.usage.cost.amount (from genai_cost), in USD

    def validate(self) -> Iterable[tuple[str, str]]:
        for name in ("max_steps", "max_tokens", "max_cost"):
            if getattr(self, name) < 0:
                yield name, "must not be negative (0 switches it off)"


@dataclass(frozen=True)
class LatencySettings:
    """A call is an outlier when its duration is ``deviations`` standard deviations above its model's usual.

    The usual is a running mean and deviation of log-durations per provider, model and operation,
    judged only once ``min_samples`` calls were seen; calls shorter than ``min_duration`` never count.
    """

    enabled: bool = True
    min_samples: int = DEFAULT_LATENCY_MIN_SAMPLES
    deviations: float = DEFAULT_LATENCY_DEVIATIONS
    min_duration: Duration = DEFAULT_LATENCY_MIN_SECONDS

    def validate(self) -> Iterable[tuple[str, str]]:
        if self.min_samples < 2:
            yield "min_samples", "must be at least 2"
        if self.deviations <= 0:
            yield "deviations", "must be more than 0"


@dataclass(frozen=True)
class GenAiLoopDetectionConfig:
    """Thresholds of the loop detectors, budgets per trace and conversation, and how much is held.

    Each open trace and conversation keeps a summary of its recent steps (at most ``max_steps``);
    beyond ``max_traces`` / ``max_conversations``, or after the idle time, the least recently active
    are forgotten and counted.
    """

    repeated_tool_calls: int = DEFAULT_REPEATED_TOOL_CALLS  # same tool, same arguments, this many times
    cycle_repetitions: int = DEFAULT_CYCLE_REPETITIONS  # a block of steps repeated this many times
    max_cycle_length: int = DEFAULT_MAX_CYCLE_LENGTH  # longest block looked for
    repeated_requests: int = DEFAULT_REPEATED_REQUESTS  # consecutive near-identical LLM requests
    trace_budget: Budget = field(
        default_factory=lambda: Budget(max_steps=DEFAULT_TRACE_MAX_STEPS, max_tokens=DEFAULT_TRACE_MAX_TOKENS)
    )
    conversation_budget: Budget = field(
        default_factory=lambda: Budget(
            max_steps=DEFAULT_CONVERSATION_MAX_STEPS, max_tokens=DEFAULT_CONVERSATION_MAX_TOKENS
        )
    )
    unexecuted_tool_calls: bool = True
    ignored_tool_errors: bool = True
    latency: LatencySettings = field(default_factory=LatencySettings)
    max_traces: int = DEFAULT_MAX_TRACES
    max_conversations: int = DEFAULT_MAX_CONVERSATIONS
    max_steps: int = DEFAULT_MAX_STEPS
    trace_idle_timeout: Duration = DEFAULT_TRACE_IDLE
    conversation_idle_timeout: Duration = DEFAULT_CONVERSATION_IDLE
    late_span_wait: Duration = DEFAULT_LATE_SPAN_WAIT

    def validate(self) -> Iterable[tuple[str, str]]:
        for name in ("repeated_tool_calls", "cycle_repetitions", "repeated_requests"):
            if getattr(self, name) < 2:
                yield name, "must be at least 2"
        if self.max_cycle_length < 2:
            yield "max_cycle_length", "must be at least 2"
        for name in ("max_traces", "max_conversations"):
            if getattr(self, name) < 1:
                yield name, "must be at least 1"
        longest_cycle = self.max_cycle_length * self.cycle_repetitions
        if self.max_steps < longest_cycle:
            yield "max_steps", f"must be at least max_cycle_length x cycle_repetitions ({longest_cycle})"
        for name in ("trace_idle_timeout", "conversation_idle_timeout", "late_span_wait"):
            if getattr(self, name) <= 0:
                yield name, "must be more than 0"
