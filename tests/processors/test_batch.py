"""The batch processor merges requests and holds every caller until its merged batch is accepted downstream."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from collector.component import ComponentSettings
from collector.config.types import Duration
from collector.errors import RetryableError
from processors.batch import BatchConfig, BatchProcessor
from tests.conftest import RecordingConsumer, make_traces


def test_requests_are_merged_until_send_batch_size(make_settings: Callable[..., ComponentSettings]) -> None:
    downstream = RecordingConsumer()
    processor = BatchProcessor(
        make_settings("batch", "processor"), BatchConfig(send_batch_size=6, timeout=Duration(60)), downstream
    )

    async def scenario() -> None:
        await asyncio.gather(*(processor.consume(make_traces(2)) for _ in range(3)))

    asyncio.run(asyncio.wait_for(scenario(), 5))
    assert len(downstream.received) == 1
    assert len(downstream.spans()) == 6


def test_a_partial_batch_is_forwarded_after_timeout(make_settings: Callable[..., ComponentSettings]) -> None:
    downstream = RecordingConsumer()
    processor = BatchProcessor(
        make_settings("batch", "processor"), BatchConfig(send_batch_size=1000, timeout=Duration(0.02)), downstream
    )
    asyncio.run(asyncio.wait_for(processor.consume(make_traces(3)), 5))
    assert len(downstream.spans()) == 3


def test_callers_wait_for_downstream_and_see_its_error(make_settings: Callable[..., ComponentSettings]) -> None:
    downstream = RecordingConsumer()
    downstream.fail_with = RetryableError("queue full")
    processor = BatchProcessor(make_settings("batch", "processor"), BatchConfig(send_batch_size=4), downstream)

    async def scenario() -> list[BaseException | None]:
        return await asyncio.gather(*(processor.consume(make_traces(2)) for _ in range(2)), return_exceptions=True)

    results = asyncio.run(asyncio.wait_for(scenario(), 5))
    assert [type(r) for r in results] == [RetryableError, RetryableError]


def test_send_batch_max_size_bounds_a_merged_batch(make_settings: Callable[..., ComponentSettings]) -> None:
    downstream = RecordingConsumer()
    config = BatchConfig(send_batch_size=5, send_batch_max_size=5, timeout=Duration(0.02))
    processor = BatchProcessor(make_settings("batch", "processor"), config, downstream)

    async def scenario() -> None:
        await asyncio.gather(*(processor.consume(make_traces(3)) for _ in range(3)))

    asyncio.run(asyncio.wait_for(scenario(), 5))
    sizes = sorted(sum(len(ss.spans) for rs in t.resource_spans for ss in rs.scope_spans) for t in downstream.received)
    assert sizes == [3, 3, 3]


@pytest.mark.parametrize("field", ["send_batch_size", "send_batch_max_size"])
def test_config_validation(field: str) -> None:
    config = (
        BatchConfig(send_batch_size=0)
        if field == "send_batch_size"
        else BatchConfig(send_batch_size=10, send_batch_max_size=5)
    )
    assert [key for key, _ in config.validate()] == [field]
