"""The disk sending queue: the SendingQueue interface over the write-ahead log (collector.wal).

``put`` returns only once the message is in the log and fsync'ed. Writes are
grouped: while one group is being written and synced in a worker thread, the
puts that arrive wait together for the next one, so concurrent puts share an
fsync and the event loop never blocks on the disk. A batch is recorded (CUT)
before it is handed to a sender, so after a restart the same batches, with the
same messages in the same order, are sent again; ``done`` records (DONE) let the
log forget them and delete segments that hold nothing still queued.

A message goes into the log as its encoding (collector.pdata.encode): the
bytes the workers made, when ``put`` is given them, else encoded once in
``put``. Each entry keeps those bytes beside the decoded message, so a batch
cut from the queue carries them (Batch.encoded) and the clickhouse exporter's
deduplication token hashes them without encoding anything again; after a
restart they are the bytes read back from the log, the same ones. Waiting
messages stay in memory this way, bounded by the queue's capacity in spans as
in MemoryQueue; the log is read back only at start.

A log holds the messages of one signal, parsed back as ``data_type`` at start
(``TracesData`` unless told otherwise: a traces log's format is the one it always was).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from collector.errors import QueueFullError, StartError
from collector.pdata import encode
from collector.queue import Batch
from collector.signals import OtlpData, TracesData
from collector.wal import (
    DATA_RECORD_OVERHEAD,
    DEFAULT_SEGMENT_BYTES,
    QueueLocked,
    Record,
    Replay,
    ReplayedData,
    WriteAheadLog,
    cut_record,
    data_record,
    done_record,
)

# Segments are a fraction of the disk limit, so finished segments can be deleted
# long before the limit is near.
SEGMENTS_PER_DISK_LIMIT = 8
MIN_SEGMENT_BYTES = 64 * 1024
FULL_RETRY_AFTER_SECONDS = 1.0


@dataclass
class _Entry:
    """One queued message: its place in the log, the message itself and its encoding, as the log holds it."""

    seq: int
    traces: OtlpData
    encoded: bytes
    spans: int
    arrived: float
    segment: int = 0

    @classmethod
    def replayed(cls, data: ReplayedData, now: float, data_type: type[OtlpData]) -> _Entry:
        """A message read back from the log at start."""
        return cls(data.seq, data_type.FromString(data.message), data.message, data.spans, now, data.segment)


@dataclass
class LoggedBatch(Batch[Any]):
    """A batch the log knows by ``batch_id``, with the entries it holds."""

    batch_id: int = 0
    entries: list[_Entry] = field(default_factory=list)

    def take(self, entry: _Entry) -> None:
        self.entries.append(entry)
        self.add(entry.traces, entry.spans, entry.encoded)


@dataclass
class _Job:
    """Records for the next group commit, and what to tell whoever waits when it is done."""

    record: Record | None = None  # None for a message: its record is made in the writer thread
    entry: _Entry | None = None
    released: Counter[int] = field(default_factory=Counter)
    future: asyncio.Future[None] | None = None


class DiskQueue:
    """A SendingQueue whose contents survive a crash: every accepted message is in the log first."""

    def __init__(
        self,
        wal: WriteAheadLog,
        replay: Replay,
        capacity: int,
        min_batch: int,
        max_batch: int,
        flush_timeout: float,
        max_disk_bytes: int,
        logger: logging.Logger,
        data_type: type[OtlpData] = TracesData,
        unit: str = "spans",
    ) -> None:
        self._wal = wal
        self._unit = unit
        self._capacity = capacity
        self._min_batch = min_batch
        self._max_batch = max_batch
        self._flush_timeout = flush_timeout
        self._max_disk_bytes = max_disk_bytes
        self._logger = logger
        now = time.monotonic()
        self._ready: collections.deque[LoggedBatch] = collections.deque()
        for batch_id, items in replay.batches:
            batch = LoggedBatch(batch_id=batch_id)
            for entry in (_Entry.replayed(item, now, data_type) for item in items):
                batch.take(entry)
            self._ready.append(batch)
        self._waiting: collections.deque[_Entry] = collections.deque(
            _Entry.replayed(i, now, data_type) for i in replay.waiting
        )
        self._waiting_spans = sum(e.spans for e in self._waiting)
        self._held_spans = self._waiting_spans + sum(b.span_count for b in self._ready)
        self._next_seq = replay.next_seq
        self._next_batch = replay.next_batch
        self._reserved_bytes = 0  # accepted for writing, not yet in the log
        self._unwritten = 0  # messages accepted for writing, not yet in the log (nor failed)
        self._jobs: list[_Job] = []
        self._writer: asyncio.Task[None] | None = None
        self._closed = False
        self._finished = False
        self._changed = asyncio.Condition()
        self._wake: asyncio.Task[None] | None = None
        if self._held_spans:
            logger.info(
                "queue log %s: %d %s from before the restart to send (%d batches already cut)",
                wal.directory,
                self._held_spans,
                unit,
                len(self._ready),
            )

    @classmethod
    async def open(
        cls,
        directory: Path,
        capacity: int,
        min_batch: int,
        max_batch: int,
        flush_timeout: float,
        max_disk_bytes: int,
        logger: logging.Logger,
        data_type: type[OtlpData] = TracesData,
        unit: str = "spans",
    ) -> DiskQueue:
        """Lock and replay ``directory``; StartError in one line if another collector owns it."""
        segment_bytes = max(MIN_SEGMENT_BYTES, min(DEFAULT_SEGMENT_BYTES, max_disk_bytes // SEGMENTS_PER_DISK_LIMIT))
        try:
            wal, replay = await asyncio.to_thread(WriteAheadLog.open, directory, logger, segment_bytes)
        except QueueLocked as exc:
            raise StartError(f"sending queue directory {exc}") from None
        except OSError as exc:
            raise StartError(f"sending queue directory {directory}: {exc.strerror or exc}") from None
        try:
            return await asyncio.to_thread(
                cls, wal, replay, capacity, min_batch, max_batch, flush_timeout, max_disk_bytes, logger, data_type, unit
            )
        except BaseException:
            wal.close()
            raise

    @property
    def size(self) -> int:
        return self._held_spans

    @property
    def capacity(self) -> int:
        return self._capacity

    @property
    def durable(self) -> bool:
        return True

    @property
    def directory(self) -> Path:
        return self._wal.directory

    async def put(self, traces: OtlpData, span_count: int, encoded: bytes | None = None) -> None:
        if self._closed:
            raise QueueFullError("the exporter is shutting down")
        if self._held_spans + span_count > self._capacity and self._held_spans > 0:
            raise QueueFullError(
                f"sending queue is full ({self._held_spans} of {self._capacity} {self._unit} held)",
                retry_after=FULL_RETRY_AFTER_SECONDS,
            )
        if encoded is None:
            # Encoded here, once: its size is known before the disk limit is checked, and the log, the entry and
            # the deduplication token share these bytes.
            encoded = encode(traces)
        size = len(encoded) + DATA_RECORD_OVERHEAD
        used = self._wal.disk_bytes + self._reserved_bytes
        if used + size > self._max_disk_bytes:
            raise QueueFullError(
                f"sending queue is full on disk ({used} of {self._max_disk_bytes} bytes)",
                retry_after=FULL_RETRY_AFTER_SECONDS,
            )
        entry = _Entry(self._next_seq, traces, encoded, span_count, time.monotonic())
        self._next_seq += 1
        self._held_spans += span_count
        self._reserved_bytes += size
        future = asyncio.get_running_loop().create_future()
        self._unwritten += 1
        self._submit(_Job(entry=entry, future=future))
        try:
            # Shielded: a client that goes away does not cancel the write of what others share.
            await asyncio.shield(future)
        finally:
            self._reserved_bytes -= size

    async def get_batch(self) -> Batch[Any] | None:
        async with self._changed:
            while True:
                if self._ready:
                    return self._ready.popleft()  # cut before a restart: recorded already
                if self._waiting_spans >= self._min_batch or (self._closed and self._waiting):
                    batch = self._cut()
                    break
                if self._closed and not self._waiting and not self._unwritten:
                    return None
                if not self._waiting:
                    await self._changed.wait()
                    continue
                remaining = self._flush_timeout - (time.monotonic() - self._waiting[0].arrived)
                if remaining <= 0:
                    batch = self._cut()
                    break
                try:
                    await asyncio.wait_for(self._changed.wait(), timeout=remaining)
                except TimeoutError:
                    pass
        # Recorded outside the lock: the writer takes the lock to announce new data.
        future = asyncio.get_running_loop().create_future()
        self._submit(_Job(cut_record(batch.batch_id, [e.seq for e in batch.entries]), future=future))
        try:
            await asyncio.shield(future)
        except QueueFullError as exc:
            # The messages are in the log; only a restart could cut them differently.
            self._logger.warning("could not record batch %d in the queue log: %s", batch.batch_id, exc)
        return batch

    def _cut(self) -> LoggedBatch:
        batch = LoggedBatch(batch_id=self._next_batch)
        self._next_batch += 1
        while self._waiting:
            entry = self._waiting[0]
            if batch.items and batch.span_count + entry.spans > self._max_batch:
                break
            self._waiting.popleft()
            batch.take(entry)
        self._waiting_spans -= batch.span_count
        return batch

    def done(self, batch: Batch[Any]) -> None:
        self._held_spans -= batch.span_count
        if isinstance(batch, LoggedBatch):
            released = Counter(entry.segment for entry in batch.entries)
            self._submit(_Job(done_record(batch.batch_id), released=released))

    def close(self) -> None:
        self._closed = True
        self._wake = asyncio.get_running_loop().create_task(self._notify())

    async def finish(self) -> None:
        """Write what is pending, then close the log and release its lock; safe twice."""
        if self._finished:
            return
        self._finished = True
        while self._writer is not None:
            await asyncio.shield(self._writer)
        await asyncio.to_thread(self._wal.close)

    def _submit(self, job: _Job) -> None:
        self._jobs.append(job)
        if self._writer is None:
            self._writer = asyncio.get_running_loop().create_task(self._write_groups())

    async def _write_groups(self) -> None:
        """Write pending jobs a group at a time, each group one write and at most one fsync."""
        try:
            while self._jobs:
                group, self._jobs = self._jobs, []
                try:
                    segments = await asyncio.to_thread(self._commit, group)
                except Exception as exc:  # an OSError mostly; anything else must still answer every waiter
                    self._logger.error("could not write to the queue log in %s: %s", self._wal.directory, exc)
                    self._fail(group, exc)
                    await self._notify()
                    continue
                self._unwritten -= sum(job.entry is not None for job in group)
                for job, segment in zip(group, segments, strict=True):
                    if job.entry is not None:
                        job.entry.segment = segment
                        self._waiting.append(job.entry)
                        self._waiting_spans += job.entry.spans
                    if job.future is not None and not job.future.done():
                        job.future.set_result(None)
                await self._notify()
        finally:
            self._writer = None

    def _commit(self, group: list[_Job]) -> list[int]:
        """In the worker thread: append every record, apply releases."""
        records: list[Record] = []
        for job in group:
            if job.entry is not None:
                records.append(data_record(job.entry.seq, job.entry.spans, job.entry.encoded))
            else:
                assert job.record is not None
                records.append(job.record)
        released: Counter[int] = Counter()
        for job in group:
            released.update(job.released)
        return self._wal.commit(records, released, self._next_seq, self._next_batch)

    def _fail(self, group: list[_Job], error: Exception) -> None:
        for job in group:
            if job.entry is not None:
                self._held_spans -= job.entry.spans
                self._unwritten -= 1
            if job.future is not None and not job.future.done():
                job.future.set_exception(
                    QueueFullError(f"could not write to the queue log: {error}", retry_after=FULL_RETRY_AFTER_SECONDS)
                )

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()
