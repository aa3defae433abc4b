"""The admin endpoint: health that follows the service, metrics, and the /query contract."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from collector.component import ComponentID, ComponentSettings
from collector.config.types import HostPort
from collector.extensions.admin import AdminConfig, AdminExtension
from collector.query.errors import NotReadOnlyError, QueryError
from collector.query.pool import QueryPool, QueryTicket
from collector.query.result import QueryResult

REFUSED = "TRUNCATE TABLE otel_traces"


class FakeStore:
    """A QueryableStore answering from a fixed table on a real query pool; stands in for ClickHouse where SQL
    is not under test (the guard and the engine are, in tests/exporters/clickhouse and tests/collector/query)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.pool = QueryPool(name, max_concurrent=1, max_queued=1)

    def submit_raw(self, sql: str) -> QueryTicket[QueryResult]:
        return self.pool.submit(lambda ticket: self._answer(sql))

    def query(self, sql: str) -> QueryResult:
        return self.submit_raw(sql).result()

    def _answer(self, sql: str) -> QueryResult:
        if sql == REFUSED:
            raise NotReadOnlyError(
                "only SELECT, WITH, EXPLAIN, SHOW TABLES, SHOW DATABASES and SHOW COLUMNS "
                "statements are accepted; got TRUNCATE"
            )
        if "missing" in sql:
            raise QueryError("Code: 60. Unknown table expression identifier 'missing'")
        return QueryResult(["store"], ["String"], [[self.name]])

    def describe(self) -> str:
        return self.name


class Exporter:
    def __init__(self, store: FakeStore) -> None:
        self.sender = store


class Host:
    def __init__(self, stores: dict[str, FakeStore]) -> None:
        self.exporters = {ComponentID.parse(k): Exporter(v) for k, v in stores.items()}
        self.ready = False


def _call(
    host: Host, make_settings: Callable[..., ComponentSettings], requests: Callable[[httpx.AsyncClient], Any]
) -> Any:
    async def scenario() -> Any:
        admin = AdminExtension(make_settings("admin", "extension"), AdminConfig(endpoint=HostPort("127.0.0.1", 0)))
        await admin.start(host)  # type: ignore[arg-type]
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{admin.port}") as client:
                return await requests(client)
        finally:
            await admin.shutdown()

    return asyncio.run(asyncio.wait_for(scenario(), 10))


def test_health_follows_the_service(make_settings: Callable[..., ComponentSettings]) -> None:
    host = Host({})

    async def requests(client: httpx.AsyncClient) -> list[int]:
        before = (await client.get("/health")).status_code
        host.ready = True
        after = (await client.get("/health")).status_code
        return [before, after]

    assert _call(host, make_settings, requests) == [503, 200]


@pytest.mark.parametrize(
    ("body", "status", "answer"),
    [
        (
            {"sql": "SELECT 1", "exporter": "clickhouse/b"},
            200,
            {"columns": ["store"], "types": ["String"], "rows": [["b"]]},
        ),
        (
            {"sql": "SELECT 1"},
            400,
            {"error": "several stores are configured (clickhouse/a, clickhouse/b); name one with exporter"},
        ),
        (
            {"sql": "SELECT 1", "exporter": "nope"},
            404,
            {"error": 'no queryable exporter "nope"; configured: clickhouse/a, clickhouse/b'},
        ),
        (
            {"sql": "SELECT * FROM missing", "exporter": "clickhouse/a"},
            400,
            {"error": "Code: 60. Unknown table expression identifier 'missing'"},
        ),
        (
            {"sql": REFUSED, "exporter": "clickhouse/a"},
            400,
            {
                "error": "only SELECT, WITH, EXPLAIN, SHOW TABLES, SHOW DATABASES and SHOW COLUMNS "
                "statements are accepted; got TRUNCATE"
            },
        ),
        ({"query": "SELECT 1"}, 400, {"error": 'expected a JSON body like {"sql": "SELECT ..."}'}),
    ],
)
def test_query_contract(
    body: dict[str, str], status: int, answer: dict[str, Any], make_settings: Callable[..., ComponentSettings]
) -> None:
    host = Host({"clickhouse/a": FakeStore("a"), "clickhouse/b": FakeStore("b")})

    async def requests(client: httpx.AsyncClient) -> tuple[int, Any]:
        response = await client.post("/query", json=body)
        return response.status_code, response.json()

    assert _call(host, make_settings, requests) == (status, answer)


def test_a_single_store_needs_no_name_and_metrics_are_prometheus_text(
    make_settings: Callable[..., ComponentSettings],
) -> None:
    host = Host({"clickhouse": FakeStore("only")})

    async def requests(client: httpx.AsyncClient) -> tuple[Any, str]:
        answer = (await client.post("/query", json={"sql": "SELECT 1"})).json()
        metrics = await client.get("/metrics")
        return answer["rows"], metrics.headers["content-type"]

    assert _call(host, make_settings, requests) == ([["only"]], "text/plain; version=0.0.4; charset=utf-8")
