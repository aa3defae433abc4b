"""Dimensions made ready to run, which spans each selects, and evaluating one subject on one dimension.

The connector (live) and ``genai-collector evaluate`` (backfill) both go through ``Evaluator``, so a
stored call scores as it would have scored as it passed.

Sampling is deterministic: a subject is sampled for a dimension when a hash of its trace id and the
dimension's name falls below the dimension's ``sampling_rate``. Every replica of the collector (and
a backfill) thus picks the same traces, an agent run is sampled with all of its calls, and two
dimensions at 10% pick different (independent) tenths.
"""

from __future__ import annotations

import fnmatch
import hashlib
from dataclasses import dataclass

from collector import semconv
from connectors.genai_evaluation.config import DimensionConfig, Filters, GenAiEvaluationConfig
from connectors.genai_evaluation.judge import JudgeCall, JudgeClient
from connectors.genai_evaluation.result import Outcome
from connectors.genai_evaluation.rubrics import BUILTIN_RUBRICS, Rubric, render
from connectors.genai_evaluation.rules import Rule
from connectors.genai_evaluation.subject import Subject

HASH_SPACE = 2**64


@dataclass(frozen=True)
class Dimension:
    """One configured dimension, compiled: its rubric (judged) or its rule."""

    config: DimensionConfig
    rubric: Rubric | None
    rule: Rule | None
    judge_model: str

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def applies_to(self) -> str:
        return self.config.applies_to

    @classmethod
    def build(cls, config: DimensionConfig, default_model: str) -> Dimension:
        rubric = None
        if config.rubric:
            rubric = BUILTIN_RUBRICS[config.rubric]
        elif config.template:
            rubric = Rubric(
                template=config.template,
                applies_to=config.applies_to,
                scale_min=config.scale_min,
                scale_max=config.scale_max,
                pass_threshold=config.pass_threshold,
                labels=config.labels,
                pass_labels=config.pass_labels,
            )
        rule = Rule(config.rule) if config.rule is not None else None
        return cls(config, rubric, rule, config.judge_model or default_model)

    def selects(self, subject: Subject) -> bool:
        """Whether this dimension evaluates ``subject``: its kind, the filters, then the sample."""
        if subject.is_evaluator_call:
            return False
        if self.applies_to == "calls":
            if not semconv.is_model_call(subject.operation) or subject.operation == semconv.EMBEDDINGS:
                return False
        elif subject.operation not in semconv.INVOCATION_OPERATIONS:
            return False
        return matches(self.config.filters, subject) and self.sampled(subject.trace_id)

    def sampled(self, trace_id: bytes) -> bool:
        return sampled(self.config.sampling_rate, trace_id, self.name)


def matches(filters: Filters, subject: Subject) -> bool:
    if filters.services and not _any_glob(filters.services, subject.service):
        return False
    if filters.models and not any(_any_glob(filters.models, model) for model in subject.models):
        return False
    if filters.tenants and subject.tenant not in filters.tenants:
        return False
    if filters.operations and subject.operation not in filters.operations:
        return False
    return filters.has_findings is None or filters.has_findings == (subject.findings > 0)


def _any_glob(patterns: tuple[str, ...], value: str) -> bool:
    return any(fnmatch.fnmatchcase(value, pattern) for pattern in patterns)


def sampled(rate: float, trace_id: bytes, dimension: str) -> bool:
    """Deterministic by trace id and dimension: the same answer on every replica and in a backfill."""
    if rate >= 1.0:
        return True
    if rate <= 0.0:
        return False
    digest = hashlib.blake2b(trace_id + b"\x00" + dimension.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") < rate * HASH_SPACE


class Evaluator:
    """Evaluates subjects on dimensions; judged ones through ``judge`` (None when no dimension is judged)."""

    def __init__(self, config: GenAiEvaluationConfig, judge: JudgeClient | None) -> None:
        self.config = config
        self.dimensions = tuple(Dimension.build(d, config.judge.model) for d in config.dimensions)
        self.judge = judge

    def prompt(self, dimension: Dimension, subject: Subject) -> str:
        assert dimension.rubric is not None
        return render(dimension.rubric.template, subject, self.config.judge.max_content_chars)

    async def evaluate(self, dimension: Dimension, subject: Subject) -> tuple[Outcome, JudgeCall | None]:
        """The outcome and the judge call made for it (None for a rule); raises BudgetExhausted when the
        judge's budget cannot pay for it."""
        if dimension.rule is not None:
            return dimension.rule.evaluate(subject), None
        if self.judge is None or dimension.rubric is None:
            raise ValueError(f"{dimension.name} is judged but there is no judge")  # the config check prevents it
        return await self.judge.judge(dimension.judge_model, dimension.rubric, self.prompt(dimension, subject))


def needs_judge(config: GenAiEvaluationConfig) -> bool:
    return any(d.rule is None for d in config.dimensions)
