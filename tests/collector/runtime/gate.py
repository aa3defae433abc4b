"""A processor for the runtime's tests that holds a batch in its worker until the test opens a gate.

A batch whose first span is named ``hold`` waits at the gate, a named pipe:
the processor blocks reading it, the test writes one byte to let the batch
through. Across processes that is an event to wait on, not a sleep. A batch
whose first span is named ``refuse`` gets a permanent error, ``crash`` an
unexpected exception; any other batch passes at once.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from collector.component import ComponentSettings, Host, Processor, ProcessorFactory, TracesConsumer, TracesData
from collector.errors import PermanentError
from collector.registry import Registry, default_registry

HOLD = "hold"
REFUSE = "refuse"
CRASH = "crash"


@dataclass(frozen=True)
class GateConfig:
    fifo: str = ""  # the named pipe held batches wait at


class Gate:
    def __init__(self, settings: ComponentSettings, config: GateConfig, next_consumer: TracesConsumer) -> None:
        self._fifo = config.fifo
        self._next = next_consumer

    async def start(self, host: Host) -> None:
        return None

    async def shutdown(self) -> None:
        return None

    async def consume(self, traces: TracesData) -> None:
        first = traces.resource_spans[0].scope_spans[0].spans[0].name if traces.resource_spans else ""
        if first == REFUSE:
            raise PermanentError("the gate refuses this batch")
        if first == CRASH:
            raise RuntimeError("the gate broke")
        if first == HOLD:
            # Blocking on purpose: the worker holds the batch, as a slow processor would.
            fd = os.open(self._fifo, os.O_RDONLY)
            try:
                os.read(fd, 1)
            finally:
                os.close(fd)
        await self._next.consume(traces)


def create_gate(settings: ComponentSettings, config: GateConfig, next_consumer: TracesConsumer) -> Processor:
    return Gate(settings, config, next_consumer)


factory = ProcessorFactory(type="gate", config_type=GateConfig, create=create_gate, runs_in="worker")


def registry_with_gate() -> Registry:
    base = default_registry()
    return Registry(
        receivers=base.receivers,
        processors={**base.processors, "gate": factory},
        exporters=base.exporters,
        extensions=base.extensions,
        connectors=base.connectors,
    )
