"""Where finished proxy spans go, without ever holding up an LLM call.

``FailOpenSpanProcessor`` is an OpenTelemetry SDK span processor that puts each
ended span in a bounded queue and returns. A task drains the queue into a
``SpanSink``: the collector's pipeline when the proxy runs as a receiver, or the
SDK's OTLP exporter when it runs on its own. A full queue or a failing sink
drops spans and counts them; a call never waits for telemetry.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Sequence
from typing import Protocol

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from collector.component import TracesConsumer
from collector.telemetry import Telemetry
from proxy.encoding import spans_to_traces

MAX_SPANS_PER_SEND = 512
FLUSH_DEADLINE_SECONDS = 5.0
DEFAULT_QUEUE_BYTES = 256 * 1024 * 1024
DROPPED_METRIC = "genai_proxy_spans_dropped"
SENT_METRIC = "genai_proxy_spans_sent"


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
        self._telemetry = telemetry
        self._logger = logger
        self._queue: collections.deque[tuple[ReadableSpan, int]] = collections.deque()
        self._queued_bytes = 0
        self._wake = asyncio.Event()
        self._stopping = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._warned = False
        telemetry.gauge("genai_proxy_span_queue_size", lambda: float(len(self._queue)))

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
                # The drain finishes its current send and empties the queue; a send that hangs past the
                # deadline is abandoned rather than repeated, so nothing is delivered twice.
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
        if len(self._queue) >= self._capacity or self._queued_bytes + size > self._max_bytes:
            self._drop(1, "queue_full")
            return
        self._queue.append((span, size))
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

    async def _drain(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            await self._send_all()
            if self._stopping and not self._queue:
                return

    async def _send_all(self) -> None:
        while self._queue:
            taken = [self._queue.popleft() for _ in range(min(len(self._queue), MAX_SPANS_PER_SEND))]
            self._queued_bytes -= sum(size for _, size in taken)
            batch = [span for span, _ in taken]
            try:
                await self._sink.send(batch)
            except asyncio.CancelledError:
                self._drop(len(batch), "shutdown")
                raise
            except Exception as exc:
                self._drop(len(batch), "export_failed")
                if not self._warned:  # once, not once per span: the pipeline may be down for long
                    self._logger.warning("proxy spans are being dropped: %s", exc)
                    self._warned = True
            else:
                self._telemetry.add(SENT_METRIC, len(batch))
                self._warned = False

    def _drop(self, count: int, reason: str) -> None:
        if count:
            self._telemetry.add(DROPPED_METRIC, count, reason=reason)


def _text_size(span: ReadableSpan) -> int:
    """About how much memory a span's attribute text holds."""
    return sum(len(value) for value in (span.attributes or {}).values() if isinstance(value, str))


def _on_loop_thread(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False
