"""The contract every built-in component must honour, for each signal (or pair of signals, for a connector) it
supports: create, start, consume, shutdown twice, shutdown before start."""

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
from collector.config.decode import decode
from collector.config.types import HostPort
from collector.pdata import set_any_value
from collector.registry import builtin_registry
from collector.signals import OtlpData, Signal, item_count
from tests.conftest import RecordingConsumer, free_port, make_traces
from tests.connectors.genai_evaluation.support import Calls

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
    """Every component of traces (``create``), and every extension."""
    return [
        (section, t)
        for section in ("receivers", "processors", "exporters", "extensions")
        for t, factory in REGISTRY.kind(section).items()
        if section == "extensions" or factory.supports("traces")
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
    if signal == "traces":
        traces = make_traces(spans=1)
        span = traces.resource_spans[0].scope_spans[0].spans[0]
        set_any_value(span.attributes.add(key="gen_ai.operation.name").value, "chat")
        return traces
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


def _connector_cases() -> list[tuple[str, Signal, Signal]]:
    return [
        (t, signal_in, signal_out)
        for t, factory in REGISTRY.connectors.items()
        for signal_in, signal_out in factory.pairs
    ]


# A connector's config for the contract, where its default makes nothing of a batch: genai_evaluation judges no
# dimension by default, so it gets a rule (no model needed) that every chat call is put to.
CONNECTOR_CONFIGS: dict[str, dict[str, Any]] = {
    "genai_evaluation": {"dimensions": [{"name": "short", "rule": {"type": "length", "max_chars": 100}}]},
}
# Pairs that emit nothing for the contract's batch: genai_evaluation's traces out are its judge calls' spans,
# and a rule calls no judge.
EMITS_NOTHING = {("genai_evaluation", "traces", "traces")}


def _connector_batch(type_: str, signal: Signal) -> OtlpData:
    if type_ == "genai_evaluation":
        calls = Calls()
        calls.chat(1)
        return calls.traces
    return _one_batch(signal)


@pytest.mark.parametrize(("type_", "signal_in", "signal_out"), _connector_cases())
def test_connector_lifecycle(
    type_: str, signal_in: Signal, signal_out: Signal, make_settings: Callable[..., ComponentSettings]
) -> None:
    """Every connector, for each pair of signals it joins: create, start, consume, shutdown twice, shutdown before
    start; by the end of its shutdown, what it made of the batch reached the pipelines it feeds."""
    factory = REGISTRY.connectors[type_]
    settings = make_settings(type_, "connector")
    downstream = RecordingConsumer()
    create = factory.creators[(signal_in, signal_out)]
    raw = CONNECTOR_CONFIGS.get(type_)
    config = factory.config_type() if raw is None else decode(factory.config_type, raw, f"connectors.{type_}")

    async def scenario() -> None:
        await create(settings, config, RecordingConsumer()).shutdown()
        component = create(settings, config, downstream)
        await component.start(_Host())
        await component.consume(_connector_batch(type_, signal_in))
        await component.shutdown()
        await component.shutdown()
        assert bool(downstream.received) is ((type_, signal_in, signal_out) not in EMITS_NOTHING)
        assert all(isinstance(batch, type(_one_batch(signal_out))) for batch in downstream.received)

    asyncio.run(asyncio.wait_for(scenario(), 60))
