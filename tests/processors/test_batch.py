"""The batch processor merges requests (of any signal) and holds every caller until its merged batch is accepted
downstream."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from opentelemetry.proto.logs.v1.logs_pb2 import LogsData
from opentelemetry.proto.metrics.v1.metrics_pb2 import MetricsData

from collector.component import ComponentSettings
from collector.config.types import Duration
from collector.errors import RetryableError
from collector.signals import item_count
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


def _logs(records: int) -> LogsData:
    logs = LogsData()
    scope = logs.resource_logs.add().scope_logs.add()
    for i in range(records):
        scope.log_records.add().body.int_value = i
    return logs


def _gauge(points: int) -> MetricsData:
    metrics = MetricsData()
    metric = metrics.resource_metrics.add().scope_metrics.add().metrics.add()
    metric.name = "queue.depth"
    for i in range(points):
        metric.gauge.data_points.add().as_int = i
    return metrics


@pytest.mark.parametrize("make", [_logs, _gauge], ids=["logs", "metrics"])
def test_logs_and_metrics_merge_by_their_items(
    make: Callable[[int], LogsData | MetricsData], make_settings: Callable[..., ComponentSettings]
) -> None:
    downstream = RecordingConsumer()
    # Counted in log records or data points: 2 + 2 reach send_batch_size 4 at once, no timeout needed.
    processor = BatchProcessor(
        make_settings("batch", "processor"), BatchConfig(send_batch_size=4, timeout=Duration(60)), downstream
    )

    async def scenario() -> None:
        await asyncio.gather(processor.consume(make(2)), processor.consume(make(2)))

    asyncio.run(asyncio.wait_for(scenario(), 5))
    [merged] = downstream.received
    expected = make(2)
    expected.MergeFrom(make(2))
    assert merged == expected and item_count(merged) == 4
