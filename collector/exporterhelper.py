"""What every queued exporter shares: the sending queue, batching, retries and their counters.

Modelled on the OpenTelemetry Collector's exporterhelper. An exporter supplies a
``Sender`` (start, send one batch, close: blocking calls, run in a worker thread so
the event loop never waits on a database or a socket) and its settings; this module
turns it into a pipeline ``Exporter`` whose ``consume`` returns once the queue has
taken the data.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from collector.component import ComponentSettings, Host, TracesData
from collector.config.types import Duration
from collector.errors import ConsumeError, PermanentError, RetryableError
from collector.pdata import span_count
from collector.queue import Batch, MemoryQueue, SendingQueue

DEFAULT_QUEUE_SIZE_SPANS = 200_000
DEFAULT_NUM_CONSUMERS = 1
DEFAULT_BATCH_MIN_SPANS = 8_192
DEFAULT_BATCH_MAX_SPANS = 32_768
DEFAULT_FLUSH_TIMEOUT = Duration(0.2)
DEFAULT_RETRY_INITIAL_INTERVAL = Duration(5.0)
DEFAULT_RETRY_MAX_INTERVAL = Duration(30.0)
DEFAULT_RETRY_MAX_ELAPSED = Duration(300.0)
RETRY_MULTIPLIER = 1.5
RETRY_RANDOMIZATION = 0.5


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


@dataclass(frozen=True)
class QueueSettings:
    """The ``sending_queue`` block: capacity in spans, parallel senders, batching."""

    queue_size: int = DEFAULT_QUEUE_SIZE_SPANS
    num_consumers: int = DEFAULT_NUM_CONSUMERS
    batch: BatchSettings = field(default_factory=BatchSettings)

    def validate(self) -> Iterable[tuple[str, str]]:
        if self.queue_size < 1:
            yield "queue_size", "must be at least 1"
        if self.num_consumers < 1:
            yield "num_consumers", "must be at least 1"


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

    def send(self, batch: Batch) -> None:
        """Ship ``batch`` or raise RetryableError / PermanentError."""
        ...

    def close(self) -> None: ...


class QueuedExporter:
    """An Exporter built from a Sender, a sending queue and a retry policy."""

    def __init__(
        self,
        settings: ComponentSettings,
        sender: Sender,
        queue: QueueSettings,
        retry: RetrySettings,
        sending_queue: SendingQueue | None = None,
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
        labels = {"exporter": str(settings.id)}
        self._labels = labels
        settings.telemetry.gauge(
            "otelcol_exporter_queue_size", lambda: float(self._queue.size if self._queue else 0), **labels
        )
        settings.telemetry.gauge("otelcol_exporter_queue_capacity", lambda: float(queue.queue_size), **labels)

    @property
    def sender(self) -> Sender:
        return self._sender

    async def start(self, host: Host) -> None:
        if self._started:
            return
        await asyncio.to_thread(self._sender.start)
        self._started = True
        if self._queue is None:
            batch = self._queue_settings.batch
            self._queue = MemoryQueue(
                self._queue_settings.queue_size, batch.min_size, batch.max_size, batch.flush_timeout
            )
        self._workers = [
            asyncio.create_task(self._drain(), name=f"{self._settings.id}-sender-{i}")
            for i in range(self._queue_settings.num_consumers)
        ]

    async def consume(self, traces: TracesData) -> None:
        if self._queue is None or self._stopped:
            raise RetryableError(f"exporter {self._settings.id} is not running")
        count = span_count(traces)
        try:
            await self._queue.put(traces, count)
        except ConsumeError:
            self._settings.telemetry.add("otelcol_exporter_enqueue_failed_spans", count, **self._labels)
            raise

    async def shutdown(self) -> None:
        """Refuse new data, send everything the queue holds, then close the sender."""
        if not self._started or self._stopped:
            self._stopped = True
            return
        self._stopped = True
        assert self._queue is not None
        self._queue.close()
        await asyncio.gather(*self._workers)
        await asyncio.to_thread(self._sender.close)

    def abandon(self) -> None:
        """Stop retrying and drop what is still queued, counted, so a forced shutdown ends now.

        A send already in progress finishes; nothing else is attempted.
        """
        self._abandoned.set()

    async def _drain(self) -> None:
        assert self._queue is not None
        while (batch := await self._queue.get_batch()) is not None:
            try:
                await self._send_with_retry(batch)
            finally:
                self._queue.done(batch)

    async def _send_with_retry(self, batch: Batch) -> None:
        telemetry, labels, logger = self._settings.telemetry, self._labels, self._settings.logger
        deadline = time.monotonic() + self._retry.max_elapsed_time
        interval = self._retry.initial_interval
        while True:
            if self._abandoned.is_set():
                self._drop(batch, "shutdown", "the collector was stopped before they were sent")
                return
            try:
                await asyncio.to_thread(self._sender.send, batch)
                telemetry.add("otelcol_exporter_sent_spans", batch.span_count, **labels)
                return
            except ConsumeError as exc:
                error: ConsumeError = exc
            except Exception as exc:  # a sender bug must not kill the queue worker
                error = PermanentError(f"{type(exc).__name__}: {exc}")
            wait = _backoff(interval, error.retry_after)
            if not error.retryable or not self._retry.enabled or time.monotonic() + wait > deadline:
                self._drop(batch, "permanent" if not error.retryable else "retries_exhausted", str(error))
                return
            logger.warning("send failed, retrying in %.1fs: %s", wait, error)
            with contextlib.suppress(TimeoutError):
                # Waits out the backoff, or ends it early when the collector is abandoning.
                await asyncio.wait_for(self._abandoned.wait(), wait)
            interval = Duration(min(interval * RETRY_MULTIPLIER, self._retry.max_interval))

    def _drop(self, batch: Batch, reason: str, why: str) -> None:
        labels = self._labels
        self._settings.telemetry.add("otelcol_exporter_send_failed_spans", batch.span_count, reason=reason, **labels)
        self._settings.logger.error("dropping %d spans (%s): %s", batch.span_count, reason, why)


def _backoff(interval: float, retry_after: float | None) -> float:
    """The next wait: the server's Retry-After when it gave one, else jittered exponential backoff."""
    if retry_after is not None:
        return retry_after
    delta = RETRY_RANDOMIZATION * interval
    return random.uniform(interval - delta, interval + delta)
