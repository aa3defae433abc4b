"""MemoryQueue: batches cut by size and by age, whole messages, bounded capacity, draining on close."""

from __future__ import annotations

import asyncio

import pytest

from collector.errors import QueueFullError
from collector.pdata import encode
from collector.queue import Batch, MemoryQueue
from tests.conftest import make_traces


def run(coroutine: object) -> object:
    return asyncio.run(asyncio.wait_for(coroutine, 10))  # type: ignore[arg-type]


def test_a_batch_is_cut_once_min_size_spans_wait() -> None:
    async def scenario() -> list[int]:
        queue = MemoryQueue(capacity=1000, min_batch=10, max_batch=100, flush_timeout=3600)
        for _ in range(4):
            await queue.put(make_traces(3), 3)
        batch = await queue.get_batch()
        assert batch is not None
        return [batch.span_count, len(batch.items), queue.size]

    assert run(scenario()) == [12, 4, 12]


def test_a_partial_batch_leaves_after_flush_timeout() -> None:
    async def scenario() -> int:
        queue = MemoryQueue(capacity=1000, min_batch=1000, max_batch=2000, flush_timeout=0.05)
        await queue.put(make_traces(2), 2)
        batch = await queue.get_batch()
        assert batch is not None
        return batch.span_count

    assert run(scenario()) == 2


def test_batches_hold_whole_messages_up_to_max_size() -> None:
    async def scenario() -> list[int]:
        queue = MemoryQueue(capacity=1000, min_batch=1, max_batch=10, flush_timeout=0)
        for count in (6, 6, 30):
            await queue.put(make_traces(count), count)
        sizes = []
        for _ in range(3):
            batch = await queue.get_batch()
            assert batch is not None
            sizes.append(batch.span_count)
        return sizes

    # 6+6 would pass max_size, so each goes alone; a message larger than max_size is never split.
    assert run(scenario()) == [6, 6, 30]


def test_a_full_queue_refuses_with_a_retryable_error_and_frees_room_when_done() -> None:
    async def scenario() -> None:
        queue = MemoryQueue(capacity=10, min_batch=1, max_batch=100, flush_timeout=0)
        await queue.put(make_traces(8), 8)
        with pytest.raises(QueueFullError) as refused:
            await queue.put(make_traces(3), 3)
        assert refused.value.retryable and refused.value.retry_after == 1.0
        batch = await queue.get_batch()
        assert batch is not None
        assert queue.size == 8  # in flight still counts against capacity
        queue.done(batch)
        assert queue.size == 0
        await queue.put(make_traces(3), 3)

    run(scenario())


def test_an_empty_queue_takes_one_oversized_message() -> None:
    async def scenario() -> int:
        queue = MemoryQueue(capacity=10, min_batch=1, max_batch=100, flush_timeout=0)
        await queue.put(make_traces(25), 25)
        return queue.size

    assert run(scenario()) == 25


def test_close_drains_what_waits_then_ends_and_refuses_new_data() -> None:
    async def scenario() -> list[object]:
        queue = MemoryQueue(capacity=100, min_batch=50, max_batch=100, flush_timeout=3600)
        await queue.put(make_traces(3), 3)
        waiter = asyncio.create_task(queue.get_batch())
        await asyncio.sleep(0)
        queue.close()
        first = await waiter
        assert first is not None
        with pytest.raises(QueueFullError):
            await queue.put(make_traces(1), 1)
        return [first.span_count, await queue.get_batch()]

    assert run(scenario()) == [3, None]


def test_a_batch_keeps_the_encodings_it_was_given_and_encodes_the_rest_when_asked() -> None:
    given, bare = make_traces(3), make_traces(3)

    async def scenario() -> Batch | None:
        queue = MemoryQueue(capacity=1000, min_batch=6, max_batch=100, flush_timeout=3600)
        await queue.put(given, 3, encode(given))
        await queue.put(bare, 3)
        return await queue.get_batch()

    batch = run(scenario())
    assert isinstance(batch, Batch)
    assert batch.items == [given, bare]
    assert batch.encoded == [encode(given), None]
    assert list(batch.encodings()) == [encode(given), encode(bare)]
    assert list(Batch([given, bare], 6).encodings()) == [encode(given), encode(bare)]
