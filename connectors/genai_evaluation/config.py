"""Settings of the ``genai_evaluation`` connector: the judge, the dimensions, what is selected, the bounds.

::

    connectors:
      genai_evaluation:
        judge:
          model: gpt-4o-mini              # the default judge; an upstream below must serve it
          upstreams:                       # the proxy's upstream settings (a YAML anchor reuses them)
            - {name: openai, kind: openai, base_url: https://api.openai.com/v1, api_key: "${env:OPENAI_API_KEY}"}
          daily_budget_usd: 5
        dimensions:
          - {name: relevance, rubric: relevance, sampling_rate: 0.1}
          - {name: valid_json, rule: {type: json_valid}, filters: {models: ["gpt-4o*"]}}
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

import re2

from collector.config.types import Duration
from connectors.genai_evaluation.rubrics import BUILTIN_RUBRICS, template_problem
from processors.genai_security.rules import compile_pattern
from proxy.config import UpstreamConfig

DEFAULT_CONCURRENCY = 4
DEFAULT_JUDGE_TIMEOUT = Duration(60.0)
DEFAULT_MAX_ATTEMPTS = 3
DEFAULT_MAX_BACKOFF = Duration(10.0)
# 0 means no budget: every selected span is judged (priced and counted all the same).
DEFAULT_DAILY_BUDGET_USD = 0.0
DEFAULT_MAX_OUTPUT_TOKENS = 512
# Each message text put into a judge prompt is cut to this many characters (the cut is marked).
DEFAULT_MAX_CONTENT_CHARS = 8_000
DEFAULT_QUEUE_SIZE = 10_000
DEFAULT_AGENT_IDLE = Duration(30.0)
DEFAULT_MAX_TRACES = 10_000
DEFAULT_MAX_SPANS_PER_TRACE = 500
DEFAULT_SAMPLING_RATE = 1.0
JUDGE_FAMILIES = ("openai", "anthropic")

StructuredOutput = Literal["auto", "json_schema", "tool", "text"]
AppliesTo = Literal["calls", "agent_runs"]
RuleType = Literal["json_valid", "json_schema", "regex_present", "regex_absent", "length", "latency", "cost"]


@dataclass(frozen=True)
class JudgeConfig:
    """The model that scores, the upstreams that can serve it, and the limits of calling it.

    ``structured_output``: ``auto`` asks OpenAI-style upstreams for a JSON schema
    (``response_format``) and Anthropic for a forced tool call; ``text`` asks for JSON in
    the answer's text, for OpenAI-compatible servers without structured outputs.
    """

    model: str = ""
    upstreams: tuple[UpstreamConfig, ...] = ()
    concurrency: int = DEFAULT_CONCURRENCY
    timeout: Duration = DEFAULT_JUDGE_TIMEOUT
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    max_backoff: Duration = DEFAULT_MAX_BACKOFF
    daily_budget_usd: float = DEFAULT_DAILY_BUDGET_USD
    max_output_tokens: int = DEFAULT_MAX_OUTPUT_TOKENS
    max_content_chars: int = DEFAULT_MAX_CONTENT_CHARS
    structured_output: StructuredOutput = "auto"
    # genai_cost's price-override file, for judge models the price database does not know (local models).
    price_overrides: str = ""

    def upstream_for(self, model: str) -> UpstreamConfig | None:
        """The first upstream that serves ``model``, as the proxy routes."""
        return next((u for u in self.upstreams if u.serves(model)), None)

    def validate(self) -> Iterable[tuple[str, str]]:
        for i, upstream in enumerate(self.upstreams):
            for key, message in upstream.validate():
                yield f"upstreams[{i}].{key}", message
            if upstream.family not in JUDGE_FAMILIES or upstream.kind == "azure_openai":
                yield f"upstreams[{i}].kind", "a judge upstream is openai, anthropic or openai_compatible"
        if self.model and self.upstreams and self.upstream_for(self.model) is None:
            yield "model", f'no upstream serves "{self.model}"'
        if self.concurrency < 1:
            yield "concurrency", "must be at least 1"
        if self.timeout <= 0:
            yield "timeout", "must be more than 0"
        if self.max_attempts < 1:
            yield "max_attempts", "must be at least 1"
        if self.daily_budget_usd < 0:
            yield "daily_budget_usd", "must not be negative (0: no budget)"
        if self.max_output_tokens < 1:
            yield "max_output_tokens", "must be at least 1"
        if self.max_content_chars < 1:
            yield "max_content_chars", "must be at least 1"


@dataclass(frozen=True)
class Filters:
    """Which spans a dimension looks at; empty lists match everything. Model and service names may be globs;
    a model filter matches the requested model or the one that answered."""

    services: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    tenants: tuple[str, ...] = ()
    operations: tuple[str, ...] = ()
    # true: only spans with security findings; false: only spans without; unset: both.
    has_findings: bool | None = None


@dataclass(frozen=True)
class RuleConfig:
    """A check that needs no model. ``pattern`` for the regex rules (RE2 syntax), ``schema`` (JSON text) for
    json_schema, ``min_chars``/``max_chars`` for length, ``max_seconds`` for latency, ``max_usd`` for cost."""

    type: RuleType = "json_valid"
    pattern: str = ""
    schema: str = ""
    min_chars: int = 0
    max_chars: int = 0
    max_seconds: float = 0.0
    max_usd: float = 0.0

    def validate(self) -> Iterable[tuple[str, str]]:
        if self.type in ("regex_present", "regex_absent"):
            if not self.pattern:
                yield "pattern", f"is required for {self.type}"
            else:
                try:
                    compile_pattern(self.pattern)
                except re2.error as exc:
                    reason = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else str(exc)
                    yield "pattern", f"is not a valid RE2 pattern: {reason}"
        if self.type == "json_schema":
            from connectors.genai_evaluation.rules import schema_problem

            problem = schema_problem(self.schema)
            if problem:
                yield "schema", problem
        bounds = (self.min_chars, self.max_chars)
        if self.type == "length" and (min(bounds) < 0 or not any(bounds)):
            yield "min_chars", "set min_chars, max_chars or both (characters, not negative)"
        if self.type == "latency" and self.max_seconds <= 0:
            yield "max_seconds", "must be more than 0"
        if self.type == "cost" and self.max_usd <= 0:
            yield "max_usd", "must be more than 0"


@dataclass(frozen=True)
class DimensionConfig:
    """One thing calls or agent runs are scored on: a built-in ``rubric``, a custom ``template`` or a ``rule``.

    A template names span values in braces: ``{input}``, ``{output}``, ``{system}``, ``{tool_results}``,
    ``{steps}`` (agent runs) and ``{attributes[KEY]}``. It is scored on ``scale_min``..``scale_max`` and
    passes at ``pass_threshold``, or with ``labels`` and passes with one of ``pass_labels``.
    """

    name: str = ""
    rubric: str = ""
    template: str = ""
    rule: RuleConfig | None = None
    applies_to: AppliesTo = "calls"
    sampling_rate: float = DEFAULT_SAMPLING_RATE
    filters: Filters = field(default_factory=Filters)
    scale_min: float = 1.0
    scale_max: float = 5.0
    pass_threshold: float | None = None
    labels: tuple[str, ...] = ()
    pass_labels: tuple[str, ...] = ()
    judge_model: str = ""  # this dimension's judge, when not judge.model

    def validate(self) -> Iterable[tuple[str, str]]:
        if not self.name:
            yield "name", "is required"
        kinds = [key for key in ("rubric", "template", "rule") if getattr(self, key)]
        if len(kinds) != 1:
            yield "", "set exactly one of rubric, template or rule"
        if self.rubric and self.rubric not in BUILTIN_RUBRICS:
            yield "rubric", f'unknown rubric "{self.rubric}"; expected one of {", ".join(sorted(BUILTIN_RUBRICS))}'
        if self.template:
            problem = template_problem(self.template)
            if problem:
                yield "template", problem
            if self.scale_min >= self.scale_max and not self.labels:
                yield "scale_max", "must be more than scale_min"
            if self.pass_threshold is not None and not self.scale_min <= self.pass_threshold <= self.scale_max:
                yield "pass_threshold", "must lie within scale_min..scale_max"
            unknown = [label for label in self.pass_labels if label not in self.labels]
            if unknown:
                yield "pass_labels", f'"{unknown[0]}" is not one of labels'
        if self.rule is not None and self.applies_to != "calls":
            yield "applies_to", "rules check calls"
        if self.rubric in BUILTIN_RUBRICS and BUILTIN_RUBRICS[self.rubric].applies_to != self.applies_to:
            yield "applies_to", f"the {self.rubric} rubric applies to {BUILTIN_RUBRICS[self.rubric].applies_to}"
        if not 0.0 <= self.sampling_rate <= 1.0:
            yield "sampling_rate", "must be between 0 and 1"


@dataclass(frozen=True)
class AgentRunSettings:
    """Agent runs are judged once their trace got no span for ``idle_timeout``; what is held meanwhile is bounded."""

    idle_timeout: Duration = DEFAULT_AGENT_IDLE
    max_traces: int = DEFAULT_MAX_TRACES
    max_spans_per_trace: int = DEFAULT_MAX_SPANS_PER_TRACE

    def validate(self) -> Iterable[tuple[str, str]]:
        if self.idle_timeout <= 0:
            yield "idle_timeout", "must be more than 0"
        if self.max_traces < 1:
            yield "max_traces", "must be at least 1"
        if self.max_spans_per_trace < 1:
            yield "max_spans_per_trace", "must be at least 1"


@dataclass(frozen=True)
class GenAiEvaluationConfig:
    judge: JudgeConfig = field(default_factory=JudgeConfig)
    dimensions: tuple[DimensionConfig, ...] = ()
    agent_runs: AgentRunSettings = field(default_factory=AgentRunSettings)
    # Evaluations waiting for a judge; beyond this new ones are dropped and counted, consume never waits.
    queue_size: int = DEFAULT_QUEUE_SIZE

    def validate(self) -> Iterable[tuple[str, str]]:
        if not self.dimensions:
            yield "dimensions", "define at least one dimension"
        names = [d.name for d in self.dimensions]
        for i, dimension in enumerate(self.dimensions):
            if dimension.name and names.index(dimension.name) != i:
                yield f"dimensions[{i}].name", f'"{dimension.name}" is used by another dimension'
            if dimension.rule is None and (dimension.rubric or dimension.template):
                model = dimension.judge_model or self.judge.model
                if not model:
                    yield f"dimensions[{i}]", "a judged dimension needs judge.model (or its judge_model)"
                elif not self.judge.upstreams:
                    yield "judge.upstreams", "a judged dimension needs at least one upstream"
                elif self.judge.upstream_for(model) is None:
                    yield f"dimensions[{i}].judge_model", f'no upstream serves "{model}"'
        if self.queue_size < 1:
            yield "queue_size", "must be at least 1"
