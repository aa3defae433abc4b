"""The server path end to end over HTTP, against the chDB-backed stand-in for a ClickHouse server."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from collector.config.decode import decode
from collector.queue import Batch
from exporters.clickhouse.config import ClickHouseConfig
from exporters.clickhouse.store import ClickHouseStore, StoreError
from tests.exporters.clickhouse.genai_spans import an_hour_ago, genai_traces
from tests.exporters.clickhouse.http_fixture import FakeClickHouse

PASSWORD = "hunter2-secret"
LOGGER = logging.getLogger("test.http")


@pytest.fixture
def server(chdb_path: Path) -> Iterator[FakeClickHouse]:
    with FakeClickHouse(chdb_path, username="collector", password=PASSWORD) as fake:
        yield fake


def _store(server: FakeClickHouse, **settings: object) -> ClickHouseStore:
    raw = {"endpoint": server.url, "username": "collector", "password": PASSWORD, "database": "otel", **settings}
    return ClickHouseStore(decode(ClickHouseConfig, raw, "exporters.clickhouse"), LOGGER)


@pytest.mark.parametrize("compression", ["lz4", "zstd", "gzip", "none"])
def test_spans_in_rows_out_over_http(server: FakeClickHouse, compression: str) -> None:
    store = _store(server, compression=compression)
    store.start()
    try:
        store.send(Batch([genai_traces(an_hour_ago())], 6))
        # The query client starts in the configured database: unqualified names work.
        assert store.query("SELECT count() FROM otel_traces").rows == [[6]]
        assert store.query("SELECT count(), round(sum(Cost), 6) FROM genai_calls").rows == [[5, 0.56]]
        assert store.query("SELECT count() FROM genai_findings").rows == [[2]]
    finally:
        store.close()
    inserts = [params for _, _, params, _ in server.requests if params.get("query", "").startswith("INSERT")]
    assert len(inserts) == 1 and inserts[0]["query"].endswith("FORMAT Arrow")


def test_queries_are_read_only_on_the_server(server: FakeClickHouse) -> None:
    store = _store(server)
    store.start()
    try:
        readonly = [p.get("readonly") for _, _, p, _ in server.requests]
        store.query("SELECT 1")
        assert server.requests[-1][2]["readonly"] == "2"
        assert "2" not in readonly  # schema creation ran on the writing client
    finally:
        store.close()


def test_a_wrong_password_is_one_line_without_the_password(chdb_path: Path) -> None:
    with FakeClickHouse(chdb_path, username="collector", password="the-right-one") as server:
        store = _store(server)
        with pytest.raises(StoreError) as error:
            store.start()
        store.close()
    message = str(error.value)
    assert "\n" not in message and PASSWORD not in message
    assert message.startswith(f"cannot open the store {server.url}: ")
    assert "516" in message or "Authentication failed" in message
    # The request carried the password; only the answer names the user.
    assert any(h.get("Authorization", "").startswith("Basic ") for _, _, _, h in server.requests)


def test_create_schema_off_names_the_missing_tables_on_the_server(server: FakeClickHouse) -> None:
    store = _store(server, create_schema=False)
    with pytest.raises(StoreError, match=r"^create_schema is off and these tables are missing: otel\.otel_traces, "):
        store.start()
    store.close()
    # Once the schema exists, the same check passes.
    _store(server).start()
    checked = _store(server, create_schema=False)
    checked.start()
    checked.close()
