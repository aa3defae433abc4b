"""The loadbalancing exporter: its hash ring, the split by trace, and trace-affine routing to real collectors."""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from google.protobuf import text_format
from opentelemetry.proto.trace.v1.trace_pb2 import TracesData

import exporters.loadbalancing
from collector.component import ComponentID, ComponentSettings
from collector.config.decode import decode
from collector.config.problems import ConfigError
from collector.errors import QueueFullError
from collector.findings import findings_on
from collector.pdata import any_value, iter_spans
from collector.telemetry import Telemetry
from exporters.loadbalancing.config import LoadBalancingConfig
from exporters.loadbalancing.exporter import SPLIT_IN_THREAD_SPANS, LoadBalancingExporter
from exporters.loadbalancing.ring import HashRing
from exporters.loadbalancing.split import split_by_trace
from tests.conftest import RunningService, free_port
from tests.exporters.trace_server import TraceServer
from tests.processors.agent_spans import Agent, batch

BACKENDS = ("10.0.0.1:4317", "10.0.0.2:4317", "10.0.0.3:4317")
TRACE_COUNT = 10_000
DEBUG_LOGGER = "genai_collector.exporter.debug/"
SCENARIO_TIMEOUT = 60.0


def _trace_ids(count: int, seed: int = 7) -> list[bytes]:
    rng = random.Random(seed)
    return [rng.randbytes(16) for _ in range(count)]


# The ring


def test_the_ring_is_deterministic_whatever_the_order_of_backends() -> None:
    ring = HashRing(BACKENDS)
    reordered = HashRing(reversed(BACKENDS))
    ids = _trace_ids(1000)
    assert [ring.owner(i) for i in ids] == [reordered.owner(i) for i in ids]
    # Pinned: collectors of one tier, and of two versions, must agree on every trace.
    first, second, third = BACKENDS
    expected = [second, first, second, first, second, second, first, third]
    assert [ring.owner(bytes([n]) * 16) for n in range(8)] == expected


def test_the_ring_balances_traces_within_reason() -> None:
    ring = HashRing(BACKENDS)
    shares = Counter(ring.owner(i) for i in _trace_ids(TRACE_COUNT))
    assert set(shares) == set(BACKENDS)
    for backend, count in shares.items():
        assert 0.25 < count / TRACE_COUNT < 0.42, (backend, shares)


def test_removing_a_backend_moves_only_its_own_traces() -> None:
    before = HashRing(BACKENDS)
    after = HashRing(BACKENDS[:2])
    removed = BACKENDS[2]
    moved_to: Counter[str] = Counter()
    for trace_id in _trace_ids(TRACE_COUNT):
        owner = before.owner(trace_id)
        if owner == removed:
            moved_to[after.owner(trace_id)] += 1
        else:
            assert after.owner(trace_id) == owner
    # The removed backend's traces spread over both others.
    assert min(moved_to.values()) > 0.3 * sum(moved_to.values()), moved_to


def test_adding_a_backend_takes_about_a_share_and_only_for_itself() -> None:
    before = HashRing(BACKENDS)
    after = HashRing((*BACKENDS, "10.0.0.4:4317"))
    moved = 0
    for trace_id in _trace_ids(TRACE_COUNT):
        if before.owner(trace_id) != after.owner(trace_id):
            assert after.owner(trace_id) == "10.0.0.4:4317"
            moved += 1
    assert 0.15 < moved / TRACE_COUNT < 0.35


# The split


def _batch(spec: list[tuple[str, str, list[bytes]]]) -> TracesData:
    """Resources by service name, each with one scope of the given name and one span per trace id."""
    traces = TracesData()
    for service, scope, trace_ids in spec:
        resource_spans = traces.resource_spans.add(schema_url=f"schema/{service}")
        resource_spans.resource.attributes.add(key="service.name").value.string_value = service
        scope_spans = resource_spans.scope_spans.add(schema_url=f"schema/{scope}")
        scope_spans.scope.name = scope
        for n, trace_id in enumerate(trace_ids):
            scope_spans.spans.add(trace_id=trace_id, span_id=n.to_bytes(8, "big"), name=f"{service}-{n}")
    return traces


def test_the_split_keeps_each_span_under_its_resource_and_scope() -> None:
    ring = HashRing(BACKENDS)
    ids = _trace_ids(60)
    batch = _batch([("checkout", "openai", ids[:30]), ("search", "anthropic", ids[30:])])
    before = TracesData()
    before.CopyFrom(batch)

    parts = split_by_trace(batch, ring.owner)

    assert batch == before  # exporters share batches: the input is left alone
    assert set(parts) == set(BACKENDS)
    seen: list[tuple[str, bytes]] = []
    for backend, part in parts.items():
        for resource, scope, span in iter_spans([part]):
            assert ring.owner(span.trace_id) == backend
            service = any_value(resource.attributes[0].value)
            assert (service, scope.name) == (
                ("checkout", "openai") if span.name.startswith("checkout") else ("search", "anthropic")
            )
            seen.append((backend, span.trace_id))
        for resource_spans in part.resource_spans:
            assert resource_spans.schema_url.startswith("schema/")
            assert all(ss.schema_url.startswith("schema/") for ss in resource_spans.scope_spans)
    assert sorted(trace_id for _, trace_id in seen) == sorted(ids)


def test_a_batch_for_one_backend_is_passed_on_as_it_is() -> None:
    ring = HashRing(BACKENDS)
    trace_id = _trace_ids(1)[0]
    batch = _batch([("a", "s", [trace_id] * 5), ("b", "t", [trace_id] * 2)])
    assert split_by_trace(batch, ring.owner) == {ring.owner(trace_id): batch}
    assert split_by_trace(batch, ring.owner)[ring.owner(trace_id)] is batch


# Routing to three collectors


def _downstream(name: str, tmp_path: Path, processors: tuple[str, ...] = ()) -> RunningService:
    """A collector taking OTLP/gRPC on a free port and printing every batch (debug/NAME, detailed)."""
    declared = "".join(f"\n  {processor}:" for processor in processors)
    return RunningService(
        f"""
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:0
processors:{declared or " {}"}
exporters:
  debug/{name}:
    verbosity: detailed
service:
  pipelines:
    traces:
      receivers: [otlp]
      processors: [{", ".join(processors)}]
      exporters: [debug/{name}]
""",
        tmp_path,
    )


def _first_tier(ports: list[int], tmp_path: Path) -> RunningService:
    hostnames = "\n".join(f"          - 127.0.0.1:{port}" for port in ports)
    return RunningService(
        f"""
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:0
exporters:
  loadbalancing:
    routing_key: traceID
    protocol:
      otlp:
        tls:
          insecure: true
        timeout: 10s
        sending_queue:
          batch:
            flush_timeout: 10ms
            min_size: 25
            max_size: 60
    resolver:
      static:
        hostnames:
{hostnames}
service:
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [loadbalancing]
""",
        tmp_path,
    )


def _requests(trace_ids: list[bytes], spans_per_trace: int, per_request: int) -> list[TracesData]:
    """Every span of every trace, shuffled across requests, each span under its trace's service and scope."""
    spans = [(trace_id, n) for trace_id in trace_ids for n in range(spans_per_trace)]
    random.Random(11).shuffle(spans)
    requests = []
    for start in range(0, len(spans), per_request):
        traces = TracesData()
        by_service: dict[str, Any] = {}
        for trace_id, n in spans[start : start + per_request]:
            service = f"svc-{trace_id[0] % 4}"
            if service not in by_service:
                resource_spans = traces.resource_spans.add()
                resource_spans.resource.attributes.add(key="service.name").value.string_value = service
                scope_spans = resource_spans.scope_spans.add()
                scope_spans.scope.name = f"scope-{service}"
                by_service[service] = scope_spans
            by_service[service].spans.add(trace_id=trace_id, span_id=bytes([n]) + trace_id[:7], name=f"step {n}")
        requests.append(traces)
    return requests


def test_every_trace_lands_whole_on_one_of_three_collectors(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="genai_collector")
    names = ["b0", "b1", "b2"]
    downstream = [_downstream(name, tmp_path) for name in names]
    try:
        ports = [collector.port("otlp", "grpc") for collector in downstream]
        trace_ids = _trace_ids(150, seed=3)
        requests = _requests(trace_ids, spans_per_trace=4, per_request=40)
        first = _first_tier(ports, tmp_path)
        try:
            url = f"http://127.0.0.1:{first.port()}/v1/traces"
            with httpx.Client() as client:
                for request in requests:
                    reply = client.post(
                        url, content=request.SerializeToString(), headers={"content-type": "application/x-protobuf"}
                    )
                    assert reply.status_code == 200
            exporter = first.service.exporters[ComponentID("loadbalancing")]
            assert isinstance(exporter, LoadBalancingExporter)
            ring = exporter.ring
        finally:
            first.stop()  # drains every backend's queue into the three collectors
    finally:
        for collector in downstream:
            collector.stop()

    landed: dict[tuple[bytes, bytes], list[str]] = {}
    for record in caplog.records:
        if not record.name.startswith(DEBUG_LOGGER) or record.getMessage().startswith("Traces:"):
            continue
        name = record.name[len(DEBUG_LOGGER) :]
        for resource, scope, span in iter_spans([text_format.Parse(record.getMessage(), TracesData())]):
            service = any_value(resource.attributes[0].value)
            assert service == f"svc-{span.trace_id[0] % 4}" and scope.name == f"scope-{service}"
            landed.setdefault((span.trace_id, span.span_id), []).append(name)

    sent = {(s.trace_id, s.span_id) for _, _, s in iter_spans(requests)}
    assert set(landed) == sent  # every span arrived
    assert all(len(where) == 1 for where in landed.values())  # and only once
    collectors_of: dict[bytes, set[str]] = {}
    for (trace_id, _), where in landed.items():
        collectors_of.setdefault(trace_id, set()).update(where)
    assert all(len(where) == 1 for where in collectors_of.values())  # a trace never spans two collectors
    by_port = dict(zip([f"127.0.0.1:{port}" for port in ports], names, strict=True))
    assert all(where == {by_port[ring.owner(trace_id)]} for trace_id, where in collectors_of.items())
    traces_per_collector = Counter(next(iter(where)) for where in collectors_of.values())
    assert set(traces_per_collector) == set(names)  # each got some; so none got all
    assert min(traces_per_collector.values()) >= 0.1 * len(trace_ids), traces_per_collector


def test_a_refusing_backend_fails_the_batch_after_the_others_accepted(
    make_settings: Callable[..., ComponentSettings],
) -> None:
    live = TraceServer()
    dead_port = free_port()  # nothing listens: every send fails and is retried, holding the spans
    config = decode(
        LoadBalancingConfig,
        {
            "protocol": {
                "otlp": {
                    "tls": {"insecure": True},
                    # In memory: a forced shutdown drops (and counts) what a disk queue would keep.
                    "sending_queue": {
                        "queue_size": 10,
                        "storage": "memory",
                        "batch": {"flush_timeout": "10ms", "min_size": 1},
                    },
                    "retry_on_failure": {"initial_interval": "60s", "max_interval": "60s", "max_elapsed_time": "5m"},
                }
            },
            "resolver": {"static": {"hostnames": [live.endpoint, f"127.0.0.1:{dead_port}"]}},
        },
        "exporters.loadbalancing",
    )
    telemetry = Telemetry()
    exporter = exporters.loadbalancing.factory.create(make_settings("loadbalancing", telemetry=telemetry), config)
    assert isinstance(exporter, LoadBalancingExporter)
    ring = exporter.ring
    to_live = [t for t in _trace_ids(200) if ring.owner(t) == live.endpoint]
    to_dead = [t for t in _trace_ids(200) if ring.owner(t) != live.endpoint]

    async def scenario() -> None:
        await exporter.start(None)  # type: ignore[arg-type]
        await exporter.consume(_batch([("a", "s", to_live[:2] + to_dead[:10])]))  # fills the dead one's queue
        with pytest.raises(QueueFullError):
            await exporter.consume(_batch([("a", "s", to_live[2:5] + to_dead[10:11])]))
        await asyncio.to_thread(live.wait_for_spans, 5)
        exporter.abandon()  # stop retrying the dead backend, so shutdown ends now
        await exporter.shutdown()
        await exporter.shutdown()

    try:
        asyncio.run(asyncio.wait_for(scenario(), SCENARIO_TIMEOUT))
    finally:
        live.stop()
    # The live backend took its part of both batches, the refused one included.
    assert sorted(s.trace_id for _, _, s in iter_spans([live.received()])) == sorted(to_live[:5])
    dead = f"loadbalancing/127.0.0.1:{dead_port}"
    assert telemetry.value("otelcol_exporter_enqueue_failed_spans", exporter=dead) == 1
    assert telemetry.value("otelcol_exporter_send_failed_spans", exporter=dead, reason="shutdown") == 10
    assert telemetry.value("otelcol_exporter_sent_spans", exporter=f"loadbalancing/{live.endpoint}") == 5


def test_a_large_batch_reaches_each_backend_split_by_trace(make_settings: Callable[..., ComponentSettings]) -> None:
    servers = [TraceServer(), TraceServer()]
    raw = {
        "protocol": {"otlp": {"tls": {"insecure": True}, "sending_queue": {"batch": {"flush_timeout": "10ms"}}}},
        "resolver": {"static": {"hostnames": [server.endpoint for server in servers]}},
    }
    config = decode(LoadBalancingConfig, raw, "exporters.loadbalancing")
    exporter = exporters.loadbalancing.factory.create(make_settings("loadbalancing"), config)
    assert isinstance(exporter, LoadBalancingExporter)
    trace_ids = _trace_ids(SPLIT_IN_THREAD_SPANS + 100)  # large enough to be split in a worker thread
    batch = _batch([("checkout", "openai", trace_ids)])

    async def scenario() -> None:
        await exporter.start(None)  # type: ignore[arg-type]
        await exporter.consume(batch)
        await exporter.shutdown()

    try:
        asyncio.run(asyncio.wait_for(scenario(), SCENARIO_TIMEOUT))
    finally:
        for server in servers:
            server.stop()
    for server in servers:
        received = list(iter_spans([server.received()]))
        assert received and all(exporter.ring.owner(span.trace_id) == server.endpoint for _, _, span in received)
    assert sum(len(list(iter_spans([s.received()]))) for s in servers) == len(trace_ids)


# Configuration


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ({}, "exporters.loadbalancing.resolver.static.hostnames: list at least one backend"),
        ({"resolver": {"static": {"hostnames": []}}}, "exporters.loadbalancing.resolver.static.hostnames: list at"),
        (
            {"routing_key": "service", "resolver": {"static": {"hostnames": ["b:4317"]}}},
            'exporters.loadbalancing.routing_key: expected one of traceID, got "service"',
        ),
        (
            {"resolver": {"static": {"hostnames": ["b-1:4317", "B-1:4317"]}}},
            "exporters.loadbalancing.resolver.static.hostnames[1]: B-1:4317 is listed twice",
        ),
        (
            {"resolver": {"static": {"hostnames": ["b-1"]}}},
            "exporters.loadbalancing.resolver.static.hostnames[0]: expected host:port",
        ),
        (
            {"resolver": {"static": {"hostnames": ["b-1:0"]}}},
            "exporters.loadbalancing.resolver.static.hostnames[0]: b-1:0: port 0",
        ),
        (
            {"resolver": {"dns": {"hostname": "b"}}},
            "exporters.loadbalancing.resolver.dns: unknown key; expected one of static",
        ),
        (
            {"protocol": {"otlp": {"endpoint": "b:4317"}}, "resolver": {"static": {"hostnames": ["b:4317"]}}},
            "exporters.loadbalancing.protocol.otlp.endpoint: unknown key",
        ),
        (
            {"protocol": {"otlp": {"compression": "zstd"}}, "resolver": {"static": {"hostnames": ["b:4317"]}}},
            "exporters.loadbalancing.protocol.otlp.compression: expected one of gzip, none",
        ),
    ],
)
def test_config_mistakes(raw: dict[str, Any], problem: str) -> None:
    with pytest.raises(ConfigError) as error:
        decode(LoadBalancingConfig, raw, "exporters.loadbalancing")
    [line] = [str(p) for p in error.value.problems]
    assert line.startswith(problem), line


def test_a_valid_config() -> None:
    raw = {
        "routing_key": "traceID",
        "protocol": {"otlp": {"tls": {"insecure": True}, "headers": {"authorization": "Bearer x"}}},
        "resolver": {"static": {"hostnames": ["backend-1:4317", "backend-2:4317"]}},
    }
    config = decode(LoadBalancingConfig, raw, "exporters.loadbalancing")
    assert [str(h) for h in config.resolver.static.hostnames] == ["backend-1:4317", "backend-2:4317"]
    assert config.protocol.otlp.tls.insecure and config.protocol.otlp.compression == "gzip"


def test_a_second_tier_sees_whole_traces_and_finds_each_loop_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Agents' spans scattered over a first tier's requests; loop detection behind it sees every trace whole."""
    caplog.set_level(logging.INFO, logger="genai_collector")
    agents = [Agent() for _ in range(12)]
    for number, agent in enumerate(agents):
        for step in range(3):
            looping = number % 3 == 0
            agent.step("search", {"query": "report"} if looping else {"query": "report", "page": step}, "none")
        agent.chat(text="done")
    spans = [span for agent in agents for span in agent.spans]
    random.Random(5).shuffle(spans)
    downstream = [_downstream(name, tmp_path, ("genai_loop_detection",)) for name in ("b0", "b1", "b2")]
    try:
        first = _first_tier([collector.port("otlp", "grpc") for collector in downstream], tmp_path)
        try:
            url = f"http://127.0.0.1:{first.port()}/v1/traces"
            with httpx.Client() as client:
                for start in range(0, len(spans), 5):
                    body = batch(spans[start : start + 5]).SerializeToString()
                    reply = client.post(url, content=body, headers={"content-type": "application/x-protobuf"})
                    assert reply.status_code == 200
        finally:
            first.stop()
    finally:
        for collector in downstream:
            collector.stop()

    loops: Counter[bytes] = Counter()
    for record in caplog.records:
        if record.name.startswith(DEBUG_LOGGER) and not record.getMessage().startswith("Traces:"):
            for _, _, span in iter_spans([text_format.Parse(record.getMessage(), TracesData())]):
                found = findings_on(span)
                loops[span.trace_id] += sum(f["gen_ai.security.detector.id"] == "repeated_tool_call" for f in found)
    looping = {agent.trace_id for number, agent in enumerate(agents) if number % 3 == 0}
    assert {trace_id for trace_id, count in loops.items() if count} == looping
    assert all(loops[trace_id] == 1 for trace_id in looping)
