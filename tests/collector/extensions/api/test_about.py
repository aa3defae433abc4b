"""GET /api/v1/about: the caller's key as the API sees it, and the receivers' addresses as they listen."""

from __future__ import annotations

from collector.component import ComponentID
from tests.collector.extensions.api.world import World


def test_about_names_the_key_its_role_and_tenant(world: World) -> None:
    admin = world.json("/api/v1/about")["key"]
    acme = world.json("/api/v1/about", "acme")["key"]
    assert (admin["role"], admin["tenant"], admin["anonymous"]) == ("admin", None, False)
    assert (acme["role"], acme["tenant"], acme["anonymous"]) == ("viewer", "acme", False)
    assert world.keys["acme"].startswith(f"gca_{acme['id'].removeprefix('key_')}")  # the id, never the key
    assert world.get("/api/v1/about", key=None).status_code == 401


def test_about_lists_where_the_receivers_listen(world: World) -> None:
    receivers = world.service.service.receivers
    otlp = receivers[ComponentID.parse("otlp")]
    http_port = otlp.http.port  # type: ignore[attr-defined]
    ingest = world.json("/api/v1/about", "viewer")["ingest"]
    assert ingest == [
        {"receiver": "otlp", "protocol": "otlp_http", "host": "127.0.0.1", "port": http_port, "path": "/v1/traces"},
        {
            "receiver": "genai_proxy",
            "protocol": "genai_proxy",
            "host": "127.0.0.1",
            "port": world.proxy_port,
            "path": "",
        },
    ]
    assert http_port != 0  # the port bound at start, not the configured 0
