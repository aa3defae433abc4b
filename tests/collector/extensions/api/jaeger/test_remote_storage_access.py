"""Jaeger's remote storage gRPC service as the other listeners: open on loopback until a key exists, and kept
on loopback until one does (collector.extensions.access, as the api extension's HTTP endpoint).

Its own module: chDB opens one store per process, and test_remote_storage.py's collector holds one.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import grpc
import pytest

from collector.component import ComponentID, ComponentSettings
from collector.config.types import HostPort
from collector.errors import StartError
from collector.extensions.api.config import ApiConfig
from collector.extensions.api.extension import ApiExtension
from collector.keys import KeyStore
from collector.telemetry import Telemetry
from tests.collector.extensions.api.jaeger.storage_v2_client import StorageClient
from tests.conftest import RunningService


def test_on_loopback_with_no_key_created_calls_need_none_until_one_is(tmp_path: Path, chdb_path: Path) -> None:
    keys_file = tmp_path / "api-keys.json"
    collector = RunningService(OPEN_CONFIG.format(chdb=chdb_path, keys=keys_file), tmp_path)
    try:
        extension = collector.service.extensions[ComponentID.parse("api")]
        with grpc.insecure_channel(f"127.0.0.1:{extension.grpc_port}") as opened:  # type: ignore[attr-defined]
            assert StorageClient(opened, None).get_services() == []
            KeyStore(keys_file).create(role="viewer")
            with pytest.raises(grpc.RpcError) as refused:
                StorageClient(opened, None).get_services()
            assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    finally:
        collector.stop()


def test_a_wider_grpc_address_needs_a_key_first(tmp_path: Path) -> None:
    keys_file = tmp_path / "api-keys.json"
    config = ApiConfig(
        endpoint=HostPort("127.0.0.1", 0), grpc_endpoint=HostPort("0.0.0.0", 0), keys_file=str(keys_file)
    )
    extension = ApiExtension(
        ComponentSettings(ComponentID("api"), "extension", logging.getLogger("test.api"), Telemetry()), config
    )
    with pytest.raises(StartError) as refused:
        asyncio.run(asyncio.wait_for(extension.start(_NoStores()), 30))  # type: ignore[arg-type]
    assert str(refused.value) == (
        f"extensions.api.grpc_endpoint: 0.0.0.0:0 is reachable from other machines, and no API key exists in "
        f"{keys_file}; create one first (genai-collector keys create --role admin) or listen on 127.0.0.1"
    )


class _NoStores:
    exporters: dict[ComponentID, object] = {}


OPEN_CONFIG = """
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:0
exporters:
  clickhouse:
    endpoint: chdb://{chdb}
extensions:
  api:
    endpoint: 127.0.0.1:0
    grpc_endpoint: 127.0.0.1:0
    keys_file: {keys}
service:
  extensions: [api]
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [clickhouse]
"""
