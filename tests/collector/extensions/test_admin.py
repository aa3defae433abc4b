"""The admin endpoint: health that follows the service, metrics, the /query contract, and who may call it."""

from __future__ import annotations

import asyncio
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from collector.component import ComponentID, ComponentSettings
from collector.config.types import HostPort
from collector.errors import StartError
from collector.extensions.access import read_local_token
from collector.extensions.admin import AdminConfig, AdminExtension
from collector.keys import KeyStore
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
        self.problems = ["the collector is starting or stopping"]

    async def health(self) -> list[str]:
        return self.problems


def _call(
    host: Host,
    make_settings: Callable[..., ComponentSettings],
    requests: Callable[[httpx.AsyncClient], Any],
    config: AdminConfig | None = None,
    headers: dict[str, str] | None = None,
) -> Any:
    """Run ``requests`` against an admin endpoint on a free port; by default as the local admin token."""

    async def scenario() -> Any:
        admin = AdminExtension(
            make_settings("admin", "extension"), config or AdminConfig(endpoint=HostPort("127.0.0.1", 0))
        )
        await admin.start(host)  # type: ignore[arg-type]
        try:
            sent = headers
            if sent is None and admin.local_token_path is not None:
                sent = {"Authorization": f"Bearer {read_local_token(admin.local_token_path)}"}
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{admin.port}", headers=sent) as client:
                return await requests(client)
        finally:
            await admin.shutdown()

    return asyncio.run(asyncio.wait_for(scenario(), 10))


def test_health_follows_the_service(make_settings: Callable[..., ComponentSettings]) -> None:
    host = Host({})

    async def requests(client: httpx.AsyncClient) -> list[Any]:
        before = await client.get("/health")
        host.problems = []
        after = await client.get("/health")
        return [before.status_code, before.json(), after.status_code, after.json()]

    assert _call(host, make_settings, requests) == [
        503,
        {"status": "Server not available", "problems": ["the collector is starting or stopping"]},
        200,
        {"status": "Server available"},
    ]


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


@pytest.fixture
def keys(tmp_path: Path) -> dict[str, str]:
    """One key per role (and a viewer bound to a tenant) in tmp_path/api-keys.json, by name."""
    store = KeyStore(tmp_path / "api-keys.json")
    made = {
        "admin": store.create(role="admin"),
        "operator": store.create(role="operator"),
        "viewer": store.create(role="viewer"),
        "tenant_viewer": store.create(tenant="team-a", role="viewer"),
        "proxy": store.create(tenant="team-a"),
    }
    return {name: key for name, (_, key) in made.items()}


def _keyed_config(tmp_path: Path, **overrides: Any) -> AdminConfig:
    return AdminConfig(
        endpoint=HostPort("127.0.0.1", 0), keys_file=str(tmp_path / "api-keys.json"), local_token=False, **overrides
    )


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.mark.parametrize(
    ("who", "health", "metrics", "query"),
    [
        (None, 200, 401, 401),
        ("admin", 200, 200, 200),
        ("operator", 200, 200, 403),
        ("viewer", 200, 200, 403),
        ("tenant_viewer", 200, 403, 403),
        ("proxy", 200, 401, 401),  # a proxy key opens the proxy, not the collector's own endpoints
        ("not-a-key", 200, 401, 401),
    ],
)
def test_every_route_but_health_needs_a_key_with_the_right_role(
    who: str | None,
    health: int,
    metrics: int,
    query: int,
    keys: dict[str, str],
    tmp_path: Path,
    make_settings: Callable[..., ComponentSettings],
) -> None:
    host = Host({"clickhouse": FakeStore("only")})
    host.problems = []
    headers = {} if who is None else _bearer(keys.get(who, who))

    async def requests(client: httpx.AsyncClient) -> list[int]:
        answers = [
            await client.get("/health"),
            await client.get("/metrics"),
            await client.post("/query", json={"sql": "SELECT 1"}),
        ]
        for answer in answers:
            if answer.status_code == 401:
                assert answer.headers["www-authenticate"] == "Bearer"
            if answer.status_code >= 400:
                assert set(answer.json()) == {"error"}
        return [answer.status_code for answer in answers]

    assert _call(host, make_settings, requests, _keyed_config(tmp_path), headers) == [health, metrics, query]


@pytest.mark.parametrize(
    ("headers", "content", "status", "reason"),
    [
        # A form or text/plain POST needs no CORS preflight: the shape of a CSRF request.
        ({"Content-Type": "text/plain"}, b'{"sql": "SELECT 1"}', 415, "content_type"),
        ({"Content-Type": "application/x-www-form-urlencoded"}, b"sql=SELECT+1", 415, "content_type"),
        ({}, b'{"sql": "SELECT 1"}', 415, "content_type"),
        ({"Content-Type": "application/json", "Origin": "https://evil.example"}, b'{"sql": "SELECT 1"}', 403, "origin"),
        ({"Content-Type": "application/json", "Origin": "null"}, b'{"sql": "SELECT 1"}', 403, "origin"),
        # DNS rebinding: the attacker's own name, now pointing at 127.0.0.1.
        ({"Content-Type": "application/json", "Host": "rebind.evil.example"}, b'{"sql": "SELECT 1"}', 403, "host"),
        ({"Content-Type": "application/json", "Host": "rebind.evil.example:13133"}, b"{}", 403, "host"),
        ({"Content-Type": "application/json", "Host": "localhost.evil.example"}, b"{}", 403, "host"),
        ({"Content-Type": "application/json", "Host": "[::1"}, b"{}", 403, "host"),
    ],
)
def test_requests_shaped_like_another_pages_are_refused_even_with_a_key(
    headers: dict[str, str],
    content: bytes,
    status: int,
    reason: str,
    keys: dict[str, str],
    tmp_path: Path,
    make_settings: Callable[..., ComponentSettings],
) -> None:
    host = Host({"clickhouse": FakeStore("only")})
    settings = make_settings("admin", "extension")

    async def scenario() -> tuple[int, float]:
        admin = AdminExtension(settings, _keyed_config(tmp_path))
        await admin.start(host)  # type: ignore[arg-type]
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{admin.port}") as client:
                answer = await client.post("/query", content=content, headers={**_bearer(keys["admin"]), **headers})
        finally:
            await admin.shutdown()
        refused = settings.telemetry.value("genai_collector_http_access_refused", listener="admin", reason=reason)
        return answer.status_code, refused

    assert asyncio.run(asyncio.wait_for(scenario(), 10)) == (status, 1)


@pytest.mark.parametrize(
    "headers",
    [
        {"Host": "127.0.0.1"},
        {"Host": "localhost:13133"},
        {"Host": "[::1]:13133"},
        {"Host": "collector.internal:13133"},  # allowed_hosts
        {"Host": "Collector.Internal."},
        {"Origin": "https://grafana.example"},  # allowed_origins
    ],
)
def test_names_and_origins_of_the_endpoint_itself_or_configured_are_accepted(
    headers: dict[str, str], keys: dict[str, str], tmp_path: Path, make_settings: Callable[..., ComponentSettings]
) -> None:
    host = Host({"clickhouse": FakeStore("only")})
    config = _keyed_config(
        tmp_path, allowed_hosts=("collector.internal",), allowed_origins=("https://grafana.example",)
    )

    async def requests(client: httpx.AsyncClient) -> int:
        return (await client.post("/query", json={"sql": "SELECT 1"}, headers=headers)).status_code

    assert _call(host, make_settings, requests, config, _bearer(keys["admin"])) == 200


def test_the_same_origin_is_accepted(
    keys: dict[str, str], tmp_path: Path, make_settings: Callable[..., ComponentSettings]
) -> None:
    host = Host({"clickhouse": FakeStore("only")})

    async def requests(client: httpx.AsyncClient) -> int:
        own = str(client.base_url).rstrip("/")
        return (await client.post("/query", json={"sql": "SELECT 1"}, headers={"Origin": own})).status_code

    assert _call(host, make_settings, requests, _keyed_config(tmp_path), _bearer(keys["admin"])) == 200


def test_the_local_token_is_private_lives_as_long_as_the_endpoint_and_is_admin(
    tmp_path: Path, make_settings: Callable[..., ComponentSettings]
) -> None:
    token_file = tmp_path / "run" / "admin-token"
    config = AdminConfig(endpoint=HostPort("127.0.0.1", 0), token_file=str(token_file))
    host = Host({"clickhouse": FakeStore("only")})
    seen: list[str | None] = []

    async def requests(client: httpx.AsyncClient) -> int:
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        assert stat.S_IMODE(token_file.parent.stat().st_mode) == 0o700
        seen.append(read_local_token(token_file))
        return (await client.post("/query", json={"sql": "SELECT 1"})).status_code

    assert _call(host, make_settings, requests, config) == 200
    assert not token_file.exists()
    # A second start writes a new token; the first one no longer opens anything.
    assert _call(host, make_settings, requests, config) == 200
    assert seen[0] != seen[1]

    async def stale(client: httpx.AsyncClient) -> int:
        return (await client.post("/query", json={"sql": "SELECT 1"})).status_code

    assert _call(host, make_settings, stale, config, {"Authorization": f"Bearer {seen[0]}"}) == 401


def test_a_wider_address_needs_a_key_first(tmp_path: Path, make_settings: Callable[..., ComponentSettings]) -> None:
    config = AdminConfig(endpoint=HostPort("0.0.0.0", 0), keys_file=str(tmp_path / "api-keys.json"))
    admin = AdminExtension(make_settings("admin", "extension"), config)
    with pytest.raises(StartError) as refused:
        asyncio.run(admin.start(Host({})))  # type: ignore[arg-type]
    assert str(refused.value) == (
        f"extensions.admin.endpoint: 0.0.0.0:0 is reachable from other machines, and no API key exists in "
        f"{tmp_path / 'api-keys.json'}; create one first (genai-collector keys create --role admin) "
        "or listen on 127.0.0.1"
    )
    assert not (tmp_path / "data").exists()  # nothing was written: no token, no socket

    KeyStore(tmp_path / "api-keys.json").create(role="viewer")

    async def started() -> int:
        await admin.start(Host({}))  # type: ignore[arg-type]
        try:
            return admin.port
        finally:
            await admin.shutdown()

    assert asyncio.run(asyncio.wait_for(started(), 10)) > 0
