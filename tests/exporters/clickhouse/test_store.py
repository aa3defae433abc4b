"""ClickHouseStore on the real chDB engine: opening, schema checks, read-only queries, failures as StoreError."""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import clickhouse_connect
import pytest

from collector.query.errors import NotReadOnlyError, QueryError
from collector.queue import Batch
from exporters.clickhouse.config import ClickHouseConfig
from exporters.clickhouse.store import ClickHouseStore, StoreError
from tests.conftest import make_traces, process_umask

LOGGER = logging.getLogger("test.store")


@pytest.fixture
def open_store(chdb_path: Path) -> Iterator[ClickHouseStore]:
    store = ClickHouseStore(ClickHouseConfig(endpoint=f"chdb://{chdb_path}"), LOGGER)
    store.start()
    try:
        yield store
    finally:
        store.close()


def test_a_sent_batch_is_queryable(open_store: ClickHouseStore) -> None:
    traces = make_traces(5)
    open_store.send(Batch([traces], 5))
    rows = open_store.query("SELECT count(), uniqExact(SpanId) FROM otel_traces").rows
    assert rows == [[5, 5]]


def test_queries_run_with_readonly_enforced_by_the_engine(open_store: ClickHouseStore) -> None:
    # SQL the collector builds itself skips the guard; changing a setting is then refused by readonly=1 alone.
    with pytest.raises(QueryError, match="readonly"):
        open_store.submit_built("SELECT 1 SETTINGS max_execution_time = 3600").result()


def test_a_query_reaching_the_host_is_refused_before_the_engine(open_store: ClickHouseStore) -> None:
    with pytest.raises(NotReadOnlyError):
        open_store.query("SELECT file('/etc/hostname')")


def test_the_data_directory_is_for_its_owner_only(tmp_path: Path) -> None:
    fresh, old = tmp_path / "data" / "clickhouse", tmp_path / "old"
    old.mkdir(mode=0o755)
    os.chmod(old, 0o755)  # as an older version left it
    with process_umask(0o022):
        for path in (fresh, old):
            store = ClickHouseStore(ClickHouseConfig(endpoint=f"chdb://{path}"), LOGGER)
            store.start()
            store.close()
    assert [stat.S_IMODE(p.stat().st_mode) for p in (fresh, fresh.parent, old)] == [0o700] * 3


def test_missing_tables_with_create_schema_off_is_a_store_error(chdb_path: Path) -> None:
    store = ClickHouseStore(ClickHouseConfig(endpoint=f"chdb://{chdb_path}", create_schema=False), LOGGER)
    with pytest.raises(StoreError, match="create_schema is off and these tables are missing: default.otel_traces"):
        store.start()
    # Nothing stays open: the same directory opens again at once.
    reopened = ClickHouseStore(ClickHouseConfig(endpoint=f"chdb://{chdb_path}"), LOGGER)
    reopened.start()
    reopened.close()


def test_a_schema_the_engine_refuses_is_a_store_error_not_a_traceback(chdb_path: Path) -> None:
    # A table of the expected name but other columns: the trace-ID lookup view cannot read it.
    chdb_path.mkdir(parents=True)
    client = clickhouse_connect.get_client(dsn=f"chdb://{chdb_path}")
    client.command("CREATE TABLE default.otel_traces (x UInt8) ENGINE = MergeTree ORDER BY x")
    client.close()

    store = ClickHouseStore(ClickHouseConfig(endpoint=f"chdb://{chdb_path}"), LOGGER)
    with pytest.raises(StoreError, match=r"^cannot prepare the tables in chdb://"):
        store.start()
    # Both clients were closed: the directory opens again in this process.
    client = clickhouse_connect.get_client(dsn=f"chdb://{chdb_path}")
    assert client.query("SELECT count() FROM default.otel_traces").result_rows == [(0,)]
    client.close()
