"""The api extension without keys on loopback (open reads until a key exists), require_keys, and CORS when
configured: each on a collector of its own (chDB opens one store per process, so not beside the shared world)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from collector.keys import KeyStore
from tests.conftest import RunningService

SERVICES = "/api/v1/services"


def _open_collector(tmp_path: Path, chdb_path: Path, api: str) -> RunningService:
    config = f"""
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:0
exporters:
  clickhouse:
    endpoint: chdb://{chdb_path}
extensions:
  api:
    endpoint: 127.0.0.1:0
    grpc_endpoint: 127.0.0.1:0
    keys_file: {tmp_path / "api-keys.json"}
{api}
service:
  extensions: [api]
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [clickhouse]
"""
    return RunningService(config, tmp_path)


def _api_url(collector: RunningService) -> str:
    return f"http://127.0.0.1:{collector.api_port()}"


@pytest.fixture
def open_collector(tmp_path: Path, chdb_path: Path) -> Iterator[RunningService]:
    collector = _open_collector(
        tmp_path, chdb_path, "    cors:\n      allowed_origins: [https://grafana.example]\n      max_age: 600"
    )
    try:
        yield collector
    finally:
        collector.stop()


def test_on_loopback_with_no_key_reads_are_open_until_a_key_is_made(
    open_collector: RunningService, tmp_path: Path
) -> None:
    url = _api_url(open_collector) + SERVICES
    assert httpx.get(url).status_code == 200
    KeyStore(tmp_path / "api-keys.json").create(role="viewer")
    closed = httpx.get(url)
    assert (closed.status_code, closed.json()["code"]) == (401, "unauthorized")


def test_cors_when_configured_answers_preflights_for_the_listed_origins_only(open_collector: RunningService) -> None:
    url = _api_url(open_collector) + SERVICES
    preflight = httpx.options(
        url,
        headers={
            "Origin": "https://grafana.example",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "https://grafana.example"
    assert preflight.headers["access-control-max-age"] == "600"
    assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
    read = httpx.get(url, headers={"Origin": "https://grafana.example"})
    assert (read.status_code, read.headers["access-control-allow-origin"]) == (200, "https://grafana.example")
    other = httpx.get(url, headers={"Origin": "https://evil.example"})
    assert other.status_code == 403 and "access-control-allow-origin" not in other.headers


def test_require_keys_closes_loopback_too(tmp_path: Path, chdb_path: Path) -> None:
    collector = _open_collector(tmp_path, chdb_path, "    require_keys: true")
    try:
        assert httpx.get(_api_url(collector) + SERVICES).status_code == 401
    finally:
        collector.stop()
