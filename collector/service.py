"""The running collector: builds the pipeline graph from config, starts it, drains it on stop.

Each pipeline carries one signal (traces, logs or metrics) and is receivers →
processors (a chain, one instance per pipeline) → a fan-out to its exporters
(one instance per exporter ID and signal, shared by that signal's pipelines that
name it). A receiver in several pipelines of a signal fans out to each
pipeline's first consumer; a receiver serving several signals may be one
instance (``collector.component.SharedComponents``). Traces pipelines run their
GenAI processors in the worker processes; logs and metrics pipelines run their
processors in the main process. Start order is downstream first (extensions,
exporters, processors, receivers); shutdown is upstream first, so receivers stop
taking data before the processors flush and the exporters drain their queues.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Generic, Protocol, runtime_checkable

from collector.component import (
    Abandonable,
    Component,
    ComponentID,
    ComponentKind,
    ComponentSettings,
    Consumer,
    Exporter,
    MainPart,
)
from collector.config.problems import ConfigError, ConfigProblem, join_path
from collector.config.service import CollectorConfig, ComponentConfig, PipelineConfig
from collector.errors import raise_fan_out_errors
from collector.health import HealthReporter, worker_threads_problem
from collector.registry import Registry
from collector.runtime.plan import ComponentStep, build_chain, plan_pipeline, settings_maker
from collector.runtime.pool import WorkerPool, worker_count
from collector.runtime.stage import WorkerStage
from collector.runtime.worker import WorkerPipeline, WorkerSpec
from collector.signals import SIGNALS, D, Signal, empty_like
from collector.tap import PipelineTap, TappedConsumer
from collector.telemetry import Telemetry
from processors.memory_limiter.memory import total_bytes

LOGGER_PREFIX = "genai_collector"
logger = logging.getLogger(LOGGER_PREFIX)


@runtime_checkable
class _MemoryLimiting(Protocol):
    """A processor config that limits the process's memory (the memory_limiter's)."""

    def limits(self, total_bytes: int) -> tuple[int, int]: ...


@runtime_checkable
class _MemoryBudgeted(Protocol):
    """A component config whose memory must fit under the memory limit (the clickhouse exporter's chDB)."""

    def memory_problems(self, memory_limit: int, total_bytes: int) -> Iterable[tuple[str, str]]: ...


def memory_limit(config: CollectorConfig, total: int) -> int:
    """The lowest soft limit of the memory_limiters in use; 0 when none is configured."""
    limiters = [c.config for c in config.used("processors") if isinstance(c.config, _MemoryLimiting)]
    soft_limits = [limiter.limits(total)[1] for limiter in limiters]
    return min(soft_limits, default=0)


def check_memory_budgets(config: CollectorConfig, total: int | None = None) -> int:
    """The memory limit components get (see memory_limit); ConfigError when one of them cannot fit under it."""
    total = total_bytes() if total is None else total
    limit = memory_limit(config, total)
    problems = [
        ConfigProblem(join_path(component.path, key), message)
        for component in config.used("exporters")
        if isinstance(component.config, _MemoryBudgeted)
        for key, message in component.config.memory_problems(limit, total)
    ]
    if problems:
        raise ConfigError(problems)
    return limit


class FanOut(Generic[D]):
    """Hands one batch (of any one signal) to several consumers; succeeds only if all of them accept it.

    When one branch refuses, the client is told to retry and the branches that
    accepted will see the data twice: duplicates, never loss, as in the
    OpenTelemetry Collector's fan-out.

    With ``clone`` set, every consumer but the last gets its own copy, because a
    processor downstream may modify the batch in place.

    The ``then`` consumers (exporters whose factory says ``accepted_only``: they
    only add up or show what they get) are handed the batch, as it is, once every
    other consumer accepted it, and not when one refused: the client sends the
    batch again, and it is counted when it is accepted, once.
    """

    def __init__(self, consumers: Sequence[Consumer[D]], clone: bool = False, then: Sequence[Consumer[D]] = ()) -> None:
        self._consumers: list[Consumer[D]] = list(consumers)
        self._clone = clone
        self._then: list[Consumer[D]] = list(then)

    async def consume(self, data: D) -> None:
        batches = [data] * len(self._consumers)
        if self._clone:
            for i in range(len(batches) - 1):
                batches[i] = empty_like(data)
                batches[i].CopyFrom(data)
        await _all_accept(zip(self._consumers, batches, strict=True))
        if self._then:
            await _all_accept((consumer, data) for consumer in self._then)


async def _all_accept(deliveries: Iterable[tuple[Consumer[D], D]]) -> None:
    """Hand each consumer its batch at once; raise what the fan-out answers when any refused."""
    results = await asyncio.gather(
        *(consumer.consume(batch) for consumer, batch in deliveries),
        return_exceptions=True,
    )
    raise_fan_out_errors(results)


class Service:
    """Every component of one configuration, wired together; also the Host components see."""

    def __init__(self, config: CollectorConfig, registry: Registry, telemetry: Telemetry | None = None) -> None:
        self.config = config
        self.telemetry = telemetry or Telemetry()
        self.ready = False
        # What each pipeline's exporters accepted, for listeners in this process (the api's live stream).
        self.tap = PipelineTap()
        self._registry = registry
        # One exporter per exporter ID and signal: each signal has its own sending queue.
        self._exporters_by_signal: dict[Signal, dict[ComponentID, Exporter]] = {signal: {} for signal in SIGNALS}
        # Processors run in this process, upstream first, pipeline by pipeline: those before the workers' share
        # of a pipeline (or all of it, without workers), and those after it.
        self._head_processors: list[Component] = []
        self._tail_processors: list[Component] = []
        self._pool: WorkerPool | None = None
        self._processor_ids: dict[int, str] = {}  # id(processor) -> "pipeline/processor", for health lines
        self._receivers: dict[ComponentID, Component] = {}
        self._receiver_instances: list[tuple[ComponentID, Component]] = []  # each once, however many signals it serves
        self._extensions: dict[ComponentID, Component] = {}
        self._started: list[Component] = []
        self._memory_limit = check_memory_budgets(config)
        self._workers = worker_count(config.workers)
        self._settings_for = settings_maker(self.telemetry, self._memory_limit, self._workers)
        self._build()

    @property
    def exporters(self) -> Mapping[ComponentID, Exporter]:
        """The traces exporters (the ones the extensions read the store through)."""
        return self._exporters_by_signal["traces"]

    def exporters_of(self, signal: Signal) -> Mapping[ComponentID, Exporter]:
        return self._exporters_by_signal[signal]

    def _all_exporters(self) -> list[tuple[str, Exporter]]:
        """Every exporter with the name health lines give it: its id, and its signal but for traces."""
        return [
            (str(cid) if signal == "traces" else f"{cid} ({signal})", exporter)
            for signal, exporters in self._exporters_by_signal.items()
            for cid, exporter in exporters.items()
        ]

    @property
    def receivers(self) -> Mapping[ComponentID, Component]:
        return self._receivers

    @property
    def extensions(self) -> Mapping[ComponentID, Component]:
        return self._extensions

    def _settings(self, component: ComponentConfig, kind: ComponentKind) -> ComponentSettings:
        return self._settings_for(component.id, kind)

    def _factory(self, component: ComponentConfig) -> Any:
        return self._registry.kind(component.section)[component.id.type]

    def _main_parts(self, steps: Sequence[ComponentStep]) -> list[tuple[ComponentID, MainPart]]:
        """The parts in this process of the processors ``steps`` runs in the workers, for those that have one."""
        parts = []
        for step in steps:
            create = getattr(step.factory, "create_main_part", None)
            if create is not None:
                parts.append((step.id, create(self._settings_for(step.id, "processor"), step.config)))
        return parts

    def _observers(self, pipeline: str) -> tuple[ComponentStep, ...]:
        """The exporters of ``pipeline`` with a part in the worker processes (ExporterFactory.create_worker_part)."""
        steps = []
        for cid in self.config.pipelines[pipeline].exporters:
            component = self.config.components["exporters"][cid]
            factory = self._factory(component)
            if getattr(factory, "create_worker_part", None) is not None:
                steps.append(ComponentStep(cid, component.config, factory))
        return tuple(steps)

    def _exporters_of(self, pipeline: PipelineConfig) -> Consumer[Any]:
        """Where ``pipeline`` ends: its exporter, or a fan-out handing the accepted_only ones what the others took."""
        exporters = [self._exporters_by_signal[pipeline.signal][cid] for cid in pipeline.exporters]
        if len(exporters) == 1:
            return exporters[0]
        first: list[Consumer[Any]] = []
        then: list[Consumer[Any]] = []
        for cid, exporter in zip(pipeline.exporters, exporters, strict=True):
            factory = self._factory(self.config.components["exporters"][cid])
            (then if getattr(factory, "accepted_only", False) else first).append(exporter)
        return FanOut(first, then=then)

    def _steps(self, pipeline: PipelineConfig) -> list[ComponentStep]:
        steps = []
        for cid in pipeline.processors:
            component = self.config.components["processors"][cid]
            steps.append(ComponentStep(cid, component.config, self._factory(component)))
        return steps

    def _build(self) -> None:
        config = self.config
        for signal in SIGNALS:
            for component in config.used("exporters", signal):
                create = self._factory(component).creator(signal)
                self._exporters_by_signal[signal][component.id] = create(
                    self._settings(component, "exporter"), component.config
                )
        traces = {name: pipeline for name, pipeline in config.pipelines.items() if pipeline.signal == "traces"}
        plans = {name: plan_pipeline(name, self._steps(pipeline)) for name, pipeline in traces.items()}
        workers = self._workers
        offloaded = [plan for plan in plans.values() if plan.middle] if workers else []
        if offloaded:
            spec = WorkerSpec(
                tuple(WorkerPipeline(plan.name, plan.middle, self._observers(plan.name)) for plan in offloaded),
                config.log_level,
                self._memory_limit,
            )
            self._pool = WorkerPool(workers, spec, self.telemetry)
        entries: dict[str, Consumer[Any]] = {}
        for name, pipeline in config.pipelines.items():
            if pipeline.signal == "traces":
                entries[name] = self._build_traces_pipeline(name, pipeline, plans[name])
            else:
                entries[name] = self._build_main_pipeline(name, pipeline)
        for signal in SIGNALS:
            for component in config.used("receivers", signal):
                names = [
                    name for name, p in config.pipelines.items() if p.signal == signal and component.id in p.receivers
                ]
                targets = [entries[name] for name in names]
                mutating = any(config.pipelines[name].processors for name in names)
                consumer = targets[0] if len(targets) == 1 else FanOut(targets, clone=mutating)
                create = self._factory(component).creator(signal)
                receiver = create(self._settings(component, "receiver"), component.config, consumer)
                if all(receiver is not other for _, other in self._receiver_instances):
                    self._receiver_instances.append((component.id, receiver))
                self._receivers.setdefault(component.id, receiver)
        for component in config.used("extensions"):
            self._extensions[component.id] = self._factory(component).create(
                self._settings(component, "extension"), component.config
            )

    def _build_traces_pipeline(self, name: str, pipeline: PipelineConfig, plan: Any) -> Consumer[Any]:
        """A traces pipeline: its head and tail processors here, its middle in the workers (when there are any)."""
        settings_for = self._settings_for
        consumer: Consumer[Any] = self._exporters_of(pipeline)
        consumer = TappedConsumer(consumer, self.tap)
        consumer, tail = build_chain(plan.tail, settings_for, self.telemetry, consumer)
        middle: list[tuple[ComponentID, Component]] = []
        if self._pool is not None and plan.middle:
            observers = [step.id for step in self._observers(name)]
            consumer = WorkerStage(
                self._pool, name, consumer, self._main_parts(plan.middle), observers, feeds_exporters=not plan.tail
            )
        else:
            consumer, middle = build_chain(plan.middle, settings_for, self.telemetry, consumer)
        consumer, head = build_chain(plan.head, settings_for, self.telemetry, consumer)
        self._add_processors(name, [*head, *middle], tail)
        return consumer

    def _build_main_pipeline(self, name: str, pipeline: PipelineConfig) -> Consumer[Any]:
        """A logs or metrics pipeline: every processor in this process."""
        consumer, built = build_chain(
            self._steps(pipeline), self._settings_for, self.telemetry, self._exporters_of(pipeline), pipeline.signal
        )
        self._add_processors(name, built, [])
        return consumer

    def _add_processors(
        self, pipeline: str, head: list[tuple[ComponentID, Component]], tail: list[tuple[ComponentID, Component]]
    ) -> None:
        for cid, processor in (*head, *tail):
            self._processor_ids[id(processor)] = f"{pipeline}/{cid}"
        self._head_processors.extend(processor for _, processor in head)
        self._tail_processors.extend(processor for _, processor in tail)

    async def start(self) -> None:
        """Start downstream first; if anything fails to start, stop what did and re-raise."""
        order: list[Component] = [
            *self._extensions.values(),
            *(exporter for _, exporter in self._all_exporters()),
            *reversed(self._tail_processors),
            *([self._pool] if self._pool is not None else []),
            *reversed(self._head_processors),
            *(receiver for _, receiver in self._receiver_instances),
        ]
        try:
            for component in order:
                await component.start(self)
                self._started.append(component)
        except BaseException:
            await self.shutdown()
            raise
        self.ready = True

    async def shutdown(self) -> None:
        """Stop upstream first, each component draining into the next; safe to call twice."""
        self.ready = False
        order: list[Component] = [
            *(receiver for _, receiver in self._receiver_instances),
            *self._head_processors,
            *([self._pool] if self._pool is not None else []),
            *self._tail_processors,
            *(exporter for _, exporter in self._all_exporters()),
            *self._extensions.values(),
        ]
        for component in order:
            if component not in self._started:
                continue
            try:
                await component.shutdown()
            except Exception:
                # One component's failure must not keep the others from draining.
                logger.exception("%s did not shut down cleanly", type(component).__name__)
        self._started.clear()

    async def health(self) -> list[str]:
        """What keeps the collector from taking data in or moving it on, one line each; empty when healthy."""
        if not self.ready:
            return ["the collector is starting or stopping"]
        named: list[tuple[str, object]] = [
            *((f"receiver {cid}", c) for cid, c in self._receiver_instances),
            *((f"processor {self._processor_ids[id(c)]}", c) for c in (*self._head_processors, *self._tail_processors)),
            *((("workers", self._pool),) if self._pool is not None else ()),
            *((f"exporter {name}", c) for name, c in self._all_exporters()),
        ]
        problems = [
            f"{name}: {problem}"
            for name, component in named
            if isinstance(component, HealthReporter)
            for problem in component.health_problems()
        ]
        workers = await worker_threads_problem()
        if workers is not None:
            problems.append(workers)
        return problems

    def abandon(self) -> None:
        """Make a shutdown in progress end now: exporters stop retrying and drop (and count) what is queued."""
        for _, exporter in self._all_exporters():
            if isinstance(exporter, Abandonable):
                exporter.abandon()
