"""Who may call the api extension and from where: keys and roles, open reads on loopback with no key, Host and
Origin checks, CORS only when configured, WebSocket handshakes under the same rules, and where it may listen."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets.sync.client
from websockets.exceptions import InvalidStatus

from collector.component import ComponentID, ComponentSettings
from collector.config.decode import decode
from collector.config.problems import ConfigError
from collector.config.types import HostPort
from collector.errors import StartError
from collector.extensions.api.config import ApiConfig
from collector.extensions.api.extension import ApiExtension
from collector.telemetry import Telemetry
from tests.collector.extensions.api.world import WAIT_SECONDS, World

SERVICES = "/api/v1/services"


@pytest.mark.parametrize(
    ("who", "status", "code"),
    [
        (None, 401, "unauthorized"),
        ("not-a-key", 401, "unauthorized"),
        ("proxy", 401, "unauthorized"),  # a proxy key opens the proxy, not the collector's own endpoints
        ("viewer", 200, None),
        ("operator", 200, None),
        ("admin", 200, None),
        ("acme", 200, None),
    ],
)
def test_reads_need_a_key_of_any_api_role_once_keys_exist(
    world: World, who: str | None, status: int, code: str | None
) -> None:
    headers = {"Authorization": f"Bearer {world.keys.get(who, who)}"} if who else {}
    answer = httpx.get(world.base_url + SERVICES, headers=headers, timeout=WAIT_SECONDS)
    assert answer.status_code == status
    if status == 401:
        assert answer.headers["www-authenticate"] == "Bearer"
        assert answer.json()["code"] == code


@pytest.mark.parametrize("path", ["/health", "/api/v1/openapi.json"])
def test_health_and_the_openapi_document_are_open(world: World, path: str) -> None:
    assert world.get(path, key=None).status_code == 200


def test_health_on_this_port_is_the_collectors(world: World) -> None:
    assert world.get("/health", key=None).json() == {"status": "Server available"}


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [
        ({"Host": "rebind.evil.example"}, 403, "host"),  # DNS rebinding: the attacker's name, now 127.0.0.1
        ({"Host": "localhost.evil.example:16686"}, 403, "host"),
        ({"Origin": "https://evil.example"}, 403, "origin"),
        ({"Origin": "null"}, 403, "origin"),
        ({"Host": "localhost"}, 200, None),
        ({"Host": "[::1]:16686"}, 200, None),
    ],
)
def test_requests_from_other_names_and_pages_are_refused_even_with_a_key(
    world: World, headers: dict[str, str], status: int, code: str | None
) -> None:
    answer = httpx.get(
        world.base_url + SERVICES, headers={"Authorization": f"Bearer {world.keys['viewer']}", **headers}
    )
    assert answer.status_code == status
    if code is not None:
        assert answer.json()["code"] == code


def test_the_api_changes_nothing_and_says_so(world: World) -> None:
    form = httpx.post(world.base_url + SERVICES, content=b"a=b", headers={"Content-Type": "text/plain"})
    assert (form.status_code, form.json()["code"]) == (415, "content_type")
    answer = httpx.post(world.base_url + SERVICES, json={}, headers={"Authorization": f"Bearer {world.keys['admin']}"})
    assert (answer.status_code, answer.json()["code"]) == (405, "method_not_allowed")
    unknown = world.get("/api/v2/nothing")
    assert (unknown.status_code, unknown.json()) == (404, {"error": "no such endpoint", "code": "not_found"})


def test_no_cors_unless_configured(world: World) -> None:
    own = world.base_url
    answer = httpx.get(
        world.base_url + SERVICES, headers={"Authorization": f"Bearer {world.keys['viewer']}", "Origin": own}
    )
    assert answer.status_code == 200
    assert "access-control-allow-origin" not in answer.headers
    preflight = httpx.options(
        world.base_url + SERVICES, headers={"Origin": own, "Access-Control-Request-Method": "GET"}
    )
    assert "access-control-allow-origin" not in preflight.headers


def _socket_status(url: str, headers: dict[str, str]) -> tuple[int, bytes]:
    try:
        with websockets.sync.client.connect(url, additional_headers=headers, open_timeout=WAIT_SECONDS):
            return 101, b""
    except InvalidStatus as refused:
        return refused.response.status_code, bytes(refused.response.body or b"")


@pytest.mark.parametrize(
    ("who", "extra", "status", "code"),
    [
        (None, {}, 401, b'"code":"unauthorized"'),
        ("viewer", {"Origin": "https://evil.example"}, 403, b'"code":"origin"'),
        ("viewer", {}, 101, b""),
    ],
)
def test_websocket_handshakes_pass_the_same_checks(
    world: World, who: str | None, extra: dict[str, str], status: int, code: bytes
) -> None:
    headers = {**({"Authorization": f"Bearer {world.keys[who]}"} if who else {}), **extra}
    got_status, body = _socket_status(world.base_url.replace("http://", "ws://") + "/api/v1/ws", headers)
    assert got_status == status
    assert code in body


class _Host:
    def __init__(self, exporters: dict[ComponentID, Any]) -> None:
        self.exporters = exporters


def _start(config: ApiConfig, host: _Host) -> None:
    settings = ComponentSettings(ComponentID("api"), "extension", logging.getLogger("test.api"), Telemetry())
    extension = ApiExtension(settings, config)

    async def start_and_stop() -> None:
        await extension.start(host)  # type: ignore[arg-type]
        await extension.shutdown()

    asyncio.run(asyncio.wait_for(start_and_stop(), WAIT_SECONDS))


def test_a_wider_address_needs_a_key_first(tmp_path: Path) -> None:
    config = ApiConfig(endpoint=HostPort("0.0.0.0", 0), keys_file=str(tmp_path / "api-keys.json"))
    with pytest.raises(StartError) as refused:
        _start(config, _Host({}))
    assert str(refused.value) == (
        f"extensions.api.endpoint: 0.0.0.0:0 is reachable from other machines, and no API key exists in "
        f"{tmp_path / 'api-keys.json'}; create one first (genai-collector keys create --role admin) "
        "or listen on 127.0.0.1"
    )


def test_without_a_store_the_api_does_not_start(tmp_path: Path) -> None:
    config = ApiConfig(endpoint=HostPort("127.0.0.1", 0), keys_file=str(tmp_path / "api-keys.json"))
    with pytest.raises(StartError) as refused:
        _start(config, _Host({}))
    assert str(refused.value) == "extensions.api: no exporter with a queryable store (clickhouse) is configured"


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ({"cors": {"allowed_origins": ["*"]}}, "api.cors.allowed_origins[0]: wildcards are not accepted; list each"),
        ({"cors": {"allowed_origins": ["grafana.example"]}}, "api.cors.allowed_origins[0]: expected an origin"),
        ({"limits": {"default_page_limit": 5000}}, "api.limits.default_page_limit: must not exceed max_page_limit"),
        ({"limits": {"max_time_window": "1m"}}, "api.limits.max_time_window: must be at least default_time_window"),
        ({"stream": {"client_buffer": 0}}, "api.stream.client_buffer: must be at least 1"),
    ],
)
def test_config_mistakes_are_one_line_naming_the_path(raw: dict[str, Any], problem: str) -> None:
    with pytest.raises(ConfigError) as error:
        decode(ApiConfig, raw, "api")
    (line,) = [str(p) for p in error.value.problems]
    assert line.startswith(problem)
