"""QueuedExporter: acknowledgement at enqueue, retries for retryable failures, drops counted, drain on shutdown."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from collections.abc import Callable

import pytest

from collector.component import ComponentSettings
from collector.config.types import Duration
from collector.errors import PermanentError, RetryableError, StartError
from collector.exporterhelper import BatchSettings, QueuedExporter, QueueSettings, RetrySettings
from collector.queue import Batch
from collector.telemetry import Telemetry
from tests.conftest import make_traces

FAST_RETRY = RetrySettings(initial_interval=Duration(0.01), max_interval=Duration(0.02), max_elapsed_time=Duration(5))
SMALL_QUEUE = QueueSettings(
    queue_size=1000, batch=BatchSettings(flush_timeout=Duration(0.01), min_size=1, max_size=100)
)


class ScriptedSender:
    """A Sender whose first sends fail as scripted; records what it stored."""

    def __init__(self, failures: list[Exception] | None = None) -> None:
        self.failures = list(failures or [])
        self.stored: list[int] = []
        self.started = self.closed = False
        self.gate = threading.Event()
        self.gate.set()

    def start(self) -> None:
        self.started = True

    def send(self, batch: Batch) -> None:
        self.gate.wait(10)
        if self.failures:
            raise self.failures.pop(0)
        self.stored.append(batch.span_count)

    def close(self) -> None:
        self.closed = True


def test_retryable_failures_are_retried_until_the_batch_is_stored(
    make_settings: Callable[..., ComponentSettings],
) -> None:
    telemetry = Telemetry()
    sender = ScriptedSender([RetryableError("store restarting"), RetryableError("still restarting")])
    exporter = QueuedExporter(make_settings("clickhouse", telemetry=telemetry), sender, SMALL_QUEUE, FAST_RETRY)

    async def scenario() -> None:
        await exporter.start(None)  # type: ignore[arg-type]
        await exporter.consume(make_traces(4))
        await exporter.shutdown()

    asyncio.run(scenario())
    assert sender.stored == [4]
    assert sender.started and sender.closed
    assert telemetry.value("otelcol_exporter_sent_spans", exporter="clickhouse") == 4


def test_a_permanent_failure_drops_the_batch_and_counts_it(make_settings: Callable[..., ComponentSettings]) -> None:
    telemetry = Telemetry()
    sender = ScriptedSender([PermanentError("bad data")])
    exporter = QueuedExporter(make_settings("clickhouse", telemetry=telemetry), sender, SMALL_QUEUE, FAST_RETRY)

    async def scenario() -> None:
        await exporter.start(None)  # type: ignore[arg-type]
        await exporter.consume(make_traces(3))
        await exporter.shutdown()

    asyncio.run(scenario())
    assert sender.stored == []
    assert telemetry.value("otelcol_exporter_send_failed_spans", exporter="clickhouse", reason="permanent") == 3


def test_retries_stop_at_max_elapsed_time(make_settings: Callable[..., ComponentSettings]) -> None:
    telemetry = Telemetry()
    sender = ScriptedSender([RetryableError("down")] * 1000)
    retry = RetrySettings(initial_interval=Duration(0.01), max_interval=Duration(0.01), max_elapsed_time=Duration(0.05))
    exporter = QueuedExporter(make_settings("clickhouse", telemetry=telemetry), sender, SMALL_QUEUE, retry)

    async def scenario() -> None:
        await exporter.start(None)  # type: ignore[arg-type]
        await exporter.consume(make_traces(2))
        await exporter.shutdown()

    asyncio.run(asyncio.wait_for(scenario(), 10))
    assert telemetry.value("otelcol_exporter_send_failed_spans", exporter="clickhouse", reason="retries_exhausted") == 2


def test_consume_returns_at_enqueue_and_shutdown_drains_everything(
    make_settings: Callable[..., ComponentSettings],
) -> None:
    sender = ScriptedSender()
    sender.gate.clear()  # the store is slow: nothing is sent until the gate opens
    exporter = QueuedExporter(make_settings(), sender, SMALL_QUEUE, FAST_RETRY)

    async def scenario() -> None:
        await exporter.start(None)  # type: ignore[arg-type]
        for _ in range(5):
            await exporter.consume(make_traces(10))  # acknowledged while nothing is stored yet
        assert sender.stored == []
        sender.gate.set()
        await exporter.shutdown()

    asyncio.run(asyncio.wait_for(scenario(), 10))
    assert sum(sender.stored) == 50


def test_a_full_queue_refuses_and_counts(make_settings: Callable[..., ComponentSettings]) -> None:
    telemetry = Telemetry()
    sender = ScriptedSender()
    sender.gate.clear()
    queue = QueueSettings(queue_size=10, batch=BatchSettings(flush_timeout=Duration(0.01), min_size=1, max_size=100))
    exporter = QueuedExporter(make_settings("clickhouse", telemetry=telemetry), sender, queue, FAST_RETRY)

    async def scenario() -> str:
        await exporter.start(None)  # type: ignore[arg-type]
        await exporter.consume(make_traces(8))
        try:
            await exporter.consume(make_traces(8))
        except RetryableError as exc:
            message = str(exc)
        else:
            message = "accepted"
        sender.gate.set()
        await exporter.shutdown()
        return message

    assert asyncio.run(asyncio.wait_for(scenario(), 10)) == "sending queue is full (8 of 10 spans held)"
    assert telemetry.value("otelcol_exporter_enqueue_failed_spans", exporter="clickhouse") == 8


def test_abandon_ends_a_shutdown_stuck_retrying_and_counts_the_drop(
    make_settings: Callable[..., ComponentSettings],
) -> None:
    telemetry = Telemetry()
    sender = ScriptedSender([RetryableError("store down")] * 1000)
    patient = RetrySettings(initial_interval=Duration(30), max_interval=Duration(30), max_elapsed_time=Duration(300))
    in_memory = dataclasses.replace(SMALL_QUEUE, storage="memory")  # a disk queue keeps it instead
    exporter = QueuedExporter(make_settings("clickhouse", telemetry=telemetry), sender, in_memory, patient)

    async def scenario() -> None:
        await exporter.start(None)  # type: ignore[arg-type]
        await exporter.consume(make_traces(6))
        shutdown = asyncio.create_task(exporter.shutdown())
        await asyncio.sleep(0.2)
        assert not shutdown.done()  # waiting out a 30 s backoff
        exporter.abandon()
        await asyncio.wait_for(shutdown, 5)

    asyncio.run(scenario())
    assert sender.stored == []
    assert sender.closed
    assert telemetry.value("otelcol_exporter_send_failed_spans", exporter="clickhouse", reason="shutdown") == 6


def test_a_sender_that_fails_to_start_leaves_the_exporter_safe_to_shut_down(
    make_settings: Callable[..., ComponentSettings],
) -> None:
    class UnreachableSender(ScriptedSender):
        def start(self) -> None:
            raise StartError("cannot reach the store")

    exporter = QueuedExporter(make_settings("clickhouse"), UnreachableSender(), SMALL_QUEUE, FAST_RETRY)

    async def scenario() -> None:
        with pytest.raises(StartError):
            await exporter.start(None)  # type: ignore[arg-type]
        await exporter.shutdown()
        with pytest.raises(RetryableError, match="not running"):
            await exporter.consume(make_traces(1))

    asyncio.run(scenario())
