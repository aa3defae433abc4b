"""The messages between the main process and a worker: length-prefixed frames over a socket pair.

A frame is a header (the length of what follows, a kind, a request id) and a
payload. Batches travel as the OTLP protobuf bytes they are; what is not a
batch (a failure, telemetry) is a small pickle, exchanged only between a process
and the workers it started itself.
"""

from __future__ import annotations

import asyncio
import enum
import pickle
import struct
from dataclasses import dataclass
from typing import Any

from collector.errors import ConsumeError, MemoryLimitError, PermanentError, RetryableError
from collector.telemetry import Snapshot

# length of what follows the length field (u32), kind (u8), request id (u64)
HEADER = struct.Struct("!IBQ")
AFTER_LENGTH = HEADER.size - 4  # kind and request id: counted in the length field
# In a PROCESS frame: which pipeline (u16). In a RESULT frame: flags (u8), telemetry length (u32).
PIPELINE = struct.Struct("!H")
RESULT = struct.Struct("!BI")
# RESULT flags: the chain accepted the batch; its bytes join others' exactly (collector.pdata.joins_exactly).
OK = 1
JOINS_EXACTLY = 2
# Above any batch a receiver accepts (a gRPC message is capped at 4 MiB, an HTTP body at 20 MiB decoded,
# a proxy's span batch far below): a frame this big says the stream is broken, not that a batch is large.
MAX_FRAME_BYTES = 1 << 30


class Kind(enum.IntEnum):
    """What a frame is. Between the main process and a worker: the main process sends PROCESS and STOP, the
    worker READY, RESULT and STOPPED. A proxy process sends its spans as PROCESS and its counters as TELEMETRY,
    and is answered RESULT."""

    READY = 1  # the child is up (its chains built, its listener serving)
    PROCESS = 2  # a batch to take: through a pipeline's chain, or into the pipeline
    RESULT = 3  # what became of a PROCESS: what the chain passed on, or why it refused
    STOP = 4  # the main process to a child: shut down and exit
    STOPPED = 5  # the child has shut down; its last telemetry
    TELEMETRY = 6  # a child's counters that moved, between batches


class BrokenChannel(Exception):
    """The other side closed the channel or sent something that is not a frame."""


@dataclass(frozen=True)
class Frame:
    kind: Kind
    request: int
    payload: bytes


async def read_frame(reader: asyncio.StreamReader) -> Frame:
    try:
        header = await reader.readexactly(HEADER.size)
        length, kind, request = HEADER.unpack(header)
        if length > MAX_FRAME_BYTES:
            raise BrokenChannel(f"a frame of {length} bytes")
        if length < AFTER_LENGTH:
            raise BrokenChannel(f"a frame of {length} bytes")
        payload = await reader.readexactly(length - AFTER_LENGTH)
        return Frame(Kind(kind), request, payload)
    except (asyncio.IncompleteReadError, ConnectionError) as exc:
        raise BrokenChannel(str(exc) or type(exc).__name__) from None
    except ValueError as exc:  # an unknown kind
        raise BrokenChannel(str(exc)) from None


def frame(kind: Kind, request: int, *parts: bytes) -> list[bytes]:
    """A frame as buffers for ``writelines`` (the payload is not copied into the header)."""
    length = AFTER_LENGTH + sum(len(part) for part in parts)
    return [HEADER.pack(length, kind, request), *parts]


def process_payload(pipeline: int, batch: bytes) -> tuple[bytes, bytes]:
    return PIPELINE.pack(pipeline), batch


def read_process_payload(payload: bytes) -> tuple[int, bytes]:
    (pipeline,) = PIPELINE.unpack_from(payload)
    return pipeline, payload[PIPELINE.size :]


# What processors noted for their parts in the main process: processor id -> items, in the order noted.
Notes = dict[str, list[Any]]


def ok_result(batch: bytes, telemetry: Snapshot, notes: Notes, joins_exactly: bool) -> tuple[bytes, bytes, bytes]:
    """An accepted batch's answer: ``batch`` is what the chain passed on, as collector.pdata.encode encodes it."""
    extras = _extras(telemetry, notes)
    return RESULT.pack(OK | (JOINS_EXACTLY if joins_exactly else 0), len(extras)), extras, batch


def failed_result(error: BaseException, telemetry: Snapshot) -> tuple[bytes, bytes, bytes]:
    extras = _extras(telemetry, {})
    return RESULT.pack(0, len(extras)), extras, pickle.dumps(describe_error(error))


def telemetry_update(telemetry: Snapshot) -> tuple[bytes, bytes, bytes]:
    """A TELEMETRY frame's payload: read it with ``read_result``."""
    return ok_result(b"", telemetry, {}, True)


def _extras(telemetry: Snapshot, notes: Notes) -> bytes:
    if not telemetry and not notes:
        return b""
    return pickle.dumps((telemetry, notes), protocol=pickle.HIGHEST_PROTOCOL)


@dataclass(frozen=True)
class Result:
    """A worker's answer: the batch its chain passed on (its deterministic OTLP bytes, maybe empty), or the error
    it raised; ``joins_exactly`` when those bytes joined with other answers' are still their merge's encoding."""

    batch: bytes
    error: ConsumeError | None
    telemetry: Snapshot
    notes: Notes
    joins_exactly: bool = False


def read_result(payload: bytes) -> Result:
    flags, extras_length = RESULT.unpack_from(payload)
    start = RESULT.size
    telemetry: Snapshot = {}
    notes: Notes = {}
    if extras_length:
        telemetry, notes = pickle.loads(payload[start : start + extras_length])
    rest = payload[start + extras_length :]
    if flags & OK:
        return Result(rest, None, telemetry, notes, bool(flags & JOINS_EXACTLY))
    return Result(b"", rebuild_error(pickle.loads(rest)), telemetry, notes)


def describe_error(error: BaseException) -> dict[str, Any]:
    """What a main process needs to answer the client as the worker's error says."""
    if isinstance(error, ConsumeError):
        kind = "memory" if isinstance(error, MemoryLimitError) else "retryable" if error.retryable else "permanent"
        return {"kind": kind, "message": str(error), "retry_after": error.retry_after}
    # A component bug: the client keeps its data and may retry, as the receivers treat any unexpected error.
    message = f"internal error in the pipeline: {type(error).__name__}"
    return {"kind": "retryable", "message": message, "retry_after": None}


def rebuild_error(described: dict[str, Any]) -> ConsumeError:
    kind, message, retry_after = described["kind"], described["message"], described["retry_after"]
    if kind == "memory":
        return MemoryLimitError(message, retry_after)
    if kind == "retryable":
        return RetryableError(message, retry_after)
    return PermanentError(message)
