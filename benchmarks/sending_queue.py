"""What durability costs: puts/s and spans/s into the disk sending queue beside the memory queue.

Each round puts the same messages (SPANS spans each, about 300 bytes a span)
into a MemoryQueue and into a DiskQueue in a fresh directory, from CONCURRENCY
concurrent producers (as receivers serving that many clients at once), while one
consumer takes batches, computes each batch's clickhouse deduplication token (as
the clickhouse sender does) and marks them done. A disk put returns only once its
message is written and fsync'ed; concurrent puts share one fsync (group commit),
so the figures are given for one producer (an fsync per put) and for many. The
fsyncs per put are printed too. The disk queue is measured twice: encoding each
message itself (no worker processes) and given the encoding (as the worker
processes' answers give it). Medians of several rounds and their ratios.

    python benchmarks/sending_queue.py [--messages 2000] [--spans 10] [--rounds 3] [--concurrency 1,16,64]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
# Run as a script, this directory comes first on sys.path, and this file would hide the standard
# library's ``queue`` (which asyncio's thread pool needs): put the repository there instead.
sys.path[:] = [str(REPO_ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from opentelemetry.proto.trace.v1.trace_pb2 import Span, TracesData  # noqa: E402

from collector.diskqueue import DiskQueue  # noqa: E402
from collector.pdata import encode  # noqa: E402
from collector.queue import MemoryQueue, SendingQueue  # noqa: E402
from exporters.clickhouse.dedup import encoded_batch_token  # noqa: E402

CAPACITY_SPANS = 10_000_000
MIN_BATCH_SPANS = 8_192
MAX_BATCH_SPANS = 32_768
FLUSH_TIMEOUT_SECONDS = 0.2
MAX_DISK_BYTES = 1 << 30
LOGGER = logging.getLogger("benchmark.queue")


def message(spans: int) -> TracesData:
    traces = TracesData()
    scope_spans = traces.resource_spans.add().scope_spans.add()
    for _ in range(spans):
        span = scope_spans.spans.add()
        span.trace_id, span.span_id = os.urandom(16), os.urandom(8)
        span.name = "chat gpt-4o-mini"
        span.kind = Span.SPAN_KIND_CLIENT
        span.start_time_unix_nano, span.end_time_unix_nano = 1_700_000_000_000_000_000, 1_700_000_001_000_000_000
        for key, value in (("gen_ai.request.model", "gpt-4o-mini"), ("gen_ai.provider.name", "openai")):
            attribute = span.attributes.add()
            attribute.key, attribute.value.string_value = key, value
        attribute = span.attributes.add()
        attribute.key, attribute.value.int_value = "gen_ai.usage.input_tokens", 1234
    return traces


async def drive(
    queue: SendingQueue, messages: list[TracesData], spans: int, concurrency: int, encodings: list[bytes] | None
) -> float:
    """Seconds to put every message (``concurrency`` producers, with ``encodings`` when given) while a consumer
    drains, hashing each batch as the clickhouse sender does."""

    async def consume() -> None:
        while (batch := await queue.get_batch()) is not None:
            encoded_batch_token(batch.encodings())
            queue.done(batch)

    async def produce(share: list[tuple[TracesData, bytes | None]]) -> None:
        for traces, encoded in share:
            await queue.put(traces, spans, encoded)

    given: list[bytes | None] = list(encodings) if encodings is not None else [None] * len(messages)
    pairs = list(zip(messages, given, strict=True))
    consumer = asyncio.create_task(consume())
    started = time.perf_counter()
    await asyncio.gather(*(produce(pairs[i::concurrency]) for i in range(concurrency)))
    elapsed = time.perf_counter() - started
    queue.close()
    await consumer
    await queue.finish()
    return elapsed


async def disk_round(
    messages: list[TracesData], spans: int, concurrency: int, encodings: list[bytes] | None = None
) -> tuple[float, int]:
    syncs = 0
    real = os.fdatasync

    def counting(fd: int) -> None:
        nonlocal syncs
        syncs += 1
        real(fd)

    with tempfile.TemporaryDirectory(dir=REPO_ROOT / "data" if (REPO_ROOT / "data").is_dir() else None) as work:
        queue = await DiskQueue.open(
            Path(work) / "queue",
            CAPACITY_SPANS,
            MIN_BATCH_SPANS,
            MAX_BATCH_SPANS,
            FLUSH_TIMEOUT_SECONDS,
            MAX_DISK_BYTES,
            LOGGER,
        )
        os.fdatasync = counting  # type: ignore[assignment]  # count the group commits
        try:
            return await drive(queue, messages, spans, concurrency, encodings), syncs
        finally:
            os.fdatasync = real


async def memory_round(messages: list[TracesData], spans: int, concurrency: int) -> float:
    queue = MemoryQueue(CAPACITY_SPANS, MIN_BATCH_SPANS, MAX_BATCH_SPANS, FLUSH_TIMEOUT_SECONDS)
    return await drive(queue, messages, spans, concurrency, None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--spans", type=int, default=10, help="spans per message")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", default="1,16,64", help="comma-separated producer counts")
    args = parser.parse_args()
    messages = [message(args.spans) for _ in range(args.messages)]
    encodings = [encode(traces) for traces in messages]
    size = len(encodings[0])
    print(f"{args.messages} messages of {args.spans} spans ({size} bytes each), medians of {args.rounds} rounds")
    print(
        f"{'producers':>9} | {'memory puts/s':>13} | {'disk puts/s':>11} | {'disk spans/s':>12} | "
        f"{'disk/memory':>11} | {'fsyncs/put':>10} | {'given puts/s':>12} | {'given/disk':>10}"
    )
    for concurrency in (int(c) for c in args.concurrency.split(",")):
        memory, disk, given, syncs = [], [], [], []
        for _ in range(args.rounds):
            memory.append(asyncio.run(memory_round(messages, args.spans, concurrency)))
            elapsed, fsyncs = asyncio.run(disk_round(messages, args.spans, concurrency))
            disk.append(elapsed)
            syncs.append(fsyncs / args.messages)
            given.append(asyncio.run(disk_round(messages, args.spans, concurrency, encodings))[0])
        memory_rate = args.messages / statistics.median(memory)
        disk_rate = args.messages / statistics.median(disk)
        given_rate = args.messages / statistics.median(given)
        print(
            f"{concurrency:>9} | {memory_rate:>13,.0f} | {disk_rate:>11,.0f} | {disk_rate * args.spans:>12,.0f} | "
            f"{disk_rate / memory_rate:>10.3f}x | {statistics.median(syncs):>10.3f} | {given_rate:>12,.0f} | "
            f"{given_rate / disk_rate:>9.3f}x"
        )


if __name__ == "__main__":
    main()
