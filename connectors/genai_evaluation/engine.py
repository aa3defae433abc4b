"""The running connector's work: select spans, queue evaluations, run them on judge workers, emit results.

``consume`` only enqueues what ``connectors.genai_evaluation.selection`` selected (in a worker process
when the batch passed through one) and never waits on a judge: the queue is bounded by
``queue_size`` and what does not fit is dropped and counted. LLM calls are queued as they arrive
(they are finished spans); agent runs are held per trace (``collector.expiring``: bounded in traces and
idle time, as genai_loop_detection holds its runs) and queued once their trace got no span for
``agent_runs.idle_timeout``. ``judge.concurrency`` workers take evaluations from the queue; their
results leave in batches (``connectors.genai_evaluation.emitter``).

When the budget is spent, judged evaluations are dropped and counted, and logged once per UTC day.
At shutdown the held runs are queued, the queue is drained (within ``DRAIN_SECONDS``) and its results
emitted before the logs pipeline stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any, cast

from opentelemetry.proto.trace.v1.trace_pb2 import TracesData

from collector import semconv
from collector.component import ComponentSettings, Consumer
from collector.errors import ConsumeError
from collector.expiring import LIMIT, ExpiringMap
from collector.runtime.annotations import notes_for
from connectors.genai_evaluation.budget import DailyBudget
from connectors.genai_evaluation.config import GenAiEvaluationConfig
from connectors.genai_evaluation.emitter import ResultEmitter
from connectors.genai_evaluation.evaluator import Dimension, Evaluator, needs_judge
from connectors.genai_evaluation.generated_metrics import GenaiEvaluationSelfMetrics
from connectors.genai_evaluation.judge import BudgetExhausted, JudgeCall, JudgeClient
from connectors.genai_evaluation.records import judge_span
from connectors.genai_evaluation.result import Outcome
from connectors.genai_evaluation.selection import Selected, Selector
from connectors.genai_evaluation.subject import Subject
from processors.genai_cost.config import load_overrides
from processors.genai_cost.prices import PriceBook

# How long shutdown waits for queued evaluations to finish before it drops them (counted).
DRAIN_SECONDS = 30.0
# The longest wait between two looks for idle agent runs.
MAX_REAP_INTERVAL_SECONDS = 1.0
REAPS_PER_IDLE_TIMEOUT = 4

Job = tuple[Dimension, Subject]


def price_book(config: GenAiEvaluationConfig) -> PriceBook:
    """genai_cost's price book, with the judge's price-override file when it has one."""
    overrides = config.judge.price_overrides
    return PriceBook(load_overrides(Path(overrides)) if overrides else (), f"override {overrides}")


class EvaluationEngine:
    """One per connector id: the judge, the queue and the workers that the connector's pairs share."""

    def __init__(self, settings: ComponentSettings, config: GenAiEvaluationConfig) -> None:
        self._id = str(settings.id)
        self._logger = settings.logger
        self._config = config
        self.budget = DailyBudget(config.judge.daily_budget_usd)
        judge = JudgeClient(config.judge, price_book(config), self.budget) if needs_judge(config) else None
        self.evaluator = Evaluator(config, judge)
        self.results: Consumer[Any] | None = None  # the logs pipelines (the traces->logs pair)
        self.judge_spans: Consumer[Any] | None = None  # the traces pipelines (the traces->traces pair), optional
        self._queue: asyncio.Queue[Job] = asyncio.Queue(maxsize=config.queue_size)
        self._workers: list[asyncio.Task[None]] = []
        self._reaper: asyncio.Task[None] | None = None
        # At shutdown every held run is due at once: the map's clock jumps past every idle timeout.
        self._clock_skew = 0.0
        self._runs: ExpiringMap[bytes, list[Subject]] = ExpiringMap(
            config.agent_runs.max_traces,
            config.agent_runs.idle_timeout,
            self._runs_evicted,
            lambda: time.monotonic() + self._clock_skew,
        )
        self._run_dimensions = [d for d in self.evaluator.dimensions if d.applies_to == "agent_runs"]
        self._by_name = {d.name: d for d in self.evaluator.dimensions}
        self._selector = Selector(config)
        self._exhausted_day: int | None = None
        self._starts = 0
        metrics = GenaiEvaluationSelfMetrics(settings.telemetry)
        self._metrics = metrics
        self._dropped_full = metrics.evaluation_dropped.bind(connector=self._id, reason="queue_full")
        self._dropped_budget = metrics.evaluation_dropped.bind(connector=self._id, reason="budget_exhausted")
        self._dropped_emit = metrics.evaluation_dropped.bind(connector=self._id, reason="emit_failed")
        self._dropped_shutdown = metrics.evaluation_dropped.bind(connector=self._id, reason="shutdown")
        self._stopped = False
        self._emitter: ResultEmitter | None = None
        metrics.evaluation_queued.watch(lambda: float(self._queue.qsize()), connector=self._id)

    # ---- lifecycle (started by the first pair, stopped by the last)

    async def start(self) -> None:
        self._starts += 1
        if self._starts > 1:
            return
        self._stopped = False
        if self.results is None:
            # Only the traces->traces pair is in use: results would go nowhere, and judge calls cost money.
            self._logger.warning(
                "%s feeds no logs pipeline: its results would go nowhere, so nothing is evaluated "
                "(list it as a receiver of a logs pipeline)",
                self._id,
            )
        judge = self.evaluator.judge
        if judge is not None:
            judge.start()
            if self.budget.limit_usd:
                for model in sorted({d.judge_model for d in self.evaluator.dimensions if d.rubric is not None}):
                    if not judge.estimate_usd(model, ""):
                        self._logger.warning(
                            "judge model %s has no known price: the daily budget does not limit its calls "
                            "(set judge.price_overrides)",
                            model,
                        )
        if self.results is not None:
            self._emitter = ResultEmitter(self.results, self._dropped_emit.add, self._logger)
            self._emitter.start()
        workers = self._config.judge.concurrency
        self._workers = [asyncio.create_task(self._work(), name=f"{self._id} judge") for _ in range(workers)]
        if self._run_dimensions:
            self._reaper = asyncio.create_task(self._reap(), name=f"{self._id} agent runs")

    async def shutdown(self) -> None:
        if self._starts == 0:
            return
        self._starts -= 1
        if self._starts > 0:
            return
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
        self._clock_skew = float("inf")
        self._queue_runs(self._runs.take_expired())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), DRAIN_SECONDS)
        self._stopped = True  # from here, what observe() is handed is counted and dropped
        # What the drain did not finish, still queued or being judged (counted before the workers' cancellation
        # marks theirs done); asyncio.Queue keeps no public count of it.
        unfinished: int = self._queue._unfinished_tasks  # type: ignore[attr-defined]
        if unfinished:
            self._dropped_shutdown.add(unfinished)
        for worker in self._workers:
            worker.cancel()
        for worker in self._workers:
            with contextlib.suppress(asyncio.CancelledError):
                await worker
        while not self._queue.empty():
            self._queue.get_nowait()
            self._queue.task_done()
        self._workers = []
        if self._emitter is not None:
            await self._emitter.close()  # what the drain judged, sent before the logs pipeline stops
            self._emitter = None
        if self.evaluator.judge is not None:
            await self.evaluator.judge.close()

    # ---- the data path

    def observe(self, traces: TracesData) -> None:
        """Queue what the batch gave (the worker part's notes, else selected here); never waits."""
        if self.results is None:
            return  # no logs pipeline takes the results (said once at start)
        noted = notes_for(traces, self._id)
        batches = [self._selector.select(traces)] if noted is None else cast(list[Selected], noted[0])
        for selected in batches:
            for name, subject in selected.calls:
                self._enqueue(self._by_name[name], subject)
            for subject in selected.run_spans:
                self._hold(subject)

    def _hold(self, subject: Subject) -> None:
        spans = self._runs.get(subject.trace_id)
        if spans is None:
            spans = []
        if len(spans) >= self._config.agent_runs.max_spans_per_trace:
            self._metrics.evaluation_evicted_spans.add(1, connector=self._id, reason="steps")
        else:
            spans.append(subject)
        self._runs.put(subject.trace_id, spans)

    def _runs_evicted(self, reason: str, count: int) -> None:
        if reason == LIMIT:
            self._metrics.evaluation_evicted_spans.add(count, connector=self._id, reason="limit")

    def _queue_runs(self, runs: Iterable[tuple[bytes, list[Subject]]]) -> None:
        for _trace, spans in runs:
            for run in agent_runs(spans):
                for dimension in self._run_dimensions:
                    if dimension.selects(run):
                        self._enqueue(dimension, run)

    async def _reap(self) -> None:
        idle = self._config.agent_runs.idle_timeout
        interval = min(idle / REAPS_PER_IDLE_TIMEOUT, MAX_REAP_INTERVAL_SECONDS)
        while True:
            await asyncio.sleep(interval)
            self._queue_runs(self._runs.take_expired())

    def _enqueue(self, dimension: Dimension, subject: Subject) -> None:
        if self._stopped:
            self._dropped_shutdown.add(1)
            return
        try:
            self._queue.put_nowait((dimension, subject))
        except asyncio.QueueFull:
            self._dropped_full.add(1)

    async def _work(self) -> None:
        while True:
            dimension, subject = await self._queue.get()
            try:
                await self._evaluate(dimension, subject)
            except Exception:  # noqa: BLE001 - one evaluation's bug must not stop the worker
                self._logger.exception("evaluating %s failed", dimension.name)
            finally:
                self._queue.task_done()

    async def _evaluate(self, dimension: Dimension, subject: Subject) -> None:
        try:
            outcome, call = await self.evaluator.evaluate(dimension, subject)
        except BudgetExhausted:
            self._budget_exhausted()
            return
        if call is not None:
            await self._judged(call, subject, dimension)
        await self._emit(subject, dimension, outcome)

    def _budget_exhausted(self) -> None:
        self._dropped_budget.add(1)
        day = self.budget.day
        if self._exhausted_day != day:
            self._exhausted_day = day
            self._logger.warning(
                "the judge's daily budget of %g USD is spent (%g USD): judged evaluations stop until 00:00 UTC",
                self.budget.limit_usd,
                self.budget.spent_usd,
            )

    async def _emit(self, subject: Subject, dimension: Dimension, outcome: Outcome) -> None:
        kind = "error" if outcome.failed else {True: "passed", False: "failed", None: "scored"}[outcome.passed]
        self._metrics.evaluation_results.add(1, connector=self._id, dimension=dimension.name, outcome=kind)
        if self._emitter is not None:
            await self._emitter.add((subject, dimension.name, outcome))

    async def _judged(self, call: JudgeCall, subject: Subject, dimension: Dimension) -> None:
        """A judge call ended: count it, and send its span to the traces pipelines when there are any."""
        model = call.model
        self._metrics.evaluation_judge_calls.add(1, connector=self._id, error_type=call.error_type, model=model)
        if call.cost_usd:
            self._metrics.evaluation_judge_cost.add(call.cost_usd, connector=self._id, model=model)
        if self.judge_spans is None:
            return
        try:
            await self.judge_spans.consume(judge_span(call, subject, dimension.name))
        except ConsumeError as exc:
            self._logger.warning("the traces pipeline refused a judge call's span: %s", exc)


def agent_runs(spans: list[Subject]) -> list[Subject]:
    """The agent run of one trace: its outermost invocation span, with every other held span of the trace as its
    steps (none when the trace held no invocation)."""
    invocations = [s for s in spans if s.operation in semconv.INVOCATION_OPERATIONS]
    # Nested agents (an agent calling an agent) are steps of the outermost one.
    if not invocations:
        return []
    root = min(invocations, key=lambda s: (s.start_ns, -s.end_ns))
    return [root.with_steps(s for s in spans if s is not root)]
