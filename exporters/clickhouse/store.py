"""The ClickHouse store behind the exporter: one clickhouse-connect code path for chDB and servers.

``chdb://PATH`` opens the embedded engine in this process; ``http(s)://`` talks to
a server. Either way spans are inserted as one Arrow table per batch (column
oriented, parsed by ClickHouse itself), and read-only queries run on a second
client so they never wait behind an insert. Every method blocks: the exporter
calls them from worker threads.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
from collections.abc import Iterator
from typing import Any

import clickhouse_connect
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ClickHouseError, DatabaseError, OperationalError

from collector.errors import PermanentError, RetryableError, StartError
from collector.queue import Batch
from collector.sql import QueryError, QueryResult, check_read_only
from exporters.clickhouse.columns import traces_to_table
from exporters.clickhouse.config import ClickHouseConfig, redact_url
from exporters.clickhouse.layout import Layout
from exporters.clickhouse.schema import TraceTables, expected_tables, schema_statements

# ClickHouse error codes that mean the data itself is wrong; retrying cannot help.
_PERMANENT_CODES = frozenset({6, 27, 41, 53, 62, 69, 70, 72, 117, 130, 386})
_LOCKED_MARKERS = ("Cannot lock file", "Another server instance")


class StoreError(StartError):
    """The store cannot be opened or is not as expected; the message is for the user."""


class ClickHouseStore:
    """Inserts span batches and answers read-only queries for one clickhouse exporter."""

    def __init__(self, config: ClickHouseConfig, logger: logging.Logger) -> None:
        self._config = config
        self._logger = logger
        self._tables = TraceTables(config.traces_table_name)
        self._layout = Layout(
            database=config.database,
            ttl_seconds=config.ttl,
            cluster=config.cluster_name,
            engine=config.table_engine.name,
            engine_params=config.table_engine.params,
        )
        self._insert_client: Client | None = None
        self._query_client: Client | None = None
        self._query_lock = threading.Lock()

    @property
    def tables(self) -> TraceTables:
        return self._tables

    @property
    def layout(self) -> Layout:
        return self._layout

    def describe(self) -> str:
        if self._config.is_embedded:
            return f"chdb://{self._config.chdb_path()}"
        return redact_url(self._config.endpoint)

    def start(self) -> None:
        """Connect, then create the schema or check that it exists; on failure nothing stays open."""
        try:
            self._insert_client = self._connect()
            try:
                if self._config.create_schema:
                    for statement in schema_statements(self._layout, self._tables):
                        self._insert_client.command(statement)
                else:
                    self._check_schema(self._insert_client)
            except ClickHouseError as exc:
                raise StoreError(f"cannot prepare the tables in {self.describe()}: {_first_line(exc)}") from None
            with self._query_lock:
                # Both connections open now, while nothing else runs (see _engine_stderr_silenced),
                # and after the schema: a server's query client starts in the configured database.
                self._query_client = self._connect(read_only=True)
        except BaseException:
            self.close()
            raise
        # pyarrow imports pandas on its first array; pay that now, not on the first batch.
        traces_to_table(())

    def send(self, batch: Batch) -> None:
        if self._insert_client is None:
            raise RetryableError("the store is not open")
        table = traces_to_table(batch.items)
        try:
            self._insert_client.insert_arrow(self._tables.traces, table, database=self._layout.database)
        except ClickHouseError as exc:
            raise _classify(exc) from None

    def query(self, sql: str) -> QueryResult:
        statement = check_read_only(sql)
        with self._query_lock:
            if self._query_client is None:
                try:
                    self._query_client = self._connect(read_only=True)
                except StoreError as exc:
                    raise QueryError(str(exc)) from None
            client = self._query_client
        try:
            result = client.query(statement)
        except ClickHouseError as exc:
            raise QueryError(_first_line(exc)) from None
        return QueryResult(
            columns=list(result.column_names),
            types=[t.name for t in result.column_types],
            rows=[list(row) for row in result.result_rows],
        )

    def close(self) -> None:
        for client in (self._query_client, self._insert_client):
            if client is not None:
                client.close()
        self._query_client = self._insert_client = None

    def _connect(self, read_only: bool = False) -> Client:
        """A client on the store; ``read_only`` ones refuse writes and DDL in ClickHouse itself."""
        config = self._config
        # readonly=1 also refuses table functions such as file() in the engine;
        # a server gets readonly=2, which still lets clickhouse-connect send its
        # own per-query settings. check_read_only guards both the same way.
        settings = {"readonly": ("1" if config.is_embedded else "2")} if read_only else {}
        try:
            if config.is_embedded:
                path = config.chdb_path()
                path.mkdir(parents=True, exist_ok=True)
                with _engine_stderr_silenced():
                    client = clickhouse_connect.get_client(dsn=f"chdb://{path}", settings=settings)
                    client.command("SELECT 1 FROM system.one")  # touches the data dir, so a held lock shows now
                return client
            return clickhouse_connect.get_client(
                dsn=config.endpoint,
                username=config.username or None,
                password=config.password.reveal(),
                # Inserts and DDL name their database, which may not exist before the
                # schema is made; read-only queries start in it, so "FROM otel_traces" works.
                database=config.database if read_only else "",
                connect_timeout=config.timeout,
                send_receive_timeout=config.timeout,
                compress=False if config.compression == "none" else config.compression,
                verify=not config.tls.insecure_skip_verify,
                ca_cert=config.tls.ca_file or None,
                settings=settings,
                # A session serialises a client's queries on the server and pins it
                # to one replica behind a load balancer; inserts need neither.
                autogenerate_session_id=False,
            )
        except (ClickHouseError, OSError, ValueError) as exc:
            raise StoreError(self._open_failure(exc)) from None

    def _open_failure(self, exc: BaseException) -> str:
        message = str(exc)
        if any(marker in message for marker in _LOCKED_MARKERS) or "EmbeddedServer" in message:
            return (
                f"the store {self.describe()} is open in another process "
                "(a running collector answers queries on its admin endpoint)"
            )
        return f"cannot open the store {self.describe()}: {_first_line(exc)}"

    def _check_schema(self, client: Client) -> None:
        names = client.query(
            "SELECT name FROM system.tables WHERE database = {db:String}",
            parameters={"db": self._layout.database},
        ).result_rows
        present = {row[0] for row in names}
        missing = [t for t in expected_tables(self._layout, self._tables) if t not in present]
        if missing:
            listed = ", ".join(f"{self._layout.database}.{t}" for t in missing)
            raise StoreError(f"create_schema is off and these tables are missing: {listed}")


@contextlib.contextmanager
def _engine_stderr_silenced() -> Iterator[None]:
    """Keep chDB from printing its own copy of an open failure to file descriptor 2.

    The engine writes errors such as a held lock straight to stderr; the
    StoreError raised instead says the same in one line. Only used while a
    connection opens, which happens at start-up and in the query command.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _classify(exc: ClickHouseError) -> PermanentError | RetryableError:
    """Whether an insert failure is worth retrying."""
    code: Any = getattr(exc, "code", None)
    message = _first_line(exc)
    if isinstance(exc, OperationalError):
        return RetryableError(f"ClickHouse unreachable: {message}")
    if isinstance(exc, DatabaseError) and code in _PERMANENT_CODES:
        return PermanentError(f"ClickHouse rejected the batch: {message}")
    return RetryableError(f"ClickHouse insert failed: {message}")


def _first_line(exc: BaseException) -> str:
    """The first line of an error's message: ClickHouse appends stack traces after it."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
