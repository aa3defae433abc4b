"""The threads queries run on: a fixed number at once, a bounded wait queue, cancellation that frees the slot.

Queries never run on the event loop nor in asyncio's default executor, which
the WAL and OTLP decoding use: each store has ``max_concurrent_queries`` threads
of its own. A query submitted while they are all busy waits in a queue of at
most ``max_queued_queries``; beyond that it is refused at once with
TooManyQueriesError (the admin endpoint answers 503 with Retry-After).

Cancelling a queued query takes it off the queue. Cancelling a running one
asks the engine to stop it: the job registers how (``QueryTicket.started``),
and a canceller thread of the pool calls that until the job has ended, so a
cancel that races the engine's own registration of the query still lands.
The slot is free once the engine gives up the query.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import logging
import queue
import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from collector.query.errors import QueryCancelledError, QueryTimeoutError, TooManyQueriesError
from collector.query.generated_metrics import QuerySelfMetrics
from collector.telemetry import BoundCounter, Telemetry

T = TypeVar("T")

# How often a running query that was cancelled is asked to stop again, until it has.
KILL_RETRY_SECONDS = 0.2
# What a refused caller is told to wait before trying again.
TOO_MANY_QUERIES_RETRY_AFTER = 5.0
# How long closing the pool waits for the threads of queries it cancelled.
SHUTDOWN_WAIT_SECONDS = 10.0
CLOSING = "the store is closing"

logger = logging.getLogger(__name__)


class QueryTicket(Generic[T]):
    """One submitted query: its outcome, and the way to cancel it."""

    def __init__(self, pool: QueryPool, job: Callable[[QueryTicket[T]], T]) -> None:
        self._pool = pool
        self._job = job
        self._future: concurrent.futures.Future[T] = concurrent.futures.Future()
        self.finished = threading.Event()
        self.cancelled = False
        self.kill: Callable[[], None] | None = None

    def started(self, kill: Callable[[], None]) -> None:
        """Called by the job as it hands the query to the engine: ``kill`` asks the engine to stop it."""
        self._pool.register_kill(self, kill)

    def cancel(self) -> None:
        """Take the query off the queue, or have the engine stop it; nothing if it has already finished."""
        self._pool.cancel(self)

    def result(self, timeout: float | None = None) -> T:
        """Wait for the outcome in this thread; raises what the query raised."""
        return self._future.result(timeout)

    async def wait(self) -> T:
        """Wait for the outcome on the event loop; cancelling the awaiting task cancels the query."""
        loop = asyncio.get_running_loop()
        outcome: asyncio.Future[T] = loop.create_future()

        def copy(done: concurrent.futures.Future[T]) -> None:
            if outcome.done():
                return
            error = done.exception()
            if error is not None:
                outcome.set_exception(error)
            else:
                outcome.set_result(done.result())

        self._future.add_done_callback(lambda done: loop.call_soon_threadsafe(copy, done))
        try:
            return await outcome
        except asyncio.CancelledError:
            self.cancel()
            raise

    def _settle(self, result: T | None, error: BaseException | None) -> None:
        if error is not None:
            self._future.set_exception(error)
        else:
            self._future.set_result(result)  # type: ignore[arg-type]
        self.finished.set()


class QueryPool:
    """``max_concurrent`` query threads and a wait queue of ``max_queued``; see the module docstring."""

    def __init__(
        self,
        name: str,
        max_concurrent: int,
        max_queued: int,
        telemetry: Telemetry | None = None,
        exporter: str = "",
    ) -> None:
        self._max_queued = max_queued
        self._condition = threading.Condition()
        self._queue: collections.deque[QueryTicket[Any]] = collections.deque()
        self._running: set[QueryTicket[Any]] = set()
        self._closing = False
        self._kills: queue.SimpleQueue[QueryTicket[Any] | None] = queue.SimpleQueue()
        self._workers = [
            threading.Thread(target=self._work, name=f"{name}-query-{i}", daemon=True) for i in range(max_concurrent)
        ]
        self._canceller = threading.Thread(target=self._cancel_running, name=f"{name}-query-cancel", daemon=True)
        for thread in (*self._workers, self._canceller):
            thread.start()
        # What the pool counts (nothing without a telemetry): queries refused, cancelled, timed out.
        self._refused: BoundCounter | None = None
        self._cancelled: BoundCounter | None = None
        self._timed_out: BoundCounter | None = None
        if telemetry is not None:
            metrics = QuerySelfMetrics(telemetry)
            metrics.queries_running.watch(lambda: float(self.running), exporter=exporter)
            metrics.queries_queued.watch(lambda: float(self.queued), exporter=exporter)
            self._refused = metrics.queries_refused.bind(exporter=exporter)
            self._cancelled = metrics.queries_cancelled.bind(exporter=exporter)
            self._timed_out = metrics.queries_timed_out.bind(exporter=exporter)

    @property
    def running(self) -> int:
        with self._condition:
            return len(self._running)

    @property
    def queued(self) -> int:
        with self._condition:
            return len(self._queue)

    def submit(self, job: Callable[[QueryTicket[T]], T]) -> QueryTicket[T]:
        """Queue ``job`` for the next free thread; TooManyQueriesError when the wait queue is full."""
        ticket: QueryTicket[T] = QueryTicket(self, job)
        with self._condition:
            if self._closing:
                raise QueryCancelledError(CLOSING)
            idle = len(self._workers) - len(self._running)
            if len(self._queue) >= self._max_queued + max(0, idle):
                _count(self._refused)
                raise TooManyQueriesError(
                    f"too many queries: {len(self._running)} running and {len(self._queue)} waiting; try again later",
                    TOO_MANY_QUERIES_RETRY_AFTER,
                )
            self._queue.append(ticket)
            self._condition.notify_all()
        return ticket

    def run(self, job: Callable[[QueryTicket[T]], T]) -> T:
        """Submit ``job`` and wait for it in this thread."""
        return self.submit(job).result()

    def wait_until(self, predicate: Callable[[QueryPool], bool], timeout: float) -> bool:
        """Block until ``predicate(self)`` holds (checked at every change of state); False after ``timeout``."""
        with self._condition:
            return self._condition.wait_for(lambda: predicate(self), timeout)

    def register_kill(self, ticket: QueryTicket[T], kill: Callable[[], None]) -> None:
        with self._condition:
            ticket.kill = kill
            if ticket.cancelled:
                raise QueryCancelledError("the query was cancelled")

    def cancel(self, ticket: QueryTicket[T]) -> None:
        with self._condition:
            if ticket.finished.is_set() or ticket.cancelled:
                return
            ticket.cancelled = True
            if ticket in self._queue:
                self._queue.remove(ticket)
                _count(self._cancelled)
                self._condition.notify_all()
                queued = True
            else:
                queued = False
        if queued:
            ticket._settle(None, QueryCancelledError("the query was cancelled before it started"))
        else:
            self._kills.put(ticket)

    def shutdown(self) -> None:
        """Refuse new queries, drop the queued ones, stop the running ones and wait (bounded) for their threads."""
        with self._condition:
            if self._closing:
                return
            self._closing = True
            dropped = list(self._queue)
            self._queue.clear()
            running = list(self._running)
            self._condition.notify_all()
        for ticket in dropped:
            ticket.cancelled = True
            ticket._settle(None, QueryCancelledError(CLOSING))
        for ticket in running:
            self.cancel(ticket)
        for worker in self._workers:
            worker.join(SHUTDOWN_WAIT_SECONDS)
        self._kills.put(None)
        self._canceller.join(SHUTDOWN_WAIT_SECONDS)

    def _work(self) -> None:
        while True:
            with self._condition:
                self._condition.wait_for(lambda: self._queue or self._closing)
                if not self._queue:
                    return
                ticket = self._queue.popleft()
                self._running.add(ticket)
                self._condition.notify_all()
            result: object = None
            error: BaseException | None = None
            try:
                result = ticket._job(ticket)
            except BaseException as exc:  # the caller gets whatever the job raised
                error = exc
            with self._condition:
                self._running.discard(ticket)
                if isinstance(error, QueryCancelledError):
                    _count(self._cancelled)
                elif isinstance(error, QueryTimeoutError):
                    _count(self._timed_out)
                self._condition.notify_all()
            ticket._settle(result, error)

    def _cancel_running(self) -> None:
        """Ask the engine to stop each cancelled query, again every KILL_RETRY_SECONDS, until its job has ended."""
        pending: list[QueryTicket[Any]] = []
        while True:
            try:
                ticket = self._kills.get(timeout=KILL_RETRY_SECONDS) if pending else self._kills.get()
            except queue.Empty:
                ticket = None
            else:
                if ticket is None:
                    return
                pending.append(ticket)
            pending = [p for p in pending if not p.finished.is_set()]
            for waiting in pending:
                kill = waiting.kill
                if kill is None:
                    continue  # not handed to the engine yet: register_kill will refuse to start it
                try:
                    kill()
                except Exception:
                    logger.warning("could not stop a cancelled query; it ends at max_execution_time", exc_info=True)


def _count(counter: BoundCounter | None) -> None:
    if counter is not None:
        counter.add(1)
