"""The query builder: no SELECT without a window, a scope and (outermost) a row limit; values only as parameters."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from collector.extensions.api.query.sql import Scope, Select, TimeRange, TraceWindow
from collector.extensions.api.query.tables import StoreTables
from collector.queue import Batch
from exporters.clickhouse.config import ClickHouseConfig
from exporters.clickhouse.layout import Layout
from exporters.clickhouse.schema import TraceTables
from exporters.clickhouse.store import ClickHouseStore
from tests.conftest import make_traces

TABLES = StoreTables.named(Layout("default"), TraceTables("otel_traces"))
HOSTILE = "x' OR 1=1 --"


def test_a_tenant_scope_is_a_predicate_on_every_table_and_the_tenant_a_parameter() -> None:
    for table in (TABLES.spans, TABLES.calls, TABLES.findings, TABLES.calls_hourly):
        query = Select(table, Scope(HOSTILE), TimeRange(0, 10), limit=5).build(["count()"])
        assert f"{table.tenant} = {{p2:String}}" in query.sql
        assert HOSTILE not in query.sql and query.parameters["p2"] == HOSTILE
    everyone = Select(TABLES.calls, Scope.everything(), TimeRange(0, 10), limit=5).build(["count()"])
    assert "Tenant" not in everyone.sql


def test_subqueries_share_the_scope_and_parameters_and_may_go_without_a_limit() -> None:
    select = Select(TABLES.calls, Scope("acme"), TimeRange(0, 10), limit=5)
    inner = select.subquery(TABLES.spans)
    inner.where(f"SpanName = {inner.bind('chat', 'String')}")
    select.where(f"(TraceId, SpanId) IN ({inner.sql(['TraceId', 'SpanId'])})")
    query = select.build(["count()"])
    assert query.sql.count("LIMIT") == 1 and query.sql.endswith("LIMIT 5")
    assert query.parameters == {"p0": 0, "p1": 10, "p2": "acme", "p3": 0, "p4": 10, "p5": "acme", "p6": "chat"}


def test_the_outermost_query_needs_a_limit() -> None:
    with pytest.raises(ValueError, match="the outermost query needs a row limit"):
        Select(TABLES.spans, Scope.everything(), TimeRange(0, 10), limit=None).build(["count()"])
    with pytest.raises(ValueError, match="a row limit must be at least 1"):
        Select(TABLES.spans, Scope.everything(), TimeRange(0, 10), limit=0)


def test_an_hourly_table_gets_its_window_in_whole_seconds_rounded_outwards() -> None:
    query = Select(TABLES.calls_hourly, Scope.everything(), TimeRange(1_500_000_000, 3_500_000_001), limit=1)
    assert query.build(["1"]).parameters == {"p0": 1, "p1": 4}


@pytest.fixture
def store(chdb_path: Path) -> Iterator[ClickHouseStore]:
    store = ClickHouseStore(ClickHouseConfig(endpoint=f"chdb://{chdb_path}"), logging.getLogger("test.sql"))
    store.start()
    try:
        yield store
    finally:
        store.close()


def test_built_queries_run_on_the_engine_with_hostile_values_as_plain_values(store: ClickHouseStore) -> None:
    traces = make_traces(2)
    store.send(Batch([traces], 2))
    trace_id = traces.resource_spans[0].scope_spans[0].spans[0].trace_id.hex()
    tables = StoreTables.of(store)
    select = Select(tables.spans, Scope.everything(), TraceWindow((trace_id,), tables.trace_lookup), limit=10)
    select.where(f"TraceId = {select.bind(trace_id, 'String')}")
    query = select.build(["SpanName"])
    assert store.submit_built(query.sql, query.parameters).result().rows == [["chat gpt-4o"]]
    hostile = Select(tables.spans, Scope(HOSTILE), TimeRange(0, 2**62), limit=10).build(["count()"])
    assert store.submit_built(hostile.sql, hostile.parameters).result().rows == [[0]]
    unknown = Select(tables.spans, Scope.everything(), TraceWindow(("0" * 32,), tables.trace_lookup), limit=10)
    missing = unknown.build(["count()"])
    assert store.submit_built(missing.sql, missing.parameters).result().rows == [[0]]
