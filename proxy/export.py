"""Where finished proxy spans go, without ever holding up an LLM call.

``FailOpenSpanProcessor`` is an OpenTelemetry SDK span processor that puts each
ended span in a bounded queue and returns. A task drains the queue into a
``SpanSink``: the collector's pipeline when the proxy runs as a receiver, or the
SDK's OTLP exporter when it runs on its own. A call never waits for telemetry.

Spans the pipeline refuses with a retryable error (the memory limiter, a full
sending queue, the worker pool pushing back) go back to the front of the queue
and are sent again after a backoff, the error's ``retry_after`` when it has
one, as an OTLP client would; spans a refusal keeps waiting longer than
``RETRY_MAX_ELAPSED_SECONDS`` are dropped, so one batch the pipeline can never
take does not hold the queue for good. The queue's bounds hold throughout:
refused spans that no longer fit (newer spans took the room) are dropped.
A full queue, a permanent refusal or a failing sink drops spans and counts them.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Sequence
from typing import NamedTuple, Protocol

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from collector.component import TracesConsumer
from collector.errors import ConsumeError
from collector.exporterhelper import RETRY_MULTIPLIER, backoff
from collector.telemetry import Telemetry
from proxy.encoding import spans_to_traces
from proxy.generated_metrics import ProxySelfMetrics

MAX_SPANS_PER_SEND = 512
SEND_LINGER_SECONDS = 0.05
FLUSH_DEADLINE_SECONDS = 5.0
DEFAULT_QUEUE_BYTES = 256 * 1024 * 1024
# Waits between tries of spans the pipeline refused for now, when its error gives no retry_after.
RETRY_INITIAL_INTERVAL_SECONDS = 0.5
RETRY_MAX_INTERVAL_SECONDS = 5.0
# How long spans may wait for a pipeline that keeps refusing them, from its first refusal.
RETRY_MAX_ELAPSED_SECONDS = 60.0


class SpanSink(Protocol):
    async def send(self, spans: Sequence[ReadableSpan]) -> None:
        """Deliver ``spans`` or raise."""
        ...

    async def close(self) -> None: ...


class PipelineSink:
    """Straight into the collector's pipeline: protobuf objects, no bytes in between."""

    def __init__(self, consumer: TracesConsumer) -> None:
        self._consumer = consumer

    async def send(self, spans: Sequence[ReadableSpan]) -> None:
        await self._consumer.consume(spans_to_traces(spans))

    async def close(self) -> None:
        return None


class ExporterSink:
    """Through an SDK span exporter (OTLP to a collector elsewhere), in a worker thread."""

    def __init__(self, exporter: SpanExporter) -> None:
        self._exporter = exporter

    async def send(self, spans: Sequence[ReadableSpan]) -> None:
        result = await asyncio.to_thread(self._exporter.export, spans)
        if result is not SpanExportResult.SUCCESS:
            raise RuntimeError("the OTLP exporter could not deliver the spans")

    async def close(self) -> None:
        await asyncio.to_thread(self._exporter.shutdown)


class _Queued(NamedTuple):
    span: ReadableSpan
    size: int  # attribute text, counted against the byte bound
    give_up_at: float | None = None  # set at the span's first refusal: past it, the next refusal drops it


class FailOpenSpanProcessor(SpanProcessor):
    """Queues ended spans for a sink; never blocks. Beyond ``capacity`` spans or ``max_bytes`` of
    attribute text (captured content can be large) spans are dropped and counted."""

    def __init__(
        self,
        sink: SpanSink,
        capacity: int,
        telemetry: Telemetry,
        logger: logging.Logger,
        max_bytes: int = DEFAULT_QUEUE_BYTES,
    ) -> None:
        self._sink = sink
        self._capacity = capacity
        self._max_bytes = max_bytes
        self._metrics = ProxySelfMetrics(telemetry)
        self._sent = self._metrics.proxy_spans_sent.bind()
        self._logger = logger
        self._queue: collections.deque[_Queued] = collections.deque()
        self._queued_bytes = 0
        self._wake = asyncio.Event()
        self._stopping = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._warned = False  # a drop was logged since the last delivery
        self._warned_refused = False  # a refusal was logged since the last delivery
        self._retry_interval = RETRY_INITIAL_INTERVAL_SECONDS
        self._metrics.proxy_span_queue_size.watch(lambda: float(len(self._queue)))

    def start(self) -> None:
        """Begin draining, on the running event loop."""
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.create_task(self._drain(), name="genai-proxy-spans")

    async def stop(self) -> None:
        """Deliver what is queued (bounded in time), then stop; what is left is dropped and counted."""
        task, self._task = self._task, None
        self._stopping = True
        self._wake.set()
        if task is not None:
            try:
                # The drain finishes its current send and empties the queue (a refusal is retried meanwhile);
                # a send that hangs past the deadline is abandoned rather than repeated, so nothing is
                # delivered twice.
                await asyncio.wait_for(asyncio.shield(task), FLUSH_DEADLINE_SECONDS)
            except TimeoutError:
                task.cancel()
        self._drop(len(self._queue), "shutdown")
        self._queue.clear()
        self._queued_bytes = 0
        await self._sink.close()

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        return None

    def on_end(self, span: ReadableSpan) -> None:
        size = _text_size(span)
        if not self._fits(1, size):
            self._drop(1, "queue_full")
            return
        self._queue.append(_Queued(span, size))
        self._queued_bytes += size
        loop = self._loop
        if loop is None:
            return
        if _on_loop_thread(loop):
            self._wake.set()
        else:
            loop.call_soon_threadsafe(self._wake.set)

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True

    def _fits(self, spans: int, size: int) -> bool:
        return len(self._queue) + spans <= self._capacity and self._queued_bytes + size <= self._max_bytes

    async def _drain(self) -> None:
        while True:
            await self._wake.wait()
            if not self._stopping and len(self._queue) < MAX_SPANS_PER_SEND:
                # Spans ending in the next moments go in the same send: every send costs the pipeline a round of
                # work (a hop to the workers, a queue write), whatever its size, and calls end one by one.
                await asyncio.sleep(SEND_LINGER_SECONDS)
            self._wake.clear()
            await self._send_all()
            if self._stopping and not self._queue:
                return

    async def _send_all(self) -> None:
        while self._queue:
            taken = [self._queue.popleft() for _ in range(min(len(self._queue), MAX_SPANS_PER_SEND))]
            self._queued_bytes -= sum(queued.size for queued in taken)
            batch = [queued.span for queued in taken]
            try:
                await self._sink.send(batch)
            except asyncio.CancelledError:
                self._drop(len(batch), "shutdown")
                raise
            except ConsumeError as exc:
                if not exc.retryable:
                    self._failed(len(batch), exc)
                    continue
                self._requeue(taken)
                wait = backoff(self._retry_interval, exc.retry_after)
                self._retry_interval = min(self._retry_interval * RETRY_MULTIPLIER, RETRY_MAX_INTERVAL_SECONDS)
                if not self._warned_refused:  # once, not once per try
                    self._logger.warning("the pipeline refused proxy spans for now, trying again: %s", exc)
                    self._warned_refused = True
                await asyncio.sleep(wait)
            except Exception as exc:
                self._failed(len(batch), exc)
            else:
                self._sent.add(len(batch))
                self._warned = self._warned_refused = False
                self._retry_interval = RETRY_INITIAL_INTERVAL_SECONDS

    def _requeue(self, refused: list[_Queued]) -> None:
        """Put ``refused`` back at the front, oldest first, as far as the bounds allow; drop the rest and the
        spans whose wait is over."""
        now = time.monotonic()
        kept: list[_Queued] = []
        room, room_bytes = self._capacity - len(self._queue), self._max_bytes - self._queued_bytes
        expired = full = 0
        for queued in refused:
            # Refused for the first time, its wait starts now.
            give_up_at = queued.give_up_at if queued.give_up_at is not None else now + RETRY_MAX_ELAPSED_SECONDS
            if give_up_at <= now:
                expired += 1
            elif len(kept) < room and queued.size <= room_bytes:
                kept.append(queued._replace(give_up_at=give_up_at))
                room_bytes -= queued.size
            else:
                full += 1
        self._queue.extendleft(reversed(kept))
        self._queued_bytes += sum(queued.size for queued in kept)
        self._drop(expired, "retries_exhausted")
        self._drop(full, "queue_full")

    def _failed(self, count: int, error: Exception) -> None:
        self._drop(count, "export_failed")
        if not self._warned:  # once, not once per span: the pipeline may be down for long
            self._logger.warning("proxy spans are being dropped: %s", error)
            self._warned = True

    def _drop(self, count: int, reason: str) -> None:
        if count:
            self._metrics.proxy_spans_dropped.add(count, reason=reason)


def _text_size(span: ReadableSpan) -> int:
    """About how much memory a span's attribute text holds."""
    return sum(len(value) for value in (span.attributes or {}).values() if isinstance(value, str))


def _on_loop_thread(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False
