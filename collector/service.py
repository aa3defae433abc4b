"""The running collector: builds the pipeline graph from config, starts it, drains it on stop.

Each pipeline carries one signal (traces, logs or metrics) and is receivers →
processors (a chain, one instance per pipeline) → a fan-out to its exporters
(one instance per exporter ID and signal, shared by that signal's pipelines that
name it). A receiver in several pipelines of a signal fans out to each
pipeline's first consumer; a receiver serving several signals may be one
instance (``collector.component.SharedComponents``). A connector is one instance
per pair of signals it joins (collector.pipeline_graph): an exporter of the
pipelines of the first, feeding the pipelines of the second that receive from it.
Traces pipelines run their GenAI processors in the worker processes; logs and
metrics pipelines run their processors in the main process.

Start order is downstream first: extensions, exporters, then the pipelines and
connectors level by level from the most downstream (a connector starts once
every pipeline it feeds did, and before those feeding it), receivers last.
Shutdown is the reverse, upstream first, so receivers stop taking data before
the processors flush, each connector flushes into the pipelines it feeds while
they still run, and the exporters drain their queues last.
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
    ConnectorFactory,
    Consumer,
    Exporter,
    MainPart,
)
from collector.config.problems import ConfigError, ConfigProblem, join_path
from collector.config.service import CollectorConfig, ComponentConfig, PipelineConfig
from collector.counting import CountingConsumer
from collector.errors import raise_fan_out_errors
from collector.health import HealthReporter, worker_threads_problem
from collector.pipeline_graph import ConnectorInstance, Node, PipelineGraph
from collector.registry import Registry
from collector.runtime.plan import ComponentStep, build_chain, plan_pipeline, settings_maker
from collector.runtime.pool import WorkerPool, worker_count
from collector.runtime.stage import WorkerStage
from collector.runtime.worker import WorkerPipeline, WorkerSpec
from collector.signal_metrics import signal_metrics
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
    processor downstream may modify the batch in place; with ``clone_all`` the
    last too (a connector's batch is still read by the other exporters of the
    pipeline it came from).

    The ``then`` consumers (exporters whose factory says ``accepted_only``: they
    only add up or show what they get) are handed the batch, as it is, once every
    other consumer accepted it, and not when one refused: the client sends the
    batch again, and it is counted when it is accepted, once.
    """

    def __init__(
        self,
        consumers: Sequence[Consumer[D]],
        clone: bool = False,
        then: Sequence[Consumer[D]] = (),
        clone_all: bool = False,
    ) -> None:
        self._consumers: list[Consumer[D]] = list(consumers)
        self._clone = clone or clone_all
        self._clone_all = clone_all
        self._then: list[Consumer[D]] = list(then)

    async def consume(self, data: D) -> None:
        batches = [data] * len(self._consumers)
        if self._clone:
            for i in range(len(batches) - (0 if self._clone_all else 1)):
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
        # Processors run in this process, upstream first, by pipeline: those before the workers' share of a
        # pipeline (or all of it, without workers), and those after it.
        self._head_processors: dict[str, list[Component]] = {}
        self._tail_processors: dict[str, list[Component]] = {}
        self._graph = PipelineGraph(
            config.pipelines, {cid: registry.connectors[cid.type] for cid in config.components["connectors"]}
        )
        # Each connector instance, and the counted consumer its upstream pipelines export to.
        self._connectors: dict[ConnectorInstance, Component] = {}
        self._connector_entries: dict[ConnectorInstance, Consumer[Any]] = {}
        self._offloaded: set[str] = set()  # the pipelines whose middle runs in the worker pool
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
    def connectors(self) -> Mapping[ConnectorInstance, Component]:
        """Each connector instance, by its id and the signals it joins."""
        return self._connectors

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

    def _export_target(self, cid: ComponentID) -> ComponentConfig:
        """What a pipeline's exporter id names: a connector or an exporter (the config check keeps them apart)."""
        connectors = self.config.components["connectors"]
        return connectors[cid] if cid in connectors else self.config.components["exporters"][cid]

    def _main_parts(self, steps: Sequence[ComponentStep]) -> list[tuple[ComponentID, MainPart]]:
        """The parts in this process of the processors ``steps`` runs in the workers, for those that have one."""
        parts = []
        for step in steps:
            create = getattr(step.factory, "create_main_part", None)
            if create is not None:
                parts.append((step.id, create(self._settings_for(step.id, "processor"), step.config)))
        return parts

    def _observers(self, pipeline: str) -> tuple[ComponentStep, ...]:
        """The exporters and connectors of ``pipeline`` with a part in the worker processes (their factory's
        create_worker_part)."""
        steps = []
        for cid in self.config.pipelines[pipeline].exporters:
            component = self._export_target(cid)
            factory = self._factory(component)
            if getattr(factory, "create_worker_part", None) is not None:
                steps.append(ComponentStep(cid, component.config, factory))
        return tuple(steps)

    def _exporters_of(self, name: str, pipeline: PipelineConfig) -> Consumer[Any]:
        """Where ``pipeline`` ends: its exporter, or a fan-out handing the accepted_only ones what the others took.

        A connector is one of its exporters: each instance of it that takes the pipeline's signal.
        """
        first: list[Consumer[Any]] = []
        then: list[Consumer[Any]] = []
        for cid in pipeline.exporters:
            component = self._export_target(cid)
            if component.section == "connectors":
                targets = [self._connector_entries[i] for i in self._graph.instances_of(name, cid)]
            else:
                targets = [self._exporters_by_signal[pipeline.signal][cid]]
            (then if getattr(self._factory(component), "accepted_only", False) else first).extend(targets)
        if len(first) + len(then) == 1:
            return [*first, *then][0]
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
        self._offloaded = {plan.name for plan in offloaded}
        if offloaded:
            spec = WorkerSpec(
                tuple(WorkerPipeline(plan.name, plan.middle, self._observers(plan.name)) for plan in offloaded),
                config.log_level,
                self._memory_limit,
            )
            self._pool = WorkerPool(workers, spec, self.telemetry)
        entries: dict[str, Consumer[Any]] = {}
        # Downstream first: what a connector feeds exists before the connector, which exists before its feeders.
        for level in reversed(self._graph.levels()):
            for node in level:
                if isinstance(node, ConnectorInstance):
                    self._build_connector(node, entries)
                elif config.pipelines[node].signal == "traces":
                    entries[node] = self._build_traces_pipeline(node, config.pipelines[node], plans[node])
                else:
                    entries[node] = self._build_main_pipeline(node, config.pipelines[node])
        for signal in SIGNALS:
            for component in config.used("receivers", signal):
                names = [
                    name for name, p in config.pipelines.items() if p.signal == signal and component.id in p.receivers
                ]
                consumer = self._into_pipelines(names, entries)
                create = self._factory(component).creator(signal)
                receiver = create(self._settings(component, "receiver"), component.config, consumer)
                if all(receiver is not other for _, other in self._receiver_instances):
                    self._receiver_instances.append((component.id, receiver))
                self._receivers.setdefault(component.id, receiver)
        for component in config.used("extensions"):
            self._extensions[component.id] = self._factory(component).create(
                self._settings(component, "extension"), component.config
            )

    def _into_pipelines(self, names: Sequence[str], entries: Mapping[str, Consumer[Any]], shared: bool = False) -> Any:
        """The consumer handing a batch to the pipelines ``names``: a copy each to those with processors when
        several share it (or when the batch is ``shared`` with other readers still)."""
        targets = [entries[name] for name in names]
        mutating = any(self.config.pipelines[name].processors for name in names)
        if len(targets) == 1 and not (shared and mutating):
            return targets[0]
        return FanOut(targets, clone=mutating, clone_all=shared and mutating)

    def _build_connector(self, instance: ConnectorInstance, entries: Mapping[str, Consumer[Any]]) -> None:
        """A connector instance feeding its pipelines, counted as a receiver of theirs and as an exporter of those
        feeding it."""
        cid, component = instance.id, self.config.components["connectors"][instance.id]
        factory: ConnectorFactory[Any] = self._factory(component)
        out = signal_metrics(self.telemetry, instance.signal_out)
        consumer = CountingConsumer(
            self._into_pipelines(self._graph.feeds[instance], entries, shared=True),
            accepted=out.receiver_accepted.bind(receiver=str(cid), transport="connector"),
            refused=out.receiver_refused.bind(receiver=str(cid), transport="connector"),
        )
        create = factory.creators[(instance.signal_in, instance.signal_out)]
        connector = create(self._settings_for(cid, "connector"), component.config, consumer)
        self._connectors[instance] = connector
        taken = signal_metrics(self.telemetry, instance.signal_in)
        self._connector_entries[instance] = CountingConsumer(
            connector,
            accepted=taken.exporter_sent.bind(exporter=str(cid)),
            refused=taken.exporter_enqueue_failed.bind(exporter=str(cid)),
        )

    def _build_traces_pipeline(self, name: str, pipeline: PipelineConfig, plan: Any) -> Consumer[Any]:
        """A traces pipeline: its head and tail processors here, its middle in the workers (when there are any)."""
        settings_for = self._settings_for
        consumer: Consumer[Any] = self._exporters_of(name, pipeline)
        # Spans a connector hands on (forward) were tapped in the pipeline they came from: shown once.
        if any(cid not in self.config.components["connectors"] for cid in pipeline.receivers):
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
            self._steps(pipeline),
            self._settings_for,
            self.telemetry,
            self._exporters_of(name, pipeline),
            pipeline.signal,
        )
        self._add_processors(name, built, [])
        return consumer

    def _add_processors(
        self, pipeline: str, head: list[tuple[ComponentID, Component]], tail: list[tuple[ComponentID, Component]]
    ) -> None:
        for cid, processor in (*head, *tail):
            self._processor_ids[id(processor)] = f"{pipeline}/{cid}"
        self._head_processors[pipeline] = [processor for _, processor in head]
        self._tail_processors[pipeline] = [processor for _, processor in tail]

    def _upstream_first(self) -> list[Component]:
        """The pipelines' processors, the worker pool and the connectors, in shutdown order: level by level from
        upstream, each level's head processors, then (at the last level that runs processors in the workers) the
        pool, then its tail processors, then its connectors."""
        levels = self._graph.levels()
        pool_level = max(
            (i for i, level in enumerate(levels) for node in level if self._uses_pool(node)),
            default=-1,
        )
        order: list[Component] = []
        for i, level in enumerate(levels):
            pipelines = [node for node in level if isinstance(node, str)]
            order.extend(processor for name in pipelines for processor in self._head_processors.get(name, ()))
            if i == pool_level and self._pool is not None:
                order.append(self._pool)
            order.extend(processor for name in pipelines for processor in self._tail_processors.get(name, ()))
            order.extend(self._connectors[node] for node in level if isinstance(node, ConnectorInstance))
        return order

    def _uses_pool(self, node: Node) -> bool:
        return isinstance(node, str) and node in self._offloaded

    async def start(self) -> None:
        """Start downstream first; if anything fails to start, stop what did and re-raise."""
        order: list[Component] = [
            *self._extensions.values(),
            *(exporter for _, exporter in self._all_exporters()),
            *reversed(self._upstream_first()),
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
            *self._upstream_first(),
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
            *(
                (f"processor {self._processor_ids[id(c)]}", c)
                for processors in (*self._head_processors.values(), *self._tail_processors.values())
                for c in processors
            ),
            *((("workers", self._pool),) if self._pool is not None else ()),
            *((f"connector {instance}", c) for instance, c in self._connectors.items()),
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
