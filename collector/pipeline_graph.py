"""The pipelines joined by connectors: which connector instances exist, what each feeds, and in what order.

As in the OpenTelemetry Collector (service/internal/graph), a connector listed
as an exporter of pipelines of signal IN and as a receiver of pipelines of
signal OUT exists once per (connector id, IN, OUT) pair it supports; every
pipeline of IN that exports to it hands it its batches, and it feeds every
pipeline of OUT that receives from it. Pipelines and connector instances form a
directed graph that must have no cycle; its levels (the longest path from a
pipeline no connector feeds) give the order to start and stop them in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from collector.component import ComponentID, ConnectorFactory
from collector.signals import Signal


class PipelineLike(Protocol):
    """What the graph needs of a pipeline's config."""

    @property
    def signal(self) -> Signal: ...

    @property
    def receivers(self) -> tuple[ComponentID, ...]: ...

    @property
    def exporters(self) -> tuple[ComponentID, ...]: ...


@dataclass(frozen=True, order=True)
class ConnectorInstance:
    """One connector for one pair of signals."""

    id: ComponentID
    signal_in: Signal
    signal_out: Signal

    def __str__(self) -> str:
        return f"{self.id} ({self.signal_in} to {self.signal_out})"


Node = str | ConnectorInstance  # a pipeline by name, or a connector instance


class PipelineGraph:
    """The connector instances of a config and the pipelines on either side of each."""

    def __init__(
        self, pipelines: Mapping[str, PipelineLike], connectors: Mapping[ComponentID, ConnectorFactory[object]]
    ):
        self.pipelines = pipelines
        self.connectors = connectors
        takes: dict[ComponentID, set[Signal]] = {cid: set() for cid in connectors}
        emits: dict[ComponentID, set[Signal]] = {cid: set() for cid in connectors}
        for pipeline in pipelines.values():
            for cid in pipeline.exporters:
                if cid in connectors:
                    takes[cid].add(pipeline.signal)
            for cid in pipeline.receivers:
                if cid in connectors:
                    emits[cid].add(pipeline.signal)
        self.instances: list[ConnectorInstance] = sorted(
            ConnectorInstance(cid, signal_in, signal_out)
            for cid, factory in connectors.items()
            for signal_in in takes[cid]
            for signal_out in emits[cid]
            if factory.supports(signal_in, signal_out)
        )
        # What each pipeline exports to, and which pipelines each instance feeds, in config order.
        self.exports_to: dict[str, list[ConnectorInstance]] = {name: [] for name in pipelines}
        self.feeds: dict[ConnectorInstance, list[str]] = {instance: [] for instance in self.instances}
        for name, pipeline in pipelines.items():
            for cid in pipeline.exporters:
                self.exports_to[name].extend(
                    i for i in self.instances if i.id == cid and i.signal_in == pipeline.signal
                )
            for instance in self.instances:
                if instance.id in pipeline.receivers and instance.signal_out == pipeline.signal:
                    self.feeds[instance].append(name)

    def instances_of(self, pipeline: str, cid: ComponentID) -> list[ConnectorInstance]:
        """The instances of connector ``cid`` that ``pipeline`` exports to."""
        return [instance for instance in self.exports_to[pipeline] if instance.id == cid]

    def _next(self, node: Node) -> Sequence[Node]:
        return self.exports_to[node] if isinstance(node, str) else self.feeds[node]

    def cycles(self) -> list[list[str]]:
        """Each cycle of pipelines through connectors, once, as the pipelines and connectors on it in order
        (starting and ending with the same pipeline)."""
        found: list[list[str]] = []
        seen: set[frozenset[str]] = set()
        state: dict[Node, int] = {}  # 1: on the current path, 2: done
        path: list[Node] = []

        def visit(node: Node) -> None:
            state[node] = 1
            path.append(node)
            for following in self._next(node):
                if state.get(following) == 1:
                    cycle = [
                        str(n.id) if isinstance(n, ConnectorInstance) else n for n in path[path.index(following) :]
                    ]
                    key = frozenset(cycle)
                    if key not in seen:
                        seen.add(key)
                        found.append([*cycle, cycle[0]])
                elif following not in state:
                    visit(following)
            path.pop()
            state[node] = 2

        for name in self.pipelines:
            if name not in state:
                visit(name)
        return found

    def levels(self) -> list[list[Node]]:
        """Pipelines and connector instances by level, upstream first: a node's level is one more than the highest
        of the nodes feeding it (0 for a pipeline no connector feeds). Raises ValueError on a cycle."""
        nodes: list[Node] = [*self.pipelines, *self.instances]
        incoming: dict[Node, int] = {node: 0 for node in nodes}
        for node in nodes:
            for following in self._next(node):
                incoming[following] += 1
        level: dict[Node, int] = {node: 0 for node in nodes}
        ready = [node for node in nodes if incoming[node] == 0]
        placed = 0
        while ready:
            node = ready.pop(0)
            placed += 1
            for following in self._next(node):
                level[following] = max(level[following], level[node] + 1)
                incoming[following] -= 1
                if incoming[following] == 0:
                    ready.append(following)
        if placed != len(nodes):
            raise ValueError("the pipelines form a cycle through connectors")
        by_level: list[list[Node]] = [[] for _ in range(max(level.values(), default=-1) + 1)]
        for node in nodes:
            by_level[level[node]].append(node)
        return by_level
