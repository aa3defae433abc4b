"""The read side of a ClickHouse store: connections under the locked profile, the query pool, the guard, KILL.

Two ways in, one pool and one profile:

- ``submit_raw(sql)``: SQL a user typed (the admin endpoint, ``genai-collector
  query``). The engine parses it for the guard (collector.query.guard) on the
  same read connection that then runs the SQL rebuilt from what was checked.
- ``submit_built(sql, parameters)``: SQL the collector's own code wrote, with
  ``{name:Type}`` placeholders filled by the engine from ``parameters``; it is
  trusted as written and skips the guard, not the profile or the pool.

Each query thread of the pool takes one of ``max_concurrent_queries`` read
connections for the length of a query (a chDB connection runs one query at a
time), and one more connection, with the same profile, is kept for KILL QUERY.
A query is named by a comment the reader puts in front of it, which the
engine keeps in ``system.processes.query``; KILL QUERY finds it by that prefix
(clickhouse-connect's chDB backend drops ``query_id``, so a comment is the one
name both backends keep).
"""

from __future__ import annotations

import queue
import threading
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ClickHouseError, DatabaseError

from collector.query import guard
from collector.query.errors import QueryCancelledError, QueryError, QueryTimeoutError
from collector.query.limits import QueryLimits
from collector.query.pool import QueryPool, QueryTicket
from collector.query.result import QueryResult
from collector.telemetry import Telemetry
from exporters.clickhouse.failures import first_line, is_unreachable

TIMEOUT_EXCEEDED = 159
TOO_MANY_ROWS_OR_BYTES = 396
QUERY_WAS_CANCELLED = 394
MARKER_PREFIX = "/* genai-collector query "
KILL_SQL = "KILL QUERY WHERE startsWith(query, {marker:String}) ASYNC"


class StoreReader:
    """Runs read queries for one store; ``connect`` opens one read connection with the locked profile."""

    def __init__(
        self,
        limits: QueryLimits,
        connect: Callable[[], Client],
        database: str,
        describe: str,
        telemetry: Telemetry | None = None,
        exporter_id: str = "",
    ) -> None:
        self._limits = limits
        self._connect = connect
        self._database = database
        self._describe = describe
        self._idle: queue.SimpleQueue[Client] = queue.SimpleQueue()
        self._clients: list[Client] = []
        self._control: Client | None = None
        self._open_lock = threading.Lock()
        self._pool_lock = threading.Lock()
        self._telemetry = telemetry
        self._exporter_id = exporter_id
        self._pool: QueryPool | None = None

    @property
    def pool(self) -> QueryPool:
        """The query threads, started on first use (a store that is never queried starts none)."""
        with self._pool_lock:
            if self._pool is None:
                self._pool = QueryPool(
                    self._exporter_id or "clickhouse",
                    self._limits.max_concurrent_queries,
                    self._limits.max_queued_queries,
                    self._telemetry,
                    exporter=self._exporter_id,
                )
            return self._pool

    def open(self) -> None:
        """Open every read connection now (the store calls this while nothing else runs); idempotent."""
        with self._open_lock:
            if self._control is not None:
                return
            opened: list[Client] = []
            try:
                for _ in range(self._limits.max_concurrent_queries + 1):
                    opened.append(self._connect())
            except BaseException:
                for client in opened:
                    client.close()
                raise
            self._control = opened.pop()
            self._clients = opened
            for client in opened:
                self._idle.put(client)

    def submit_raw(self, sql: str) -> QueryTicket[QueryResult]:
        """Queue a user's statement: checked by the guard, then run as rebuilt from what was checked."""

        def job(ticket: QueryTicket[QueryResult]) -> QueryResult:
            statement = guard.prepare(sql)
            with self._client() as client:
                try:
                    rows = client.query(guard.PARSE_SQL, parameters={"sql": statement}).result_rows
                except ClickHouseError as exc:
                    raise self._parse_failure(exc) from None
                checked = guard.accept(guard.ParsedStatement.from_row(rows[0]), self._database)
                return self._execute(client, ticket, checked, None)

        return self.pool.submit(job)

    def submit_built(self, sql: str, parameters: Mapping[str, Any] | None = None) -> QueryTicket[QueryResult]:
        """Queue SQL the collector built itself, ``{name:Type}`` placeholders bound from ``parameters``."""

        def job(ticket: QueryTicket[QueryResult]) -> QueryResult:
            with self._client() as client:
                return self._execute(client, ticket, sql, parameters)

        return self.pool.submit(job)

    def close(self) -> None:
        """Stop the pool (cancelling what runs), then close every connection."""
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown()
        with self._open_lock:
            for client in (*self._clients, self._control):
                if client is not None:
                    client.close()
            # A store started again after close (a retry of start) opens new connections and a new pool.
            self._clients, self._control, self._idle = [], None, queue.SimpleQueue()

    def _client(self) -> _Checkout:
        if self._control is None:
            try:
                self.open()
            except Exception as exc:
                raise QueryError(str(exc)) from None
        return _Checkout(self._idle)

    def _execute(
        self, client: Client, ticket: QueryTicket[QueryResult], sql: str, parameters: Mapping[str, Any] | None
    ) -> QueryResult:
        marker = f"{MARKER_PREFIX}{uuid.uuid4().hex} */"
        ticket.started(lambda: self._kill(marker))
        try:
            result = client.query(f"{marker} {sql}", parameters=dict(parameters) if parameters else None)
        except ClickHouseError as exc:
            raise self._failure(exc) from None
        return QueryResult(
            columns=list(result.column_names),
            types=[t.name for t in result.column_types],
            rows=[list(row) for row in result.result_rows],
        )

    def _kill(self, marker: str) -> None:
        control = self._control
        if control is not None:
            control.command(KILL_SQL, parameters={"marker": marker})

    def _parse_failure(self, exc: ClickHouseError) -> Exception:
        if not isinstance(exc, DatabaseError) or is_unreachable(exc):
            return QueryError(f"{self._describe} did not answer: {first_line(exc)}")
        return guard.parse_failure(str(exc), self._describe)

    def _failure(self, exc: ClickHouseError) -> QueryError:
        if not isinstance(exc, DatabaseError) or is_unreachable(exc):
            return QueryError(f"{self._describe} did not answer: {first_line(exc)}")
        text, name = guard.engine_message(str(exc))
        code = getattr(exc, "code", None)
        limits = self._limits
        if code == QUERY_WAS_CANCELLED:
            return QueryCancelledError("the query was cancelled")
        if code == TIMEOUT_EXCEEDED:
            return QueryTimeoutError(
                f"the query ran longer than max_execution_time ({float(limits.max_execution_time):g}s) and was stopped"
            )
        if code == TOO_MANY_ROWS_OR_BYTES:
            return QueryError(
                f"the result is larger than max_result_rows ({limits.max_result_rows}) or max_result_bytes "
                f"({limits.max_result_bytes}); narrow the query or add a LIMIT"
            )
        return QueryError(f"{text} ({name})" if name else text)


class _Checkout:
    """A read connection taken from the idle ones for one query, and given back."""

    def __init__(self, idle: queue.SimpleQueue[Client]) -> None:
        self._idle = idle
        self._client: Client | None = None

    def __enter__(self) -> Client:
        # Never waits long: the pool runs at most as many queries as there are connections.
        self._client = self._idle.get()
        return self._client

    def __exit__(self, *exc_info: object) -> None:
        assert self._client is not None
        self._idle.put(self._client)
