"""The ClickHouse store behind the exporter: one clickhouse-connect code path for chDB and servers.

``chdb://PATH`` opens the embedded engine in this process; ``http(s)://`` talks to
a server. Either way a batch is inserted as one Arrow table per table it touches
(column oriented, parsed by ClickHouse itself): spans into otel_traces
(``send``), log records into otel_logs (``send_logs``), data points into the
table of their metric type (``send_metrics``). Queries run on connections of their
own, under a locked profile and on a bounded pool of threads
(exporters.clickhouse.reader), so they never wait behind an insert nor take the
threads ingest uses. Sending blocks: the exporter calls it from worker threads.

Each insert carries its batch's deduplication token (exporters.clickhouse.dedup),
so a retry of an insert that did commit is dropped by ClickHouse. A server that
is down at start does not stop the collector: the store connects and prepares
the tables on the first send that reaches it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Protocol, TypeVar

import clickhouse_connect
import pyarrow as pa
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ClickHouseError
from opentelemetry.proto.logs.v1.logs_pb2 import LogsData
from opentelemetry.proto.metrics.v1.metrics_pb2 import MetricsData

from collector.errors import RetryableError, StartError
from collector.private_files import private_directory
from collector.query.limits import DEFAULT_MAX_MEMORY_USAGE, MemoryPlan, insert_profile, locked_profile, plan_memory
from collector.query.pool import QueryTicket
from collector.query.result import QueryResult
from collector.queue import Batch
from collector.telemetry import Telemetry
from exporters.clickhouse.columns import traces_to_table
from exporters.clickhouse.config import ClickHouseConfig, redact_url
from exporters.clickhouse.dedup import encoded_batch_token, insert_settings
from exporters.clickhouse.failures import classify_insert_failure, first_line, is_unreachable
from exporters.clickhouse.generated_metrics import ClickhouseSelfMetrics
from exporters.clickhouse.layout import Layout
from exporters.clickhouse.log_columns import logs_to_table
from exporters.clickhouse.metric_columns import metrics_to_tables
from exporters.clickhouse.reader import StoreReader
from exporters.clickhouse.schema import TraceTables, expected_tables, schema_statements
from exporters.clickhouse.signal_schema import SignalTables

# Reasons of a failed attempt to connect and prepare the tables.
UNREACHABLE = "unreachable"
REFUSED = "refused"
_LOCKED_MARKERS = ("Cannot lock file", "Another server instance")
# How much longer than max_execution_time a server's read connection waits for an answer.
QUERY_ANSWER_MARGIN_SECONDS = 5.0


Message = TypeVar("Message", covariant=True)


class EncodedBatch(Protocol[Message]):
    """A batch as a sending queue hands it over (collector.queue.Batch): its messages and their encodings."""

    @property
    def items(self) -> Sequence[Message]: ...

    def encodings(self) -> Iterator[bytes]:
        """Each item's deterministic encoding (collector.pdata.encode), in order."""
        ...


class StoreError(StartError):
    """The store cannot be opened or is not as expected; the message is for the user."""


class StoreUnreachableError(StoreError):
    """No ClickHouse server answered; waiting may be all it takes."""


class ClickHouseStore:
    """Inserts span batches and answers read-only queries for one clickhouse exporter.

    ``memory_limit`` is the memory_limiter's soft limit (0 without one): the
    embedded engine is capped there and its queries get a share of it
    (collector.query.limits).
    """

    def __init__(
        self,
        config: ClickHouseConfig,
        logger: logging.Logger,
        telemetry: Telemetry | None = None,
        exporter_id: str = "",
        memory_limit: int = 0,
    ) -> None:
        self._config = config
        self._logger = logger
        self._metrics = ClickhouseSelfMetrics(telemetry) if telemetry is not None else None
        self._exporter_id = exporter_id
        self._tables = TraceTables(config.traces_table_name)
        self._signal_tables = config.signal_tables
        # Set before start by an exporter that writes logs or metrics here: start then checks their tables too.
        self.serves_logs_or_metrics = False
        self._layout = Layout(
            database=config.database,
            ttl_seconds=config.ttl,
            cluster=config.cluster_name,
            engine=config.table_engine.name,
            engine_params=config.table_engine.params,
        )
        self._insert_client: Client | None = None
        limits = config.query_limits
        self._memory = (
            plan_memory(limits, memory_limit)
            if config.is_embedded
            else MemoryPlan(engine_cap=0, per_query=limits.max_memory_usage or DEFAULT_MAX_MEMORY_USAGE)
        )
        self._reader = StoreReader(
            limits,
            lambda: self._connect(read_only=True),
            config.database,
            self.describe(),
            telemetry,
            exporter_id,
        )
        # Held while connecting and preparing the tables, so concurrent senders prepare once.
        self._prepare_lock = threading.Lock()
        self._last_refusal = ""
        # The exporters (one per signal) that started the store and have not closed it yet: the last one closes it.
        self._users = 0
        self._users_lock = threading.Lock()

    @property
    def tables(self) -> TraceTables:
        return self._tables

    @property
    def signal_tables(self) -> SignalTables:
        return self._signal_tables

    @property
    def has_signal_tables(self) -> bool:
        """Whether the log, metric and evaluation tables are part of the schema this store made or checked: always
        when it creates the schema, else only when it serves logs or metrics (a traces-only set-up with
        create_schema off is not asked to have them)."""
        return self._config.create_schema or self.serves_logs_or_metrics

    @property
    def layout(self) -> Layout:
        return self._layout

    @property
    def reader(self) -> StoreReader:
        return self._reader

    @property
    def memory(self) -> MemoryPlan:
        return self._memory

    @property
    def users(self) -> int:
        """How many exporters (one per signal) have started the store and not closed it yet."""
        return self._users

    def describe(self) -> str:
        if self._config.is_embedded:
            return f"chdb://{self._config.chdb_path()}"
        return redact_url(self._config.endpoint)

    def start(self) -> None:
        """Connect, then create the schema or check that it exists; on failure nothing stays open.

        The exporters of one clickhouse exporter id (one per signal) share the store: each
        starts it and closes it, and only the first start opens it and the last close closes
        it, so a signal's exporter still draining its queue keeps the store open.

        A server that cannot be reached is not a failure here: the collector starts,
        the sending queue holds the spans, and the first send that reaches the server
        prepares it (see ``send``). Anything the server answers with (a wrong password,
        refused DDL, tables missing with create_schema off) still stops the start with
        one line, as does any failure of the embedded engine, which is always reachable.
        """
        with self._users_lock:
            if not self._users:
                self._open()
            self._users += 1

    def _open(self) -> None:
        try:
            self._prepare()
        except StoreUnreachableError as exc:
            self._count_prepare_failure(UNREACHABLE)
            self._logger.warning(
                "%s; starting anyway: spans are queued, and the tables are %s on the first send that reaches it",
                exc,
                "created" if self._config.create_schema else "checked",
            )
            return
        # pyarrow imports pandas on its first array; pay that now, not on the first batch.
        traces_to_table(())

    def send(self, batch: Batch) -> None:
        self.send_table(traces_to_table(batch.items), encoded_batch_token(batch.encodings()))

    def send_table(self, table: pa.Table, token: str) -> None:
        """Insert rows already in the ``otel_traces`` columns (TRACE_COLUMNS), deduplicated by ``token``.

        ``send`` comes through here; benchmarks that make millions of spans as Arrow columns do too.
        """
        self._insert(self._tables.traces, table, token)

    def send_logs(self, batch: EncodedBatch[LogsData]) -> None:
        """Insert a batch's log records into the logs table, deduplicated as ``send`` is."""
        self._insert(self._signal_tables.logs, logs_to_table(batch.items), encoded_batch_token(batch.encodings()))

    def send_metrics(self, batch: EncodedBatch[MetricsData]) -> None:
        """Insert a batch's data points: one insert into each metric type's table the batch has points for.

        Every insert carries the batch's token (each table keeps its own deduplication log), so
        when one fails the whole batch is retried and the tables that took it drop the repeat.
        """
        tables = metrics_to_tables(batch.items)
        if not tables:
            return
        token = encoded_batch_token(batch.encodings())
        for kind, table in tables.items():
            self._insert(self._signal_tables.metric(kind), table, token)

    def _insert(self, table_name: str, table: pa.Table, token: str) -> None:
        client = self._insert_client or self._prepare_for_send()
        try:
            client.insert_arrow(table_name, table, database=self._layout.database, settings=insert_settings(token))
        except ClickHouseError as exc:
            raise classify_insert_failure(exc) from None

    def _prepare_for_send(self) -> Client:
        """Prepare a store that was out of reach at start, or raise RetryableError so the batch waits.

        A server that answers but refuses (the password, a grant, tables a migration
        has not made yet) is logged as an error, with the same line start would have
        stopped on, and counted; the batch is still retried, because the fix is on
        the server's side and should not cost the queued data. The exporter's retry
        budget (retry_on_failure.max_elapsed_time) bounds it: each retry is logged,
        and a batch that outlives the budget is dropped, logged and counted.
        """
        try:
            client = self._prepare()
        except StoreUnreachableError as exc:
            self._count_prepare_failure(UNREACHABLE)
            raise RetryableError(str(exc)) from None
        except StoreError as exc:
            self._count_prepare_failure(REFUSED)
            message = str(exc)
            if message != self._last_refusal:  # once per distinct cause; each retry is logged by the exporter
                self._last_refusal = message
                self._logger.error("%s", message)
            raise RetryableError(message) from None
        self._last_refusal = ""
        self._logger.info("connected to %s; the tables are ready", self.describe())
        return client

    def _prepare(self) -> Client:
        """The insert client of a prepared store, connecting and preparing it first if need be.

        Raises StoreUnreachableError when no server answered, StoreError when one
        refused; either way nothing stays open.
        """
        with self._prepare_lock:
            if self._insert_client is not None:
                return self._insert_client
            insert_client = None
            try:
                insert_client = self._connect()
                try:
                    if self._config.create_schema:
                        for statement in schema_statements(self._layout, self._tables, self._signal_tables):
                            insert_client.command(statement)
                    else:
                        self._check_schema(insert_client)
                except ClickHouseError as exc:
                    message = f"cannot prepare the tables in {self.describe()}: {self._redact(first_line(exc))}"
                    if not self._config.is_embedded and is_unreachable(exc):
                        raise StoreUnreachableError(message) from None
                    raise StoreError(message) from None
                # The read connections open now, while nothing else runs (see _engine_stderr_silenced),
                # and after the schema: they start in the configured database.
                self._reader.open()
            except BaseException:
                if insert_client is not None:
                    insert_client.close()
                raise
            self._insert_client = insert_client
            return insert_client

    def query(self, sql: str) -> QueryResult:
        """Answer a user's statement, checked by the guard; blocks until it has run."""
        return self._reader.submit_raw(sql).result()

    def submit_raw(self, sql: str) -> QueryTicket[QueryResult]:
        """Queue a user's statement (checked by the guard) on the query pool."""
        return self._reader.submit_raw(sql)

    def submit_built(self, sql: str, parameters: Mapping[str, Any] | None = None) -> QueryTicket[QueryResult]:
        """Queue SQL the collector built itself, with ``{name:Type}`` parameters, on the query pool."""
        return self._reader.submit_built(sql, parameters)

    def close(self) -> None:
        """Close the store once every exporter that started it has closed it; safe twice and before start."""
        with self._users_lock:
            self._users = max(0, self._users - 1)
            if self._users:
                return
        self._reader.close()
        if self._insert_client is not None:
            self._insert_client.close()
        self._insert_client = None

    def _connect(self, read_only: bool = False) -> Client:
        """A client on the store; ``read_only`` ones get the locked query profile (collector.query.limits)."""
        config = self._config
        settings = (
            locked_profile(config.query_limits, self._memory.per_query, config.is_embedded)
            if read_only
            else insert_profile(config.is_embedded)
        )
        try:
            if config.is_embedded:
                # The engine's own files follow the process umask (restricted by the CLI); the directory is ours.
                path = private_directory(config.chdb_path())
                # The engine-wide cap only counts on the process's first connection; every one carries it.
                options = {"max_server_memory_usage": self._memory.engine_cap} if self._memory.engine_cap else None
                with _engine_stderr_silenced():
                    client = clickhouse_connect.get_client(
                        dsn=f"chdb://{path}",
                        database=config.database if read_only else None,
                        settings=settings,
                        chdb_options=options,
                    )
                    client.command("SELECT 1 FROM system.one")  # touches the data dir, so a held lock shows now
                return client
            return clickhouse_connect.get_client(
                dsn=config.endpoint,
                username=(config.query_username if read_only else "") or config.username or None,
                password=(config.query_password if read_only and config.query_username else config.password).reveal(),
                # Inserts and DDL name their database, which may not exist before the
                # schema is made; read-only queries start in it, so "FROM otel_traces" works.
                database=config.database if read_only else "",
                connect_timeout=config.timeout,
                # A query may run for max_execution_time; the client waits a little longer for its answer.
                send_receive_timeout=(
                    max(config.timeout, config.query_limits.max_execution_time + QUERY_ANSWER_MARGIN_SECONDS)
                    if read_only
                    else config.timeout
                ),
                compress=False if config.compression == "none" else config.compression,
                verify=not config.tls.insecure_skip_verify,
                ca_cert=config.tls.ca_file or None,
                settings=settings,
                # A session serialises a client's queries on the server and pins it
                # to one replica behind a load balancer; inserts need neither.
                autogenerate_session_id=False,
            )
        except (ClickHouseError, OSError, ValueError) as exc:
            if not config.is_embedded and is_unreachable(exc):
                raise StoreUnreachableError(self._open_failure(exc)) from None
            raise StoreError(self._open_failure(exc)) from None

    def _open_failure(self, exc: BaseException) -> str:
        message = str(exc)
        if any(marker in message for marker in _LOCKED_MARKERS) or "EmbeddedServer" in message:
            return (
                f"the store {self.describe()} is open in another process "
                "(a running collector answers queries on its admin endpoint)"
            )
        return f"cannot open the store {self.describe()}: {self._redact(first_line(exc))}"

    def _redact(self, text: str) -> str:
        """``text`` without the passwords, should a client library ever echo one."""
        for password in (self._config.password.reveal(), self._config.query_password.reveal()):
            text = text.replace(password, "***") if password else text
        return text

    def _count_prepare_failure(self, reason: str) -> None:
        if self._metrics is not None:
            self._metrics.exporter_clickhouse_prepare_failures.add(1, exporter=self._exporter_id, reason=reason)

    def _check_schema(self, client: Client) -> None:
        names = client.query(
            "SELECT name FROM system.tables WHERE database = {db:String}",
            parameters={"db": self._layout.database},
        ).result_rows
        present = {row[0] for row in names}
        # The log and metric tables are not asked of a store the exporter writes only spans to: a traces
        # set-up made before they existed keeps starting with create_schema off.
        signals = self._signal_tables if self.serves_logs_or_metrics else None
        missing = [t for t in expected_tables(self._layout, self._tables, signals) if t not in present]
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
