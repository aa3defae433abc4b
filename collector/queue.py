"""Exporters' sending queues: where acknowledged data waits, and where batches are formed.

A receiver answers its client only once every exporter's queue has accepted the
data (``put`` returned). The queue then forms batches by size and age, hands them
to the exporter's senders, and forgets a batch only when the sender marks it
``done``. ``SendingQueue`` is the one interface; ``MemoryQueue`` backs it in
memory, and ``collector.diskqueue.DiskQueue`` backs it with a write-ahead log on disk.

A queue holds the messages of one signal (an exporter has a queue per signal) and
counts them in that signal's items: spans, log records or metric data points. The
names here say spans, as for traces; ``unit`` names the items in what a queue says.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol

from typing_extensions import TypeVar

from collector.errors import QueueFullError
from collector.pdata import encode
from collector.signals import LogsData, MetricsData, OtlpData, TracesData

# The signal a batch holds; a batch unparameterized is of traces.
D = TypeVar("D", TracesData, LogsData, MetricsData, default=TracesData)


@dataclass
class Batch(Generic[D]):
    """Whole OTLP messages of one signal sent together; ``span_count`` is their total count of items (spans, log
    records or metric data points).

    ``encoded`` holds, beside each item, its encoding (collector.pdata.encode) when
    the queue was given it or made it, None where it was not (or is empty for a
    batch built from items alone): ``encodings`` then encodes that item itself.
    """

    items: list[D] = field(default_factory=list)
    span_count: int = 0
    encoded: list[bytes | None] = field(default_factory=list)

    def add(self, traces: D, spans: int, encoded: bytes | None) -> None:
        self.items.append(traces)
        self.encoded.append(encoded)
        self.span_count += spans

    def encodings(self) -> Iterator[bytes]:
        """Each item's encoding, in order: the one the queue holds, else encoded now."""
        known = self.encoded or [None] * len(self.items)  # a batch built from items alone knows none
        for traces, encoded in zip(self.items, known, strict=True):
            yield encoded if encoded is not None else encode(traces)


class SendingQueue(Protocol):
    """Accepts data for an exporter, groups it into batches, and holds it until sent."""

    async def put(self, traces: OtlpData, span_count: int, encoded: bytes | None = None) -> None:
        """Take ``traces`` (with ``span_count`` spans) or raise QueueFullError; returning is the acknowledgement.

        ``encoded``, when given, is collector.pdata.encode(``traces``), made already (by the workers):
        the queue keeps it with the message instead of encoding it again.
        """
        ...

    async def get_batch(self) -> Batch[Any] | None:
        """The next batch to send (of the queue's signal); None once the queue is closed and empty."""
        ...

    def done(self, batch: Batch[Any]) -> None:
        """The batch left the queue for good (sent, or dropped and counted)."""
        ...

    def close(self) -> None:
        """Refuse new data; ``get_batch`` drains what is left, then returns None."""
        ...

    async def finish(self) -> None:
        """Once the senders stopped: release what the queue holds open (files, locks); safe twice."""
        ...

    @property
    def durable(self) -> bool:
        """Whether what is still queued at exit survives to the next start (else it is dropped)."""
        ...

    @property
    def size(self) -> int:
        """Spans held, waiting or in flight."""
        ...


class MemoryQueue:
    """A bounded in-memory queue, counted in spans, that cuts batches by size and timeout.

    A batch is cut once ``min_batch`` spans wait, or when the oldest waiting data is
    ``flush_timeout`` seconds old. A batch holds whole messages and at most
    ``max_batch`` spans, except that a single message larger than that is sent alone.
    """

    def __init__(
        self, capacity: int, min_batch: int, max_batch: int, flush_timeout: float, unit: str = "spans"
    ) -> None:
        self._capacity = capacity
        self._unit = unit
        self._min_batch = min_batch
        self._max_batch = max_batch
        self._flush_timeout = flush_timeout
        self._waiting: collections.deque[tuple[OtlpData, int, float, bytes | None]] = collections.deque()
        self._waiting_spans = 0
        self._held_spans = 0  # waiting plus in flight
        self._closed = False
        self._changed = asyncio.Condition()
        self._wake: asyncio.Task[None] | None = None

    @property
    def size(self) -> int:
        return self._held_spans

    @property
    def capacity(self) -> int:
        return self._capacity

    @property
    def durable(self) -> bool:
        return False

    async def finish(self) -> None:
        return None

    async def put(self, traces: OtlpData, span_count: int, encoded: bytes | None = None) -> None:
        if self._closed:
            raise QueueFullError("the exporter is shutting down")
        if self._held_spans + span_count > self._capacity and self._held_spans > 0:
            raise QueueFullError(
                f"sending queue is full ({self._held_spans} of {self._capacity} {self._unit} held)", retry_after=1.0
            )
        self._waiting.append((traces, span_count, time.monotonic(), encoded))
        self._waiting_spans += span_count
        self._held_spans += span_count
        async with self._changed:
            self._changed.notify_all()

    async def get_batch(self) -> Batch[Any] | None:
        async with self._changed:
            while True:
                if self._waiting_spans >= self._min_batch or (self._closed and self._waiting):
                    return self._cut()
                if self._closed:
                    return None
                if not self._waiting:
                    await self._changed.wait()
                    continue
                age = time.monotonic() - self._waiting[0][2]
                remaining = self._flush_timeout - age
                if remaining <= 0:
                    return self._cut()
                try:
                    await asyncio.wait_for(self._changed.wait(), timeout=remaining)
                except TimeoutError:
                    pass

    def _cut(self) -> Batch[Any]:
        batch: Batch[Any] = Batch()
        while self._waiting:
            traces, count, _, encoded = self._waiting[0]
            if batch.items and batch.span_count + count > self._max_batch:
                break
            self._waiting.popleft()
            batch.add(traces, count, encoded)
        self._waiting_spans -= batch.span_count
        return batch

    def done(self, batch: Batch[Any]) -> None:
        self._held_spans -= batch.span_count

    def close(self) -> None:
        self._closed = True
        # Wake getters so they drain and then see the end; notify needs the lock.
        self._wake = asyncio.get_running_loop().create_task(self._wake_all())

    async def _wake_all(self) -> None:
        async with self._changed:
            self._changed.notify_all()
