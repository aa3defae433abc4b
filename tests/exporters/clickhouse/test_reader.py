"""The store's read side on the real chDB engine: the locked profile, the limits biting, cancellation, built SQL.

Servers are covered against the HTTP stand-in: the profile and the query user
travel with every read request.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from collector.config.decode import decode
from collector.config.types import Duration
from collector.query.errors import NotReadOnlyError, QueryCancelledError, QueryError, QueryTimeoutError
from collector.query.generated_metrics import QUERIES_CANCELLED, QUERIES_TIMED_OUT
from collector.query.limits import QueryLimits
from collector.telemetry import Telemetry
from exporters.clickhouse.config import ClickHouseConfig
from exporters.clickhouse.reader import MARKER_PREFIX
from exporters.clickhouse.store import ClickHouseStore
from tests.exporters.clickhouse.http_fixture import FakeClickHouse

LOGGER = logging.getLogger("test.reader")
WAIT = 30.0
MIB = 1024 * 1024
# Allowed, and as slow as the machine: a scan of a trillion numbers, hashing each.
SLOW = "SELECT count() FROM numbers(1000000000000) WHERE sipHash64(number) = 1"


def _store(path: Path, telemetry: Telemetry | None = None, memory_limit: int = 0, **limits: object) -> ClickHouseStore:
    config = ClickHouseConfig(endpoint=f"chdb://{path}", query_limits=QueryLimits(**limits))  # type: ignore[arg-type]
    return ClickHouseStore(config, LOGGER, telemetry, "clickhouse", memory_limit)


@pytest.fixture
def telemetry() -> Telemetry:
    return Telemetry()


@pytest.fixture
def store(chdb_path: Path, telemetry: Telemetry) -> Iterator[ClickHouseStore]:
    store = _store(
        chdb_path,
        telemetry,
        max_execution_time=Duration(60.0),
        max_result_rows=1000,
        max_memory_usage=64 * MIB,
        max_concurrent_queries=2,
    )
    store.start()
    try:
        yield store
    finally:
        store.close()


def test_every_read_connection_runs_with_the_locked_profile(store: ClickHouseStore) -> None:
    names = [
        "readonly", "max_execution_time", "timeout_overflow_mode", "max_memory_usage", "max_result_rows",
        "result_overflow_mode", "max_threads", "allow_introspection_functions", "allow_python_table_function",
        "allow_hyperscan", "allow_ddl", "priority", "os_thread_priority",
    ]  # fmt: skip
    sql = "SELECT " + ", ".join(f"toString(getSetting('{name}'))" for name in names)
    for _ in range(4):  # more queries than connections, so every connection answers at least once
        values = store.submit_built(sql).result(WAIT).rows[0]
        assert dict(zip(names, values, strict=True)) == {
            "readonly": "1",
            "max_execution_time": "60",
            "timeout_overflow_mode": "throw",
            "max_memory_usage": str(64 * MIB),
            "max_result_rows": "1000",
            "result_overflow_mode": "throw",
            "max_threads": "1",
            "allow_introspection_functions": "false",
            "allow_python_table_function": "false",
            "allow_hyperscan": "false",
            "allow_ddl": "false",
            "priority": "10",
            "os_thread_priority": "19",
        }


def test_inserts_outrank_queries(store: ClickHouseStore) -> None:
    insert_client = store._prepare()
    assert insert_client.command("SELECT getSetting('priority')") == 1


def test_the_engine_refuses_what_the_profile_locks(store: ClickHouseStore) -> None:
    # Built SQL skips the guard: these refusals come from the engine alone.
    with pytest.raises(QueryError, match="Introspection functions are disabled"):
        store.submit_built("SELECT addressToSymbol(toUInt64(0))").result(WAIT)
    with pytest.raises(QueryError, match="readonly"):
        store.submit_built("SELECT 1 SETTINGS readonly = 0").result(WAIT)
    with pytest.raises(QueryError, match="readonly"):
        store.submit_built("SELECT * FROM file('/etc/hostname', 'LineAsString')").result(WAIT)
    with pytest.raises(QueryError, match="readonly"):
        store.submit_built("CREATE TABLE default.t (a Int8) ENGINE = Memory").result(WAIT)


def test_a_slow_query_stops_at_max_execution_time(chdb_path: Path, telemetry: Telemetry) -> None:
    store = _store(chdb_path, telemetry, max_execution_time=Duration(1.0))
    store.start()
    try:
        with pytest.raises(QueryTimeoutError) as stopped:
            store.query(SLOW)
        assert str(stopped.value) == "the query ran longer than max_execution_time (1s) and was stopped"
        assert telemetry.value(QUERIES_TIMED_OUT.name, exporter="clickhouse") == 1
    finally:
        store.close()


def test_results_and_memory_are_bounded(store: ClickHouseStore) -> None:
    with pytest.raises(QueryError) as too_big:
        store.query("SELECT number FROM numbers(5000)")
    assert str(too_big.value) == (
        f"the result is larger than max_result_rows (1000) or max_result_bytes ({64 * MIB}); "
        "narrow the query or add a LIMIT"
    )
    with pytest.raises(QueryError, match="MEMORY_LIMIT_EXCEEDED"):
        store.query("SELECT length(groupArray(number)) FROM numbers(100000000)")
    assert store.query("SELECT number FROM numbers(3)").rows == [[0], [1], [2]]


def test_a_cancelled_query_is_killed_in_the_engine_and_frees_its_slot(
    store: ClickHouseStore, telemetry: Telemetry
) -> None:
    ticket = store.submit_raw(SLOW)
    pool = store.reader.pool
    assert pool.wait_until(lambda p: p.running == 1, WAIT)
    ticket.cancel()
    with pytest.raises(QueryCancelledError, match="the query was cancelled"):
        ticket.result(WAIT)
    assert pool.wait_until(lambda p: p.running == 0, WAIT)
    assert telemetry.value(QUERIES_CANCELLED.name, exporter="clickhouse") == 1
    left = store.submit_built(
        "SELECT count() FROM system.processes WHERE startsWith(query, {prefix:String}) AND query LIKE '%sipHash64%'",
        {"prefix": MARKER_PREFIX},
    ).result(WAIT)
    assert left.rows == [[0]]


def test_built_sql_binds_parameters_and_skips_the_guard_only(store: ClickHouseStore) -> None:
    rows = store.submit_built(
        "SELECT {name:String} AS n, count() FROM system.one WHERE dummy = {zero:UInt8}", {"name": "x", "zero": 0}
    ).result(WAIT)
    assert rows.rows == [["x", 1]] and rows.columns == ["n", "count()"]
    with pytest.raises(NotReadOnlyError):  # the same statement as raw SQL: parameters are the guard's to refuse
        store.query("SELECT {name:String}")


def test_the_engine_memory_cap_follows_the_memory_limiter(chdb_path: Path) -> None:
    cap = 3 * 1024 * MIB
    store = _store(chdb_path, memory_limit=cap)
    store.start()
    try:
        answer = store.submit_built(
            "SELECT value FROM system.server_settings WHERE name = 'max_server_memory_usage'"
        ).result(WAIT)
        assert answer.rows == [[str(cap)]]
        # Queries share half the cap: 1.5 GiB over the two default query threads.
        assert store.memory.engine_cap == cap and store.memory.per_query == 768 * MIB
    finally:
        store.close()


def test_a_store_that_is_never_queried_starts_no_query_thread(chdb_path: Path) -> None:
    store = _store(chdb_path)
    store.start()
    store.close()
    store.start()  # started again after close: new connections, a new pool
    try:
        assert store.query("SELECT 1").rows == [[1]]
    finally:
        store.close()


def test_a_server_gets_the_profile_and_the_query_user_with_every_read(chdb_path: Path) -> None:
    with FakeClickHouse(
        chdb_path, username="collector", password="write-secret", readers={"reader": "read-secret"}
    ) as server:
        raw = {
            "endpoint": server.url,
            "username": "collector",
            "password": "write-secret",
            "query_username": "reader",
            "query_password": "read-secret",
            "query_limits": {"max_execution_time": "20s", "max_memory_usage": 64 * MIB},
        }
        store = ClickHouseStore(decode(ClickHouseConfig, raw, "exporters.clickhouse"), LOGGER)
        store.start()
        try:
            assert store.query("SELECT count() FROM otel_traces").rows == [[0]]
        finally:
            store.close()
    reads = [(params, headers) for _, _, params, headers in server.requests if params.get("readonly") == "2"]
    assert reads, "no read request reached the server"
    for params, headers in reads:
        assert headers.get("X-ClickHouse-User") == "reader" or "cmVhZGVy" in headers.get("Authorization", "")
        assert params["max_execution_time"] == "20" and params["max_memory_usage"] == str(64 * MIB)
        assert params["allow_introspection_functions"] == "0" and params["allow_ddl"] == "0"
        assert params["cancel_http_readonly_queries_on_client_close"] == "1"
    writes = [headers for _, _, params, headers in server.requests if "readonly" not in params]
    assert writes and all("reader" not in str(headers) for headers in writes)
