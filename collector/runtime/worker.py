"""A worker process: runs the middle of each pipeline (its GenAI processors) on the batches the main process sends.

The worker builds every pipeline's middle run of processors from the config it
was given, then answers frames one at a time, in order: a batch in, through the
chain, and what the chain passed on back out as OTLP bytes, with whatever its
counters counted since the last answer. One at a time keeps a processor's state
as it would be in one process; the main process sends each trace to one worker,
so that state is per trace.

A processor that refuses a batch (a ConsumeError) is answered with the error,
which the main process turns into the client's answer; an unexpected exception
is logged here and answered as a retryable error, so the client keeps its data.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import socket
import sys
from collections.abc import Mapping
from dataclasses import dataclass

from opentelemetry.proto.trace.v1.trace_pb2 import TracesData

from collector.component import Component, ComponentID, ComponentKind, ConnectorFactory, Exporter, WorkerPart
from collector.errors import ConsumeError
from collector.pdata import encode, joins_exactly
from collector.runtime import frames
from collector.runtime.frames import Kind
from collector.runtime.plan import ComponentStep, build_chain, settings_maker
from collector.telemetry import Telemetry

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s [worker %(worker)s]: %(message)s"
logger = logging.getLogger("genai_collector.worker")


@dataclass(frozen=True)
class WorkerPipeline:
    """A pipeline's share of a worker: the middle run of its processors, and its exporters' worker parts."""

    name: str
    processors: tuple[ComponentStep, ...]
    observers: tuple[ComponentStep, ...] = ()  # exporters and connectors with a create_worker_part


@dataclass(frozen=True)
class WorkerSpec:
    """Everything a worker needs to build its chains, by pipeline index."""

    pipelines: tuple[WorkerPipeline, ...]
    log_level: int
    memory_limit: int = 0


class _Capture:
    """The end of a worker's chain: keeps what the last processor passed on."""

    def __init__(self) -> None:
        self.batches: list[TracesData] = []

    async def consume(self, traces: TracesData) -> None:
        self.batches.append(traces)

    def take(self) -> list[TracesData]:
        taken, self.batches = self.batches, []
        return taken


def _encode(batches: list[TracesData]) -> tuple[bytes, bool]:
    """What the chain passed on as one encoding (encodings concatenate into their merge: one batch, however many
    the chain passed on), and whether it joins other answers' exactly (collector.pdata.joins_exactly)."""
    encoded = b"".join(encode(batch) for batch in batches)
    return encoded, all(joins_exactly(batch) for batch in batches)


def run(index: int, channel: socket.socket, spec: WorkerSpec) -> None:
    """The worker process's body (its target): serve ``channel`` until told to stop or the main process goes."""
    # The main process handles signals and stops workers itself; a Ctrl-C reaching the group must not.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _configure_logging(index, spec.log_level)
    try:
        asyncio.run(_serve(channel, spec))
    except frames.BrokenChannel:
        pass  # the main process went away: nothing is left to answer
    finally:
        channel.close()


def _configure_logging(index: int, level: int) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(LOG_FORMAT, defaults={"worker": index}))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


async def _serve(channel: socket.socket, spec: WorkerSpec) -> None:
    reader, writer = await asyncio.open_connection(sock=channel)
    telemetry = Telemetry()
    settings_for = settings_maker(telemetry, spec.memory_limit)
    capture = _Capture()
    entries = []
    observers: list[list[tuple[str, WorkerPart]]] = []
    components: list[Component] = []
    for pipeline in spec.pipelines:
        entry, built = build_chain(pipeline.processors, settings_for, telemetry, capture)
        entries.append(entry)
        components.extend(component for _, component in built)
        observers.append(
            [
                (str(step.id), step.factory.create_worker_part(settings_for(step.id, _kind(step)), step.config))  # type: ignore[attr-defined]
                for step in pipeline.observers
            ]
        )
    host = _WorkerHost()
    for component in reversed(components):
        await component.start(host)  # downstream first
    # What exists now (the chains, rule sets, price tables) lives as long as the worker: out of the garbage
    # collector's way, so the collections the per-batch garbage sets off are cheaper.
    gc.collect()
    gc.freeze()
    writer.writelines(frames.frame(Kind.READY, os.getpid()))
    await writer.drain()
    try:
        while True:
            message = await frames.read_frame(reader)
            if message.kind is Kind.STOP:
                break
            if message.kind is not Kind.PROCESS:
                raise frames.BrokenChannel(f"unexpected {message.kind.name} frame")
            index, encoded = frames.read_process_payload(message.payload)
            try:
                await entries[index].consume(TracesData.FromString(encoded))
                passed_on = capture.take()
                notes = host.take_notes()
                for exporter, part in observers[index]:
                    notes[exporter] = [part.observe(batch) for batch in passed_on]
                encoded, joins = _encode(passed_on)
                answer = frames.ok_result(encoded, telemetry.changes(), notes, joins)
            except Exception as exc:
                capture.take()
                host.take_notes()
                if not isinstance(exc, ConsumeError):
                    logger.exception("pipeline %s failed on a batch", spec.pipelines[index].name)
                answer = frames.failed_result(exc, telemetry.changes())
            writer.writelines(frames.frame(Kind.RESULT, message.request, *answer))
            await writer.drain()
    finally:
        for component in components:  # upstream first
            try:
                await component.shutdown()
            except Exception:
                logger.exception("%s did not shut down cleanly", type(component).__name__)
    writer.writelines(frames.frame(Kind.STOPPED, 0, *frames.ok_result(b"", telemetry.changes(), {}, True)))
    await writer.drain()
    writer.close()


def _kind(step: ComponentStep) -> ComponentKind:
    """An observer is an exporter or a connector (both may read every span in the workers)."""
    return "connector" if isinstance(step.factory, ConnectorFactory) else "exporter"


class _WorkerHost:
    """What a worker's processors see: no exporters (those run in the main process), and notes for their main parts."""

    def __init__(self) -> None:
        self._notes: frames.Notes = {}

    @property
    def exporters(self) -> Mapping[ComponentID, Exporter]:
        return {}

    def note(self, processor: ComponentID, item: object) -> None:
        self._notes.setdefault(str(processor), []).append(item)

    def take_notes(self) -> frames.Notes:
        taken, self._notes = self._notes, {}
        return taken
