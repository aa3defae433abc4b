"""The query pool: bounded threads and queue, refusals, cancellation that frees the slot, shutdown, self-metrics."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator

import pytest

from collector.query.errors import QueryCancelledError, QueryTimeoutError, TooManyQueriesError
from collector.query.generated_metrics import (
    QUERIES_CANCELLED,
    QUERIES_QUEUED,
    QUERIES_REFUSED,
    QUERIES_RUNNING,
    QUERIES_TIMED_OUT,
)
from collector.query.pool import QueryPool, QueryTicket
from collector.telemetry import MetricSpec, Telemetry

WAIT = 10.0


class Gate:
    """Jobs that block until the gate opens, or until their query is killed (as the engine stops a killed query)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open = False
        self._waiting: list[threading.Event] = []
        self.kills = 0

    def open(self) -> None:
        with self._lock:
            self._open = True
            for wake in self._waiting:
                wake.set()

    def close(self) -> None:
        with self._lock:
            self._open = False

    def job(self, answer: str = "done") -> Callable[[QueryTicket[str]], str]:
        wake = threading.Event()
        killed = threading.Event()
        with self._lock:
            self._waiting.append(wake)

        def kill() -> None:
            with self._lock:
                self.kills += 1
            killed.set()
            wake.set()

        def run(ticket: QueryTicket[str]) -> str:
            ticket.started(kill)
            with self._lock:
                if self._open:
                    wake.set()
            assert wake.wait(WAIT)
            if killed.is_set():
                raise QueryCancelledError("the query was cancelled")
            return answer

        return run


@pytest.fixture
def telemetry() -> Telemetry:
    return Telemetry()


@pytest.fixture
def pool(telemetry: Telemetry) -> Iterator[QueryPool]:
    pool = QueryPool("test", max_concurrent=2, max_queued=1, telemetry=telemetry, exporter="clickhouse")
    try:
        yield pool
    finally:
        pool.shutdown()


def metric(telemetry: Telemetry, declared: MetricSpec) -> float:
    return telemetry.value(declared.name, exporter="clickhouse")


def test_at_most_max_concurrent_run_and_max_queued_wait(pool: QueryPool, telemetry: Telemetry) -> None:
    gate = Gate()
    running = [pool.submit(gate.job(f"r{i}")) for i in range(2)]
    assert pool.wait_until(lambda p: p.running == 2, WAIT)
    waiting = pool.submit(gate.job("w"))
    assert pool.queued == 1
    with pytest.raises(TooManyQueriesError) as refused:
        pool.submit(gate.job("x"))
    assert str(refused.value) == "too many queries: 2 running and 1 waiting; try again later"
    assert refused.value.retry_after > 0
    declared = (QUERIES_RUNNING, QUERIES_QUEUED, QUERIES_REFUSED)
    assert [metric(telemetry, spec) for spec in declared] == [2, 1, 1]
    gate.open()
    assert [t.result(WAIT) for t in (*running, waiting)] == ["r0", "r1", "w"]
    assert pool.wait_until(lambda p: p.running == 0 and p.queued == 0, WAIT)


def test_cancelling_a_waiting_query_takes_it_off_the_queue(pool: QueryPool, telemetry: Telemetry) -> None:
    gate = Gate()
    for _ in range(2):
        pool.submit(gate.job())
    assert pool.wait_until(lambda p: p.running == 2, WAIT)
    waiting = pool.submit(gate.job())
    waiting.cancel()
    assert pool.queued == 0
    with pytest.raises(QueryCancelledError, match="before it started"):
        waiting.result(WAIT)
    pool.submit(gate.job()).cancel()  # the freed place in the queue takes a new query
    assert metric(telemetry, QUERIES_CANCELLED) == 2 and gate.kills == 0
    gate.open()


def test_cancelling_a_running_query_kills_it_and_frees_the_slot(pool: QueryPool, telemetry: Telemetry) -> None:
    gate = Gate()
    ticket = pool.submit(gate.job())
    assert pool.wait_until(lambda p: p.running == 1, WAIT)
    ticket.cancel()
    with pytest.raises(QueryCancelledError):
        ticket.result(WAIT)
    assert pool.wait_until(lambda p: p.running == 0, WAIT)
    assert gate.kills >= 1 and metric(telemetry, QUERIES_CANCELLED) == 1
    ticket.cancel()  # a finished query: nothing to do
    gate.open()
    assert pool.submit(gate.job("next")).result(WAIT) == "next"


def test_a_kill_that_comes_too_early_is_repeated_until_the_query_stops(pool: QueryPool) -> None:
    calls: list[int] = []
    registered = threading.Event()
    stopped = threading.Event()

    def kill() -> None:
        calls.append(1)
        if len(calls) >= 3:  # the engine only knows the query from the third attempt on
            stopped.set()

    def job(ticket: QueryTicket[str]) -> str:
        ticket.started(kill)
        registered.set()
        if not stopped.wait(WAIT):
            return "never stopped"
        raise QueryCancelledError("the query was cancelled")

    ticket = pool.submit(job)
    assert registered.wait(WAIT)
    ticket.cancel()
    with pytest.raises(QueryCancelledError):
        ticket.result(WAIT)
    assert len(calls) >= 3


def test_a_query_cancelled_before_it_reaches_the_engine_never_starts(pool: QueryPool) -> None:
    entered = threading.Event()
    proceed = threading.Event()
    started: list[bool] = []

    def job(ticket: QueryTicket[str]) -> str:
        entered.set()
        proceed.wait(WAIT)
        ticket.started(lambda: None)  # raises: the ticket was cancelled meanwhile
        started.append(True)
        return "ran"

    ticket = pool.submit(job)
    assert entered.wait(WAIT)
    ticket.cancel()
    proceed.set()
    with pytest.raises(QueryCancelledError):
        ticket.result(WAIT)
    assert started == []


def test_timeouts_and_errors_reach_the_caller_and_timeouts_are_counted(pool: QueryPool, telemetry: Telemetry) -> None:
    def timed_out(ticket: QueryTicket[str]) -> str:
        raise QueryTimeoutError("the query ran longer than max_execution_time (1s) and was stopped")

    with pytest.raises(QueryTimeoutError):
        pool.submit(timed_out).result(WAIT)
    assert metric(telemetry, QUERIES_TIMED_OUT) == 1


def test_awaiting_a_query_and_cancelling_the_awaiting_task_cancels_the_query(pool: QueryPool) -> None:
    gate = Gate()

    async def scenario() -> None:
        gate.open()
        assert await pool.submit(gate.job("async")).wait() == "async"
        gate.close()
        ticket = pool.submit(gate.job())
        waiter = asyncio.ensure_future(ticket.wait())
        await asyncio.get_running_loop().run_in_executor(None, pool.wait_until, lambda p: p.running == 1, WAIT)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        with pytest.raises(QueryCancelledError):
            await asyncio.get_running_loop().run_in_executor(None, ticket.result, WAIT)

    asyncio.run(asyncio.wait_for(scenario(), WAIT))
    assert gate.kills == 1


def test_shutdown_drops_the_queue_stops_what_runs_and_refuses_new_queries(telemetry: Telemetry) -> None:
    pool = QueryPool("closing", max_concurrent=1, max_queued=2, telemetry=telemetry, exporter="clickhouse")
    gate = Gate()
    running = pool.submit(gate.job())
    assert pool.wait_until(lambda p: p.running == 1, WAIT)
    waiting = pool.submit(gate.job())
    pool.shutdown()
    for ticket in (running, waiting):
        with pytest.raises(QueryCancelledError):
            ticket.result(WAIT)
    with pytest.raises(QueryCancelledError, match="the store is closing"):
        pool.submit(gate.job())
    pool.shutdown()  # twice is fine
