"""The write-ahead log behind the disk sending queue: segment files of checksummed records, replay, a lock.

A queue directory holds a ``LOCK`` file (held with an exclusive ``flock`` by the
one process that owns the queue) and numbered segment files
(``00000000000000000001.wal``...). A segment is a sequence of records, each
a 16-byte header followed by its payload::

    magic u16 | type u8 | reserved u8 | payload length u32 | header crc32 u32 | payload crc32 u32

all little-endian; the header crc covers the first 8 bytes, so a record whose
payload is damaged still tells where the next record starts. Record types:

- SEGMENT (the first record of every segment): the next data sequence number and
  batch id, so numbering never goes back even when every older segment is gone;
- DATA: sequence number, span count, then one ``TracesData`` as collector.pdata.encode encodes it;
- CUT: a batch id and the sequence numbers of its messages, in order, so a batch
  re-sent after a restart has the same content;
- DONE: a batch id that left the queue (sent, or dropped and counted).

The log is only ever appended to, from one thread at a time (the caller
serializes ``commit``). A segment is deleted once it and every older segment hold
no data that is still queued. Replay reads every segment in order and returns
the messages not done, the batches cut but not done, and the counters.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import struct
import zlib
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path
from typing import BinaryIO

from collector.private_files import PRIVATE_FILE_MODE, private_directory, tighten

MAGIC = 0x5157  # "WQ" little-endian: a cheap first test when looking for the next record
HEADER = struct.Struct("<HBBIII")
HEADER_SIZE = HEADER.size
_HEADER_PREFIX = struct.Struct("<HBBI")  # the part the header crc covers
SEGMENT_PAYLOAD = struct.Struct("<QQ")
DATA_PREFIX = struct.Struct("<QI")
CUT_PREFIX = struct.Struct("<QI")
SEQ = struct.Struct("<Q")
DONE_PAYLOAD = struct.Struct("<Q")
SEGMENT_SUFFIX = ".wal"
SEGMENT_NAME_DIGITS = 20
LOCK_NAME = "LOCK"
DEFAULT_SEGMENT_BYTES = 16 * 1024 * 1024
# Largest payload a record may claim; a bigger length in a header is damage, not data.
MAX_PAYLOAD_BYTES = 1 << 30
_SEGMENT_HEADER_BYTES = HEADER_SIZE + SEGMENT_PAYLOAD.size
# What a DATA record adds to the serialized message: the header and the sequence and span count.
DATA_RECORD_OVERHEAD = HEADER_SIZE + DATA_PREFIX.size


class RecordType(IntEnum):
    SEGMENT = 1
    DATA = 2
    CUT = 3
    DONE = 4


_RECORD_TYPES = frozenset(t.value for t in RecordType)


class QueueLocked(Exception):
    """Another process (or another queue in this one) owns the directory."""


@dataclass(frozen=True)
class Record:
    """One record to append; ``sync`` asks that it be on disk before ``commit`` returns."""

    type: RecordType
    payload: bytes
    sync: bool = True


def data_record(seq: int, spans: int, message: bytes) -> Record:
    return Record(RecordType.DATA, DATA_PREFIX.pack(seq, spans) + message)


def cut_record(batch_id: int, seqs: Sequence[int]) -> Record:
    return Record(RecordType.CUT, CUT_PREFIX.pack(batch_id, len(seqs)) + b"".join(SEQ.pack(s) for s in seqs))


def done_record(batch_id: int) -> Record:
    # Losing a DONE in a crash only means the batch is sent again, with the same content: no fsync needed.
    return Record(RecordType.DONE, DONE_PAYLOAD.pack(batch_id), sync=False)


def encode(record: Record) -> bytes:
    prefix = _HEADER_PREFIX.pack(MAGIC, record.type, 0, len(record.payload))
    return prefix + struct.pack("<II", zlib.crc32(prefix), zlib.crc32(record.payload)) + record.payload


@dataclass
class ReplayedData:
    """A message still queued: where it is, and its bytes."""

    seq: int
    segment: int
    spans: int
    message: bytes


@dataclass
class Replay:
    """What a log holds that is not done, in order."""

    waiting: list[ReplayedData] = field(default_factory=list)
    batches: list[tuple[int, list[ReplayedData]]] = field(default_factory=list)  # (batch id, its messages)
    next_seq: int = 1
    next_batch: int = 1


@dataclass
class _Scanned:
    type: int
    offset: int
    payload: bytes


def _parse_at(buf: bytes, pos: int) -> tuple[bool, int | None]:
    """Whether a valid record starts at ``pos``, and where it ends if its header can be trusted."""
    if pos + HEADER_SIZE > len(buf):
        return False, None
    magic, type_, _, length, header_crc, payload_crc = HEADER.unpack_from(buf, pos)
    if magic != MAGIC or zlib.crc32(buf[pos : pos + _HEADER_PREFIX.size]) != header_crc:
        return False, None
    if type_ not in _RECORD_TYPES or length > MAX_PAYLOAD_BYTES:
        return False, None
    end = pos + HEADER_SIZE + length
    if end > len(buf):
        return False, None  # cut short: the header is fine but the payload never made it
    return zlib.crc32(buf[pos + HEADER_SIZE : end]) == payload_crc, end


def _resync(buf: bytes, start: int) -> int | None:
    """The offset of the next valid record at or after ``start``, if any."""
    magic = struct.pack("<H", MAGIC)
    pos = buf.find(magic, start)
    while pos != -1:
        if _parse_at(buf, pos)[0]:
            return pos
        pos = buf.find(magic, pos + 1)
    return None


def scan(buf: bytes) -> tuple[list[_Scanned], list[tuple[int, int]], int]:
    """The valid records of a segment, the damaged ranges skipped in the middle, and where the valid part ends.

    A damaged record whose header checks out is skipped by its own length (its
    boundary is known); otherwise the scan moves to the next offset where a whole
    valid record starts. Damage with no valid record after it is the torn tail:
    the valid part ends where it starts.
    """
    records: list[_Scanned] = []
    skipped: list[tuple[int, int]] = []
    pos = 0
    while pos < len(buf):
        valid, end = _parse_at(buf, pos)
        if valid and end is not None:
            records.append(_Scanned(buf[pos + 2], pos, buf[pos + HEADER_SIZE : end]))
            pos = end
            continue
        after = end if end is not None and end < len(buf) else None
        if after is not None and not _parse_at(buf, after)[0]:
            after = _resync(buf, after)
        if after is None:
            after = _resync(buf, pos + 1)
        if after is None:
            return records, skipped, pos
        skipped.append((pos, after - pos))
        pos = after
    return records, skipped, pos


def segment_path(directory: Path, number: int) -> Path:
    return directory / f"{number:0{SEGMENT_NAME_DIGITS}d}{SEGMENT_SUFFIX}"


def segment_numbers(directory: Path) -> list[int]:
    numbers = []
    for path in directory.glob(f"*{SEGMENT_SUFFIX}"):
        stem = path.name[: -len(SEGMENT_SUFFIX)]
        if stem.isdigit():
            numbers.append(int(stem))
    return sorted(numbers)


def _fsync_directory(directory: Path) -> None:
    """Make a created file's name durable, not only its content."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _Lock:
    """An exclusive ``flock`` on ``LOCK`` in the queue directory, holding the owner's pid for the message."""

    def __init__(self, directory: Path) -> None:
        path = directory / LOCK_NAME
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, PRIVATE_FILE_MODE)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.pread(self._fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(self._fd)
            raise QueueLocked(f"{directory} is in use by another collector (pid {owner})") from None
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, f"{os.getpid()}\n".encode("ascii"), 0)

    def release(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)  # closing drops the flock
            self._fd = -1


class WriteAheadLog:
    """An append-only log of segments in one directory; every method blocks, call them from one thread at a time."""

    def __init__(self, directory: Path, segment_bytes: int, lock: _Lock, closed_segments: dict[int, int]) -> None:
        self.directory = directory
        self._segment_bytes = segment_bytes
        self._lock = lock
        # Messages still queued per segment; a segment at 0 (and every one before it) can go.
        self._undone: dict[int, int] = dict(closed_segments)
        self._sizes: dict[int, int] = {n: segment_path(directory, n).stat().st_size for n in closed_segments}
        self._disk_bytes = sum(self._sizes.values())
        self._active = max(closed_segments, default=0)
        self._file: int = -1
        self._broken: str | None = None

    @classmethod
    def open(
        cls, directory: Path, logger: logging.Logger, segment_bytes: int = DEFAULT_SEGMENT_BYTES
    ) -> tuple[WriteAheadLog, Replay]:
        """Lock ``directory`` (created if missing), replay it, and start a fresh segment for appends."""
        private_directory(directory)
        lock = _Lock(directory)
        try:
            replay, undone = _replay(directory, logger)
            wal = cls(directory, segment_bytes, lock, undone)
            wal._delete_done_segments()
            wal._start_segment(replay.next_seq, replay.next_batch)
        except BaseException:
            lock.release()
            raise
        return wal, replay

    @property
    def disk_bytes(self) -> int:
        """Bytes in every segment file; read from other threads too (one int, read atomically)."""
        return self._disk_bytes

    def commit(self, records: Sequence[Record], released: Counter[int], next_seq: int, next_batch: int) -> list[int]:
        """Append ``records`` (fsync'ed when any asks for it) and release messages of finished batches.

        Returns the segment each record went to. ``released`` counts, per segment,
        messages whose batch is done; ``next_seq`` and ``next_batch`` go into the
        header of a new segment if one is started. On a write error the segment is
        cut back to where it was, so the log never holds a partial record.
        """
        if self._broken is not None:
            raise OSError(self._broken)
        encoded = [encode(record) for record in records]
        data_records = sum(record.type == RecordType.DATA for record in records)
        try:
            # A group goes into one segment, whole, so a failed write never leaves part of it behind:
            # roll first when it does not fit (a group larger than a segment gets a fresh one to itself).
            used = self._sizes[self._active]
            if used + sum(map(len, encoded)) > self._segment_bytes and used > _SEGMENT_HEADER_BYTES:
                self._start_segment(next_seq, next_batch)
            self._write(encoded, data_records, sync=any(r.sync for r in records))
        finally:
            # Releases apply even when the write failed: a lost done record only means a batch is sent
            # again, while a lost release would keep its segment, and every later one, on disk for good.
            for segment, count in released.items():
                if segment in self._undone:
                    self._undone[segment] -= count
            self._delete_done_segments()
        return [self._active] * len(records)

    def _write(self, chunk: list[bytes], data_records: int, sync: bool) -> None:
        if not chunk:
            return
        blob = b"".join(chunk)
        start = self._sizes[self._active]
        try:
            written = os.pwrite(self._file, blob, start)
            if written != len(blob):
                raise OSError(f"short write to the queue log ({written} of {len(blob)} bytes)")
            if sync:
                os.fdatasync(self._file)
        except OSError:
            # Cut the segment back so the next record starts on a boundary.
            try:
                os.ftruncate(self._file, start)
            except OSError as exc:
                self._broken = f"the queue log {segment_path(self.directory, self._active)} cannot be repaired: {exc}"
            raise
        self._sizes[self._active] = start + len(blob)
        self._disk_bytes += len(blob)
        self._undone[self._active] += data_records

    def _start_segment(self, next_seq: int, next_batch: int) -> None:
        if self._file >= 0:
            os.fdatasync(self._file)
            os.close(self._file)
            self._file = -1  # closed: never flushed or closed again, whatever fails next
        number = self._active + 1
        self._file = os.open(
            segment_path(self.directory, number), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE_MODE
        )
        self._active = number  # only once it exists: a failed open leaves the log as it was
        self._sizes[self._active] = 0
        self._undone[self._active] = 0
        self._write([encode(Record(RecordType.SEGMENT, SEGMENT_PAYLOAD.pack(next_seq, next_batch)))], 0, sync=True)
        _fsync_directory(self.directory)

    def _delete_done_segments(self) -> None:
        for number in sorted(self._undone):
            if number == self._active or self._undone[number] > 0:
                return
            with contextlib.suppress(FileNotFoundError):
                segment_path(self.directory, number).unlink()
            self._disk_bytes -= self._sizes.pop(number, 0)
            del self._undone[number]

    def close(self) -> None:
        """Flush and close the active segment and release the lock; safe twice."""
        if self._file >= 0:
            with contextlib.suppress(OSError):
                os.fdatasync(self._file)
            os.close(self._file)
            self._file = -1
        self._lock.release()


def _replay(directory: Path, logger: logging.Logger) -> tuple[Replay, dict[int, int]]:
    """Read every segment; returns what is not done and the count of queued messages per segment."""
    numbers = segment_numbers(directory)
    replay = Replay()
    where: dict[int, tuple[int, int, int, int]] = {}  # seq -> (segment, offset of message, length, spans)
    cuts: dict[int, list[int]] = {}
    done: set[int] = set()
    for number in numbers:
        path = segment_path(directory, number)
        tighten(path, PRIVATE_FILE_MODE)  # a segment an older version wrote 0644
        buf = path.read_bytes()
        records, skipped, valid_end = scan(buf)
        for offset, length in skipped:
            logger.warning("queue log %s: damaged record at byte %d, skipped %d bytes", path, offset, length)
        if valid_end < len(buf):
            torn = len(buf) - valid_end
            logger.warning("queue log %s: torn tail, skipped %d bytes at byte %d (truncated)", path, torn, valid_end)
            with open(path, "r+b") as file:
                file.truncate(valid_end)
                os.fsync(file.fileno())
        for record in records:
            for kind, value in _apply(record, number, where, cuts, done):
                if kind == "seq":
                    replay.next_seq = max(replay.next_seq, value)
                else:
                    replay.next_batch = max(replay.next_batch, value)
    undone: Counter[int] = Counter({n: 0 for n in numbers})
    with contextlib.ExitStack() as files:
        opened: dict[int, BinaryIO] = {}

        def take(seq: int) -> ReplayedData | None:
            found = where.pop(seq, None)
            if found is None:
                return None  # done, or lost to damage
            segment, offset, length, spans = found
            undone[segment] += 1
            if segment not in opened:
                opened[segment] = files.enter_context(open(segment_path(directory, segment), "rb"))
            opened[segment].seek(offset)
            return ReplayedData(seq, segment, spans, opened[segment].read(length))

        for batch_id, seqs in cuts.items():
            if batch_id in done:
                for seq in seqs:
                    where.pop(seq, None)
        for batch_id, seqs in cuts.items():
            if batch_id not in done:
                items = [item for item in map(take, seqs) if item is not None]
                if items:
                    replay.batches.append((batch_id, items))
        replay.waiting = [item for item in map(take, sorted(where)) if item is not None]
    return replay, dict(undone)


def _apply(
    record: _Scanned,
    segment: int,
    where: dict[int, tuple[int, int, int, int]],
    cuts: dict[int, list[int]],
    done: set[int],
) -> Iterator[tuple[str, int]]:
    """Fold one record into the replay state; yields counters it implies (``seq``/``batch`` next values)."""
    payload = record.payload
    try:
        if record.type == RecordType.SEGMENT:
            next_seq, next_batch = SEGMENT_PAYLOAD.unpack_from(payload)
            yield "seq", next_seq
            yield "batch", next_batch
        elif record.type == RecordType.DATA:
            seq, spans = DATA_PREFIX.unpack_from(payload)
            where[seq] = (
                segment,
                record.offset + HEADER_SIZE + DATA_PREFIX.size,
                len(payload) - DATA_PREFIX.size,
                spans,
            )
            yield "seq", seq + 1
        elif record.type == RecordType.CUT:
            batch_id, count = CUT_PREFIX.unpack_from(payload)
            seqs = [SEQ.unpack_from(payload, CUT_PREFIX.size + i * SEQ.size)[0] for i in range(count)]
            cuts[batch_id] = seqs
            yield "batch", batch_id + 1
        elif record.type == RecordType.DONE:
            (batch_id,) = DONE_PAYLOAD.unpack_from(payload)
            done.add(batch_id)
            yield "batch", batch_id + 1
    except struct.error:
        return  # a record with a valid checksum but a payload too short: written by something else; ignore it
