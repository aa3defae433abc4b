"""What every queued exporter shares: the sending queue, batching, retries and their counters.

Modelled on the OpenTelemetry Collector's exporterhelper. An exporter supplies a
``Sender`` (start, send one batch, close: blocking calls, run in a worker thread so
the event loop never waits on a database or a socket) and its settings; this module
turns it into a pipeline ``Exporter`` whose ``consume`` returns once the queue has
taken the data. As in the Collector, an exporter has one of these per signal, each
with its own queue (counted in that signal's items) and its own self-metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from collector.component import ComponentID, ComponentSettings, Host
from collector.config.types import Duration
from collector.diskqueue import DiskQueue
from collector.errors import ConsumeError, PermanentError, RetryableError
from collector.generated_metrics import PipelineSelfMetrics
from collector.queue import Batch, MemoryQueue, SendingQueue
from collector.runtime.annotations import encoding_of
from collector.signal_metrics import signal_metrics
from collector.signals import SIGNAL_KINDS, OtlpData, Signal, TracesData

DEFAULT_QUEUE_SIZE_SPANS = 200_000
DEFAULT_NUM_CONSUMERS = 1
DEFAULT_BATCH_MIN_SPANS = 8_192
DEFAULT_BATCH_MAX_SPANS = 32_768
DEFAULT_FLUSH_TIMEOUT = Duration(0.2)
DEFAULT_RETRY_INITIAL_INTERVAL = Duration(5.0)
DEFAULT_RETRY_MAX_INTERVAL = Duration(30.0)
DEFAULT_RETRY_MAX_ELAPSED = Duration(300.0)
DEFAULT_QUEUE_ROOT = Path("data", "queue")  # relative to the working directory, as the chDB store is
DEFAULT_QUEUE_MAX_DISK_BYTES = 1 << 30  # 1 GiB
# Below this a disk queue could not hold one ordinary request next to its segment headers.
MIN_QUEUE_DISK_BYTES = 1 << 20
RETRY_MULTIPLIER = 1.5
RETRY_RANDOMIZATION = 0.5
# Health: a queue holding data that has sent nothing for this long is stalled; a refusal is reported this long.
STALL_AFTER_SECONDS = 30.0
REFUSAL_REPORTED_SECONDS = 10.0


@dataclass(frozen=True)
class BatchSettings:
    """When the queue cuts a batch: at ``min_size`` spans, or ``flush_timeout`` after the oldest arrived."""

    flush_timeout: Duration = DEFAULT_FLUSH_TIMEOUT
    min_size: int = DEFAULT_BATCH_MIN_SPANS
    max_size: int = DEFAULT_BATCH_MAX_SPANS

    def validate(self) -> Iterable[tuple[str, str]]:
        if self.min_size < 1:
            yield "min_size", "must be at least 1"
        if self.max_size < self.min_size:
            yield "max_size", f"must be at least min_size ({self.min_size})"


QueueStorage = Literal["disk", "memory"]


@dataclass(frozen=True)
class QueueSettings:
    """The ``sending_queue`` block: capacity in spans, parallel senders, batching, where the queue lives.

    With ``storage: disk`` (the default) the queue is a write-ahead log in
    ``directory``, empty meaning ./data/queue/<exporter id>.
    """

    queue_size: int = DEFAULT_QUEUE_SIZE_SPANS
    num_consumers: int = DEFAULT_NUM_CONSUMERS
    batch: BatchSettings = field(default_factory=BatchSettings)
    storage: QueueStorage = "disk"
    directory: str = ""
    max_disk_bytes: int = DEFAULT_QUEUE_MAX_DISK_BYTES

    def validate(self) -> Iterable[tuple[str, str]]:
        if self.queue_size < 1:
            yield "queue_size", "must be at least 1"
        if self.num_consumers < 1:
            yield "num_consumers", "must be at least 1"
        if self.max_disk_bytes < MIN_QUEUE_DISK_BYTES:
            yield "max_disk_bytes", f"must be at least {MIN_QUEUE_DISK_BYTES} (1 MiB)"
        if self.storage == "memory" and self.directory:
            yield "directory", "applies to storage: disk only"

    def queue_directory(self, exporter: ComponentID, signal: Signal = "traces") -> Path:
        """Where the disk queue of ``exporter``'s ``signal`` lives: for traces the directory itself, for logs and
        metrics one beside it named ``<directory>+logs`` (``+`` cannot end an id's safe name)."""
        base = Path(self.directory).expanduser() if self.directory else DEFAULT_QUEUE_ROOT / safe_name(exporter)
        return base if signal == "traces" else base.with_name(f"{base.name}+{signal}")


def safe_name(exporter: ComponentID) -> str:
    """``exporter``'s id as one file name: ``/``, ``:`` and the like percent-encoded, so distinct ids stay distinct."""
    return urllib.parse.quote(str(exporter), safe="")


async def open_queue(
    settings: QueueSettings, exporter: ComponentID, logger: logging.Logger, signal: Signal = "traces"
) -> SendingQueue:
    """The sending queue ``settings`` describe for ``signal``: a disk queue (locked and replayed) or a memory queue."""
    batch = settings.batch
    kind = SIGNAL_KINDS[signal]
    if settings.storage == "memory":
        return MemoryQueue(settings.queue_size, batch.min_size, batch.max_size, batch.flush_timeout, kind.items_text)
    return await DiskQueue.open(
        settings.queue_directory(exporter, signal),
        settings.queue_size,
        batch.min_size,
        batch.max_size,
        batch.flush_timeout,
        settings.max_disk_bytes,
        logger,
        kind.data_type,
        kind.items_text,
    )


@dataclass(frozen=True)
class RetrySettings:
    """The ``retry_on_failure`` block: exponential backoff for retryable failures."""

    enabled: bool = True
    initial_interval: Duration = DEFAULT_RETRY_INITIAL_INTERVAL
    max_interval: Duration = DEFAULT_RETRY_MAX_INTERVAL
    max_elapsed_time: Duration = DEFAULT_RETRY_MAX_ELAPSED

    def validate(self) -> Iterable[tuple[str, str]]:
        if self.initial_interval <= 0:
            yield "initial_interval", "must be more than 0"
        if self.max_interval < self.initial_interval:
            yield "max_interval", f"must be at least initial_interval ({self.initial_interval:g}s)"


class Sender(Protocol):
    """The exporter-specific part: blocking calls, run in a worker thread."""

    def start(self) -> None: ...

    def send(self, batch: Batch[Any]) -> None:
        """Ship ``batch`` (of the exporter's signal) or raise RetryableError / PermanentError."""
        ...

    def close(self) -> None: ...


class QueuedExporter:
    """An Exporter of one signal built from a Sender, a sending queue and a retry policy."""

    def __init__(
        self,
        settings: ComponentSettings,
        sender: Sender,
        queue: QueueSettings,
        retry: RetrySettings,
        sending_queue: SendingQueue | None = None,
        signal: Signal = "traces",
    ) -> None:
        self._settings = settings
        self._sender = sender
        self._queue_settings = queue
        self._retry = retry
        self._queue: SendingQueue | None = sending_queue
        self._workers: list[asyncio.Task[None]] = []
        self._started = False
        self._stopped = False
        self._abandoned = asyncio.Event()
        # For health: when data last moved (a batch sent, or data arriving at an empty queue), the last refusal.
        self._last_progress = time.monotonic()
        self._last_send_error = ""
        self._last_refusal: tuple[float, str] | None = None
        self._signal = signal
        self._kind = SIGNAL_KINDS[signal]
        exporter = self._exporter = str(settings.id)
        metrics = self._metrics = signal_metrics(settings.telemetry, signal)
        self._sent = metrics.exporter_sent.bind(exporter=exporter)
        self._enqueue_failed = metrics.exporter_enqueue_failed.bind(exporter=exporter)
        gauges, data_type = PipelineSelfMetrics(settings.telemetry), metrics.data_type
        size = gauges.exporter_queue_size
        size.watch(lambda: float(self._queue.size if self._queue else 0), exporter=exporter, data_type=data_type)
        gauges.exporter_queue_capacity.watch(lambda: float(queue.queue_size), exporter=exporter, data_type=data_type)

    @property
    def sender(self) -> Sender:
        return self._sender

    async def start(self, host: Host) -> None:
        if self._started:
            return
        # The queue first: a directory owned by another collector stops the start before the store is touched.
        if self._queue is None:
            self._queue = await open_queue(self._queue_settings, self._settings.id, self._settings.logger, self._signal)
        try:
            await asyncio.to_thread(self._sender.start)
        except BaseException:
            await self._queue.finish()
            self._queue = None
            raise
        self._started = True
        self._workers = [
            asyncio.create_task(self._drain(), name=f"{self._settings.id}-sender-{i}")
            for i in range(self._queue_settings.num_consumers)
        ]

    async def consume(self, data: OtlpData) -> None:
        if self._queue is None or self._stopped:
            raise RetryableError(f"exporter {self._settings.id} is not running")
        count = self._kind.count(data)
        if not self._queue.size:
            self._last_progress = time.monotonic()  # nothing was waiting, so nothing was stalled
        try:
            # The batch's encoding, when the workers made it and it is still exact: the queue stores it as it is.
            # (Only traces cross the workers.)
            await self._queue.put(data, count, encoding_of(data) if isinstance(data, TracesData) else None)
        except ConsumeError as exc:
            self._last_refusal = (time.monotonic(), str(exc))
            self._enqueue_failed.add(count)
            raise

    def health_problems(self) -> list[str]:
        if not self._started or self._stopped or self._queue is None:
            return []
        problems = []
        now = time.monotonic()
        if self._last_refusal is not None and now - self._last_refusal[0] < REFUSAL_REPORTED_SECONDS:
            problems.append(f"refusing data: {self._last_refusal[1]}")
        waiting = self._queue.size
        idle = now - self._last_progress
        if waiting and idle > STALL_AFTER_SECONDS:
            cause = f" (last error: {self._last_send_error})" if self._last_send_error else ""
            problems.append(
                f"stalled: {waiting} {self._kind.items_text} waiting and no batch sent for {idle:.0f}s{cause}"
            )
        return problems

    async def shutdown(self) -> None:
        """Refuse new data, send everything the queue holds, then close the sender."""
        if not self._started or self._stopped:
            self._stopped = True
            return
        self._stopped = True
        assert self._queue is not None
        self._queue.close()
        try:
            await asyncio.gather(*self._workers)
        finally:
            await self._queue.finish()
        if self._queue.size and self._queue.durable:
            self._settings.logger.warning(
                "%d %s stay in the queue log, to be sent at the next start", self._queue.size, self._kind.items_text
            )
        await asyncio.to_thread(self._sender.close)

    def abandon(self) -> None:
        """Stop retrying so a forced shutdown ends now; what is still queued is dropped and counted.

        A send already in progress finishes; nothing else is attempted. A durable
        queue keeps what it holds instead, for the next start.
        """
        self._abandoned.set()

    async def _drain(self) -> None:
        queue = self._queue
        assert queue is not None
        while not (self._abandoned.is_set() and queue.durable) and (batch := await queue.get_batch()) is not None:
            sent = False
            try:
                sent = await self._send_with_retry(batch, keep=queue.durable)
            finally:
                if sent or not queue.durable:
                    queue.done(batch)

    async def _send_with_retry(self, batch: Batch[Any], keep: bool) -> bool:
        """Send ``batch`` with retries; False when it was abandoned with ``keep`` (it stays queued)."""
        logger = self._settings.logger
        deadline = time.monotonic() + self._retry.max_elapsed_time
        interval = self._retry.initial_interval
        while True:
            if self._abandoned.is_set():
                if keep:
                    return False
                self._drop(batch, "shutdown", "the collector was stopped before they were sent")
                return True
            try:
                await asyncio.to_thread(self._sender.send, batch)
                self._sent.add(batch.span_count)
                self._last_progress, self._last_send_error = time.monotonic(), ""
                return True
            except ConsumeError as exc:
                error: ConsumeError = exc
            except Exception as exc:  # a sender bug must not kill the queue worker
                error = PermanentError(f"{type(exc).__name__}: {exc}")
            self._last_send_error = str(error)
            wait = backoff(interval, error.retry_after)
            if not error.retryable or not self._retry.enabled or time.monotonic() + wait > deadline:
                self._drop(batch, "permanent" if not error.retryable else "retries_exhausted", str(error))
                return True
            logger.warning("send failed, retrying in %.1fs: %s", wait, error)
            with contextlib.suppress(TimeoutError):
                # Waits out the backoff, or ends it early when the collector is abandoning.
                await asyncio.wait_for(self._abandoned.wait(), wait)
            interval = Duration(min(interval * RETRY_MULTIPLIER, self._retry.max_interval))

    def _drop(self, batch: Batch[Any], reason: str, why: str) -> None:
        self._metrics.exporter_send_failed.add(batch.span_count, exporter=self._exporter, reason=reason)
        self._settings.logger.error("dropping %d %s (%s): %s", batch.span_count, self._kind.items_text, reason, why)


def backoff(interval: float, retry_after: float | None) -> float:
    """The next wait: the server's Retry-After when it gave one, else jittered exponential backoff."""
    if retry_after is not None:
        return retry_after
    delta = RETRY_RANDOMIZATION * interval
    return random.uniform(interval - delta, interval + delta)
