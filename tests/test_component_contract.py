"""The contract every built-in component must honour, for each signal it supports: create, start, consume,
shutdown twice, shutdown before start."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.logs.v1.logs_pb2 import LogsData
from opentelemetry.proto.metrics.v1.metrics_pb2 import MetricsData

from collector.component import ComponentID, ComponentSettings
from collector.config.types import HostPort
from collector.registry import builtin_registry
from collector.signals import OtlpData, Signal, item_count
from tests.conftest import RecordingConsumer, free_port, make_traces

REGISTRY = builtin_registry()


def _config_for(section: str, type_: str, tmp_path: Path) -> Any:
    """The factory's default config, moved onto free ports and a temporary store."""
    config = REGISTRY.kind(section)[type_].config_type()
    if type_ == "clickhouse":
        return dataclasses.replace(config, endpoint=f"chdb://{tmp_path / 'clickhouse'}")
    if section == "exporters" and type_ in ("otlp", "loadbalancing"):
        return _otlp_client_config(type_, config)
    if type_ == "otlphttp":
        # As for otlp: nothing listens there and retries are off, so the batch is dropped at once.
        return dataclasses.replace(
            config,
            endpoint=f"http://127.0.0.1:{free_port()}",
            retry_on_failure=dataclasses.replace(config.retry_on_failure, enabled=False),
        )
    if type_ == "otlp":
        protocols = config.protocols
        return dataclasses.replace(
            config,
            protocols=dataclasses.replace(
                protocols,
                grpc=dataclasses.replace(protocols.grpc, endpoint=HostPort("127.0.0.1", 0)),
                http=dataclasses.replace(protocols.http, endpoint=HostPort("127.0.0.1", 0)),
            ),
        )
    if type_ in ("admin", "prometheus"):
        return dataclasses.replace(config, endpoint=HostPort("127.0.0.1", 0))
    if type_ == "api":
        return dataclasses.replace(
            config,
            endpoint=HostPort("127.0.0.1", 0),
            grpc_endpoint=HostPort("127.0.0.1", 0),
            keys_file=str(tmp_path / "keys.json"),
        )
    return config


def _otlp_client_config(type_: str, config: Any) -> Any:
    """An OTLP/gRPC client config aimed at a free port where nothing listens, without retries.

    The one batch the contract sends is refused at once (connection refused) and
    dropped, so shutdown's drain ends without waiting out a backoff.
    """
    endpoint = HostPort("127.0.0.1", free_port())
    client = config if type_ == "otlp" else config.protocol.otlp
    client = dataclasses.replace(
        client,
        tls=dataclasses.replace(client.tls, insecure=True),
        retry_on_failure=dataclasses.replace(client.retry_on_failure, enabled=False),
    )
    if type_ == "otlp":
        return dataclasses.replace(client, endpoint=endpoint)
    resolver = dataclasses.replace(config.resolver.static, hostnames=(endpoint,))
    return dataclasses.replace(
        config,
        protocol=dataclasses.replace(config.protocol, otlp=client),
        resolver=dataclasses.replace(config.resolver, static=resolver),
    )


class _Host:
    def __init__(self, exporters: dict[ComponentID, Any] | None = None) -> None:
        self.exporters = exporters or {}
        self.ready = True


# Extensions that read a store start only beside one: they get a clickhouse exporter on a temporary chDB store.
READS_A_STORE = {"api"}


def _cases() -> list[tuple[str, str]]:
    return [
        (section, t)
        for section in ("receivers", "processors", "exporters", "extensions")
        for t in REGISTRY.kind(section)
    ]


@pytest.mark.parametrize(("section", "type_"), _cases())
def test_component_lifecycle(
    section: str, type_: str, tmp_path: Path, make_settings: Callable[..., ComponentSettings]
) -> None:
    factory = REGISTRY.kind(section)[type_]
    config = _config_for(section, type_, tmp_path)
    settings = make_settings(type_, section.rstrip("s"))
    downstream = RecordingConsumer()

    async def scenario() -> None:
        if section in ("receivers", "processors"):
            component = factory.create(settings, config, downstream)
        else:
            component = factory.create(settings, config)
        never_started = (
            factory.create(settings, config, downstream)
            if section in ("receivers", "processors")
            else factory.create(settings, config)
        )
        await never_started.shutdown()  # shutdown before start is a no-op
        store = None
        if type_ in READS_A_STORE:
            store_settings = make_settings("clickhouse", "exporter")
            store = REGISTRY.exporters["clickhouse"].create(
                store_settings, _config_for("exporters", "clickhouse", tmp_path)
            )
            await store.start(_Host())
        await component.start(_Host({ComponentID("clickhouse"): store} if store is not None else {}))
        if section in ("processors", "exporters"):
            await component.consume(make_traces(spans=2))
        await component.shutdown()
        await component.shutdown()  # and twice is fine
        if store is not None:
            await store.shutdown()
        if section == "processors":
            assert (
                sum(len(ss.spans) for t in downstream.received for rs in t.resource_spans for ss in rs.scope_spans) == 2
            )

    asyncio.run(asyncio.wait_for(scenario(), 60))


def _signal_cases() -> list[tuple[str, str, Signal]]:
    return [
        (section, t, signal)
        for section in ("receivers", "processors", "exporters")
        for t, factory in REGISTRY.kind(section).items()
        for signal in factory.signals
        if signal != "traces"
    ]


def _one_batch(signal: Signal) -> OtlpData:
    if signal == "logs":
        logs = LogsData()
        logs.resource_logs.add().scope_logs.add().log_records.add().body.string_value = "contract"
        return logs
    metrics = MetricsData()
    metric = metrics.resource_metrics.add().scope_metrics.add().metrics.add()
    metric.name = "contract"
    metric.gauge.data_points.add().as_int = 1
    return metrics


@pytest.mark.parametrize(("section", "type_", "signal"), _signal_cases())
def test_component_lifecycle_for_logs_and_metrics(
    section: str, type_: str, signal: Signal, tmp_path: Path, make_settings: Callable[..., ComponentSettings]
) -> None:
    """Every component of a signal other than traces: create, start, consume a batch, shutdown twice."""
    factory = REGISTRY.kind(section)[type_]
    config = _config_for(section, type_, tmp_path)
    settings = make_settings(type_, section.rstrip("s"))
    downstream = RecordingConsumer()
    create = factory.creator(signal)

    async def scenario() -> None:
        component = create(settings, config, downstream) if section != "exporters" else create(settings, config)
        await component.start(_Host())
        if section != "receivers":
            await component.consume(_one_batch(signal))
        await component.shutdown()
        await component.shutdown()
        if section == "processors":
            assert [item_count(batch) for batch in downstream.received] == [1]  # type: ignore[arg-type]

    asyncio.run(asyncio.wait_for(scenario(), 60))
