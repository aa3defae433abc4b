"""Where each processor of a pipeline runs, and the one code path that chains processors wherever they run.

A pipeline's processors split into three runs: those at its head that must
run in the main process (the memory limiter, which guards the whole
collector's memory), the middle run that worker processes share out by trace
id (the GenAI processors), and those at its tail that must run in the main
process again (the batch processor, which merges calls). A processor that must
run in the main process between two that run in workers would need the batch
to cross processes twice; the config says so in one line instead.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from collector.component import Component, ComponentID, ComponentKind, ComponentSettings, Consumer, SharedComponents
from collector.config.problems import ConfigProblem
from collector.counting import CountingConsumer
from collector.signal_metrics import signal_metrics
from collector.signals import Signal
from collector.telemetry import BoundCounter, Telemetry

LOGGER_PREFIX = "genai_collector"


@dataclass(frozen=True)
class ComponentStep:
    """One component of a pipeline: its id, settings and factory (picklable, to be built in a worker)."""

    id: ComponentID
    config: object
    factory: object


@dataclass(frozen=True)
class PipelinePlan:
    """A pipeline's processors in the three runs, upstream first."""

    name: str
    head: tuple[ComponentStep, ...]
    middle: tuple[ComponentStep, ...]
    tail: tuple[ComponentStep, ...]


def plan_pipeline(name: str, steps: Sequence[ComponentStep]) -> PipelinePlan:
    """Cut ``steps`` into head, middle and tail; raises ValueError naming a main-process step between workers'."""
    placements = [getattr(step.factory, "runs_in", "main") for step in steps]
    first = next((i for i, where in enumerate(placements) if where == "worker"), len(steps))
    last = max((i for i, where in enumerate(placements) if where == "worker"), default=first - 1)
    for i in range(first, last + 1):
        if placements[i] != "worker":
            raise ValueError(
                f'processor "{steps[i].id}" runs in the main process, so it cannot sit between processors '
                "that run in the worker processes; put it before or after them"
            )
    return PipelinePlan(name, tuple(steps[:first]), tuple(steps[first : last + 1]), tuple(steps[last + 1 :]))


def placement_problems(
    pipelines: Mapping[str, Sequence[ComponentStep]], path_of: Callable[[str], str]
) -> list[ConfigProblem]:
    """One line per pipeline whose processors cannot be placed (see ``plan_pipeline``)."""
    problems = []
    for name, steps in pipelines.items():
        try:
            plan_pipeline(name, steps)
        except ValueError as exc:
            problems.append(ConfigProblem(path_of(name), str(exc)))
    return problems


SettingsFor = Callable[[ComponentID, ComponentKind], ComponentSettings]


def settings_maker(telemetry: Telemetry, memory_limit: int = 0, worker_processes: int = 0) -> SettingsFor:
    """ComponentSettings with the collector's logger names, counting into ``telemetry``, sharing one
    SharedComponents (a component serving several signals is one instance)."""
    shared = SharedComponents()

    def make(cid: ComponentID, kind: ComponentKind) -> ComponentSettings:
        logger = logging.getLogger(f"{LOGGER_PREFIX}.{kind}.{cid}")
        return ComponentSettings(cid, kind, logger, telemetry, memory_limit, worker_processes, shared)

    return make


def build_chain(
    steps: Sequence[ComponentStep],
    settings_for: SettingsFor,
    telemetry: Telemetry,
    next_consumer: Consumer[Any],
    signal: Signal = "traces",
) -> tuple[Consumer[Any], list[tuple[ComponentID, Component]]]:
    """The ``signal`` processors of ``steps`` chained in front of ``next_consumer``: the chain's entry, and the
    processors.

    Each processor is counted on both sides: what reaches it (and what it
    raised for), and what it passes on that the next one accepted. One
    ``CountingConsumer`` between two processors counts both sides of that
    hop, so a chain of n processors has n + 1 of them (one in front of each,
    one behind the last), not two per processor.
    """
    metrics = signal_metrics(telemetry, signal)
    consumer = next_consumer
    # The counters of ``consumer`` when it is one of the processors: what reaches it, and what it refuses.
    offered: BoundCounter | None = None
    refused: BoundCounter | None = None
    built: list[tuple[ComponentID, Component]] = []
    for step in reversed(steps):
        processor_id = str(step.id)
        outgoing = metrics.processor_outgoing.bind(processor=processor_id)
        link = CountingConsumer(consumer, offered=offered, accepted=outgoing, refused=refused)
        # ``create`` is every factory's traces creator (the Collector's CreateTraces).
        factory: Any = step.factory
        create = factory.create if signal == "traces" else factory.creator(signal)
        processor = create(settings_for(step.id, "processor"), step.config, link)
        built.insert(0, (step.id, processor))
        consumer = processor
        offered = metrics.processor_incoming.bind(processor=processor_id)
        refused = metrics.processor_refused.bind(processor=processor_id)
    if not built:
        return consumer, built
    return CountingConsumer(consumer, offered=offered, refused=refused), built
