"""The worker processes, seen from the main process: start them, share batches out by trace id, gather the answers.

``process`` splits a batch by trace id (collector.runtime.sharding), sends each
part to its worker as OTLP bytes over the worker's socket, and waits for every
part's answer; the batch is accepted only when every part is, so a client
either has all of its spans taken or is told to send them again. Each worker
holds at most ``MAX_BYTES_IN_FLIGHT`` of batches sent and not yet answered;
beyond that, or while a worker is restarting, the batch is refused with a
retryable error and a Retry-After, which the receivers turn into 503 (gRPC
UNAVAILABLE) and the proxy into a later retry: the pipeline pushes back, it
never queues without bound.

A worker that exits (killed, crashed) fails the batches it held with a
retryable error, so their clients send them again; nothing was acknowledged
for them. It is started again after a pause that doubles while it keeps dying.
The workers' counters are absorbed into the main process's telemetry with each
answer, so /metrics reads as one collector.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import multiprocessing
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.context import ForkServerContext
from multiprocessing.process import BaseProcess

from opentelemetry.proto.trace.v1.trace_pb2 import TracesData

from collector.component import Host
from collector.errors import RetryableError, StartError
from collector.pdata import span_count
from collector.runtime import frames, members
from collector.runtime.frames import Kind
from collector.runtime.generated_metrics import WorkersSelfMetrics
from collector.runtime.sharding import split
from collector.runtime.worker import WorkerSpec, run
from collector.telemetry import Telemetry

# Batches sent to one worker and not yet answered; a bound on memory held for it, and on how far it may lag.
MAX_BYTES_IN_FLIGHT = 64 * 1024 * 1024
REFUSED_RETRY_AFTER_SECONDS = 1.0
START_TIMEOUT_SECONDS = 120.0
STOP_TIMEOUT_SECONDS = 30.0
FIRST_RESTART_DELAY_SECONDS = 0.5
MAX_RESTART_DELAY_SECONDS = 30.0
# A worker that ran this long before dying starts again at once, as after its first death.
STABLE_RUN_SECONDS = 60.0
# Modules the fork server imports once, so each worker it forks starts with the processors loaded.
PRELOAD = ["collector.runtime.worker", "processors.genai_security", "processors.genai_loop_detection"]

logger = logging.getLogger("genai_collector.workers")


@dataclass(frozen=True)
class Processed:
    """What a pipeline's middle run passed on: the batch, its encoding, and the notes for the main parts.

    ``encoded`` is collector.pdata.encode(``traces``), byte for byte: each worker answers with the
    deterministic encoding of what its chain passed on, the answers are joined in worker order and
    ``traces`` is parsed from exactly those bytes, and the encoding of a message parsed from an
    encoding is that encoding. Joined encodings are their merge's only when none but the last carries
    top-level fields unknown to this OTLP version (collector.pdata.joins_exactly); a worker says when
    one of its batches does, and ``encoded`` is then None. ``notes`` are what the processors noted for
    their main parts, by processor id.
    """

    traces: TracesData
    encoded: bytes | None
    notes: frames.Notes


class _Worker:
    """One worker process and its channel; ``pending`` maps request ids to what waits for their answers."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.process: BaseProcess | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.reader_task: asyncio.Task[None] | None = None
        self.pending: dict[int, tuple[asyncio.Future[frames.Result], int]] = {}
        self.bytes_in_flight = 0
        self.ready = False
        self.source = ""  # the telemetry source name of the current process
        self.restart_delay = FIRST_RESTART_DELAY_SECONDS
        self.started_at = 0.0
        self.stopped: asyncio.Future[None] | None = None

    def in_flight(self) -> float:
        return float(self.bytes_in_flight)


class WorkerPool:
    """``size`` worker processes running the middle runs of ``spec``'s pipelines."""

    def __init__(self, size: int, spec: WorkerSpec, telemetry: Telemetry) -> None:
        self._size = size
        self._spec = spec
        self._pipelines = {pipeline.name: index for index, pipeline in enumerate(spec.pipelines)}
        self._telemetry = telemetry
        self._context: ForkServerContext = multiprocessing.get_context("forkserver")
        self._workers = [_Worker(i) for i in range(size)]
        self._ids = itertools.count(1)
        self._closing = False
        self._restarts: set[asyncio.Task[None]] = set()
        self._metrics = WorkersSelfMetrics(telemetry)
        for worker in self._workers:
            self._metrics.collector_worker_bytes_in_flight.watch(worker.in_flight, worker=str(worker.index))

    @property
    def size(self) -> int:
        return self._size

    def pids(self) -> list[int]:
        return [w.process.pid for w in self._workers if w.process is not None and w.process.pid is not None]

    async def start(self, host: Host | None = None) -> None:
        """Start every worker and wait until each has built its chains; on failure stop them all."""
        self._context.set_forkserver_preload(PRELOAD)
        try:
            await asyncio.gather(*(self._launch(worker) for worker in self._workers))
        except BaseException:
            await self.shutdown()
            raise

    async def process(self, pipeline: str, traces: TracesData) -> Processed:
        """What ``pipeline``'s middle run passes on for ``traces`` (see Processed); raises the first part's
        ConsumeError."""
        index = self._pipelines[pipeline]
        parts = split(traces, self._size)
        sends: list[tuple[_Worker, bytes]] = []
        for worker, part in zip(self._workers, parts, strict=True):
            if part is None:
                continue
            if not worker.ready:
                self._refused(part, "restarting")
                raise RetryableError(f"worker {worker.index} is restarting", REFUSED_RETRY_AFTER_SECONDS)
            encoded = part.SerializeToString()
            if worker.bytes_in_flight + len(encoded) > MAX_BYTES_IN_FLIGHT and worker.bytes_in_flight:
                self._refused(part, "in_flight")
                held = f"worker {worker.index} holds {worker.bytes_in_flight} bytes of batches"
                raise RetryableError(held, REFUSED_RETRY_AFTER_SECONDS)
            sends.append((worker, encoded))
        futures = [self._send(worker, index, encoded) for worker, encoded in sends]
        results = await asyncio.gather(*futures)
        notes: frames.Notes = {}
        for result in results:
            if result.error is not None:
                raise result.error
            for processor, items in result.notes.items():
                notes.setdefault(processor, []).extend(items)
        encoded = b"".join(result.batch for result in results)
        exact = all(result.joins_exactly for result in results)
        return Processed(TracesData.FromString(encoded), encoded if exact else None, notes)

    def _send(self, worker: _Worker, pipeline: int, encoded: bytes) -> asyncio.Future[frames.Result]:
        assert worker.writer is not None
        request = next(self._ids)
        future: asyncio.Future[frames.Result] = asyncio.get_running_loop().create_future()
        worker.pending[request] = (future, len(encoded))
        worker.bytes_in_flight += len(encoded)
        worker.writer.writelines(frames.frame(Kind.PROCESS, request, *frames.process_payload(pipeline, encoded)))
        return future

    def _refused(self, part: TracesData, reason: str) -> None:
        self._metrics.collector_worker_refused_spans.add(span_count(part), reason=reason)

    def health_problems(self) -> list[str]:
        if self._closing:
            return []
        return [f"worker {w.index} is restarting" for w in self._workers if not w.ready]

    async def shutdown(self) -> None:
        """Let every worker answer what it holds, then stop its chains and wait for it to exit; safe twice."""
        self._closing = True
        for task in list(self._restarts):
            task.cancel()
        await asyncio.gather(*(self._stop(worker) for worker in self._workers))

    async def _launch(self, worker: _Worker) -> None:
        main_end, worker_end = socket.socketpair()
        process = self._context.Process(
            target=run, args=(worker.index, worker_end, self._spec), name=f"genai-collector-worker-{worker.index}"
        )
        process.start()
        worker_end.close()
        worker.process = process
        assert process.pid is not None
        members.join(process.pid)
        worker.source = f"worker-{worker.index}-{process.pid}"
        reader, writer = await asyncio.open_connection(sock=main_end)
        worker.writer = writer
        loop = asyncio.get_running_loop()
        worker.started_at = loop.time()
        worker.stopped = loop.create_future()
        try:
            ready = await asyncio.wait_for(frames.read_frame(reader), START_TIMEOUT_SECONDS)
        except (TimeoutError, frames.BrokenChannel):
            self._reap(worker)
            raise StartError(
                f"worker process {worker.index} did not start (exit code {process.exitcode}); see the lines above"
            ) from None
        if ready.kind is not Kind.READY:
            self._reap(worker)
            raise StartError(f"worker process {worker.index} answered {ready.kind.name} instead of READY")
        worker.ready = True
        worker.reader_task = asyncio.create_task(self._read(worker, reader), name=f"worker-{worker.index}-reader")

    async def _read(self, worker: _Worker, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                message = await frames.read_frame(reader)
                if message.kind is Kind.STOPPED:
                    self._telemetry.absorb(worker.source, frames.read_result(message.payload).telemetry)
                    break
                if message.kind is not Kind.RESULT:
                    raise frames.BrokenChannel(f"unexpected {message.kind.name} frame")
                result = frames.read_result(message.payload)
                self._telemetry.absorb(worker.source, result.telemetry)
                future, size = worker.pending.pop(message.request, (None, 0))
                worker.bytes_in_flight -= size
                if future is not None and not future.done():
                    future.set_result(result)
        except frames.BrokenChannel as exc:
            if not self._closing:
                logger.error(
                    "worker %d stopped unexpectedly (%s); the batches it held are refused for retry", worker.index, exc
                )
        finally:
            self._worker_gone(worker)

    def _worker_gone(self, worker: _Worker) -> None:
        worker.ready = False
        for future, _ in worker.pending.values():
            if not future.done():
                future.set_exception(
                    RetryableError(f"worker {worker.index} stopped before answering", REFUSED_RETRY_AFTER_SECONDS)
                )
        worker.pending.clear()
        worker.bytes_in_flight = 0
        self._reap(worker)
        if worker.stopped is not None and not worker.stopped.done():
            worker.stopped.set_result(None)
        if not self._closing:
            task = asyncio.create_task(self._restart(worker), name=f"worker-{worker.index}-restart")
            self._restarts.add(task)
            task.add_done_callback(self._restarts.discard)

    def _reap(self, worker: _Worker) -> None:
        """Forget the worker's process: its counters stay in the totals, its memory no longer counts."""
        if worker.writer is not None:
            worker.writer.close()
            worker.writer = None
        process, worker.process = worker.process, None
        if process is not None:
            members.reap(process)
        self._telemetry.retire(worker.source)

    async def _restart(self, worker: _Worker) -> None:
        loop = asyncio.get_running_loop()
        if loop.time() - worker.started_at > STABLE_RUN_SECONDS:
            worker.restart_delay = FIRST_RESTART_DELAY_SECONDS
        await asyncio.sleep(worker.restart_delay)
        worker.restart_delay = min(worker.restart_delay * 2, MAX_RESTART_DELAY_SECONDS)
        try:
            await self._launch(worker)
        except StartError as exc:
            logger.error("%s; trying again", exc)
            self._worker_gone(worker)
            return
        self._metrics.collector_worker_restarts.add(1, worker=str(worker.index))
        logger.warning("worker %d started again", worker.index)

    async def _stop(self, worker: _Worker) -> None:
        if worker.writer is None or worker.reader_task is None:
            self._reap(worker)
            return
        # Every batch it holds is answered first: frames are handled in order, STOP last.
        with contextlib.suppress(ConnectionError):
            worker.writer.writelines(frames.frame(Kind.STOP, 0))
        try:
            await asyncio.wait_for(asyncio.shield(worker.reader_task), STOP_TIMEOUT_SECONDS)
        except TimeoutError:
            logger.error("worker %d did not stop within %ss; killing it", worker.index, STOP_TIMEOUT_SECONDS)
            worker.reader_task.cancel()
            self._reap(worker)


def worker_count(configured: int | None, usable_cores: Sequence[int] | None = None) -> int:
    """How many workers ``service.workers`` asks for: ``auto`` (None) is one per core this process may use."""
    if configured is not None:
        return configured
    cores = usable_cores if usable_cores is not None else sorted(os.sched_getaffinity(0))
    return max(1, len(cores))
