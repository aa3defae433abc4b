"""Evaluating stored calls after the fact (``genai-collector evaluate``): the connector's code over the store's rows.

Calls are read from ``genai_calls`` (which calls, in the time window) joined to their spans in the
traces table (the attributes and resource the connector would have seen), made into subjects as
the connector makes them, selected by the dimension's filters and sampling, and evaluated by the
same ``Evaluator``: a stored call scores as it would have live. The SQL holds integers only (the
window's start, the limit), and runs through ``collector.query.client.run_query``: the running
collector's admin endpoint, else the store itself, under the store's read-only guard and profile.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from collector.query.result import QueryResult
from connectors.genai_evaluation.budget import DailyBudget
from connectors.genai_evaluation.config import GenAiEvaluationConfig
from connectors.genai_evaluation.engine import price_book
from connectors.genai_evaluation.evaluator import Dimension, Evaluator, needs_judge
from connectors.genai_evaluation.judge import BudgetExhausted, JudgeClient
from connectors.genai_evaluation.result import Outcome
from connectors.genai_evaluation.subject import Subject

DEFAULT_LIMIT = 1_000
NS_PER_SECOND = 1_000_000_000
CALLS_TABLE = "genai_calls"
STORED_COLUMNS = (
    "TraceId",
    "SpanId",
    "SpanName",
    "toUnixTimestamp64Nano(Timestamp)",
    "Duration",
    "SpanAttributes",
    "ResourceAttributes",
    "StatusCode",
    "Events.Name",
)


def stored_calls_sql(traces_table: str, since_ns: int, until_ns: int, limit: int) -> str:
    """The spans of at most ``limit`` calls stored in [since, until), oldest first.

    Only integers are put into the text (``traces_table`` is the exporter's checked identifier).
    """
    window = (
        f"Timestamp >= fromUnixTimestamp64Nano(toInt64({int(since_ns)})) "
        f"AND Timestamp < fromUnixTimestamp64Nano(toInt64({int(until_ns)}))"
    )
    return (
        f"SELECT {', '.join(STORED_COLUMNS)} FROM {traces_table} "
        f"WHERE {window} AND (TraceId, SpanId) IN "
        f"(SELECT TraceId, SpanId FROM {CALLS_TABLE} WHERE {window} ORDER BY Timestamp LIMIT {int(limit)}) "
        f"ORDER BY Timestamp LIMIT {int(limit)}"
    )


def subjects_of(result: QueryResult) -> list[Subject]:
    """The subjects of ``stored_calls_sql``'s rows."""
    subjects = []
    for row in result.rows:
        trace_id, span_id, name, start_ns, duration, attributes, resource, status, events = row
        subjects.append(
            Subject.from_row(
                trace_id, span_id, name, int(start_ns), int(duration), attributes, resource, status, events
            )
        )
    return subjects


def with_judge_model(config: GenAiEvaluationConfig, dimension: str, model: str) -> GenAiEvaluationConfig:
    """``config`` with ``dimension`` judged by ``model`` (the --judge-model option)."""
    dimensions = tuple(
        dataclasses.replace(d, judge_model=model) if d.name == dimension else d for d in config.dimensions
    )
    return dataclasses.replace(config, dimensions=dimensions)


@dataclass
class Backfill:
    """One dimension over stored subjects; ``selected`` are those its filters and sampling pick."""

    config: GenAiEvaluationConfig
    dimension: Dimension
    selected: list[Subject]

    @classmethod
    def plan(cls, config: GenAiEvaluationConfig, dimension_name: str, subjects: Iterable[Subject]) -> Backfill:
        evaluator = Evaluator(config, None)
        dimension = next(d for d in evaluator.dimensions if d.name == dimension_name)
        return cls(config, dimension, [s for s in subjects if dimension.selects(s)])

    def estimated_usd(self) -> float:
        """The most the judge calls may cost (0 for rules and unpriced models)."""
        if self.dimension.rule is not None:
            return 0.0
        judge = JudgeClient(self.config.judge, price_book(self.config), DailyBudget(0.0))
        evaluator = Evaluator(self.config, judge)
        return sum(
            judge.estimate_usd(self.dimension.judge_model, evaluator.prompt(self.dimension, s)) for s in self.selected
        )

    async def run(self, on_result: Callable[[Subject, Outcome], None]) -> int:
        """Evaluate every selected subject; returns how many the judge's budget left out."""
        judge = None
        if needs_judge(self.config):
            judge = JudgeClient(
                self.config.judge, price_book(self.config), DailyBudget(self.config.judge.daily_budget_usd)
            )
            judge.start()
        evaluator = Evaluator(self.config, judge)
        skipped = 0

        async def one(subject: Subject) -> None:
            nonlocal skipped
            try:
                outcome, _call = await evaluator.evaluate(self.dimension, subject)
            except BudgetExhausted:
                skipped += 1
                return
            on_result(subject, outcome)

        try:
            await asyncio.gather(*(one(subject) for subject in self.selected))
        finally:
            if judge is not None:
                await judge.close()
        return skipped


def since_ns(seconds: float, now_ns: int | None = None) -> int:
    return (time.time_ns() if now_ns is None else now_ns) - int(seconds * NS_PER_SECOND)


def describe(subject: Subject) -> dict[str, Any]:
    """A stored call as the dry run lists it."""
    return {
        "trace_id": subject.trace_id.hex(),
        "span_id": subject.span_id.hex(),
        "service": subject.service,
        "model": subject.model,
        "operation": subject.operation,
    }
