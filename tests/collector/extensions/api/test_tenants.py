"""Tenant isolation on every route: a key bound to a tenant never sees another tenant's spans, traces, calls,
findings or stream events.

One table, ``PROBES``: each entry asks one route something as a tenant's key and returns the answer's text;
the test checks that no id of the other tenant's spans (nor its name) appears in it, and, for entries that
should show the caller's own data, that some of it does. A new route joins by adding its probes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator

import httpx
import pytest
import websockets.sync.client
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from collector import findings, semconv
from collector.extensions.api.jaeger import http as jaeger_http
from collector.extensions.api.jaeger.proto import capabilities_pb2, dependency_storage_pb2, trace_storage_pb2
from collector.extensions.api.tempo import http as tempo_http
from tests.collector.extensions.api.compat_probes import COMPAT_PROBES, COMPAT_ROUTES
from tests.collector.extensions.api.world import (
    HOUR,
    WAIT_SECONDS,
    World,
    rfc3339,
    running_world,
    store_rows,
    wait_until_stored,
)

OTHER = {"acme": "globex", "globex": "acme"}
# Wide enough for the fixed hour and the calls made through the proxy just now.
WIDE_WINDOW = "100000h"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    yield from running_world(tmp_path_factory.mktemp("tenants"), f"    limits:\n      max_time_window: {WIDE_WINDOW}")


def wide(world: World) -> dict[str, str]:
    return {"start": rfc3339(HOUR), "end": rfc3339(world.live_window[1])}


def markers(world: World, tenant: str) -> set[str]:
    """What identifies ``tenant``'s data in any answer: its trace and span ids, and its name."""
    rows = store_rows(
        world,
        "SELECT TraceId, SpanId FROM otel_traces WHERE if(mapContains(SpanAttributes, 'tenant.id'), "
        f"SpanAttributes['tenant.id'], ResourceAttributes['tenant.id']) = '{tenant}'",
    )
    return {tenant} | {value for row in rows for value in row}


def own_trace(world: World, tenant: str) -> str:
    return world.traces["chat gpt-4o globex"] if tenant == "globex" else world.traces["invoke_agent support"]


def own_conversation(tenant: str) -> str:
    return "c-globex-1" if tenant == "globex" else "c-acme-1"


def _text(answer: httpx.Response, status: int = 200) -> str:
    assert answer.status_code == status, answer.text
    return answer.text


def _stream_span(world: World, tenant: str) -> str:
    """Send one span (with a finding) of ``tenant`` through OTLP/HTTP; its span id."""
    resource = {"service.name": f"{tenant}-live"}
    if tenant == "globex":
        resource[semconv.TENANT_ID] = tenant  # as the fixed spans: acme on the span, globex on the resource
    provider = TracerProvider(resource=Resource.create(resource))
    url = f"http://127.0.0.1:{world.service.port()}/v1/traces"
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=url, timeout=30)))
    attributes = {semconv.OPERATION_NAME: "chat", semconv.REQUEST_MODEL: "gpt-4o"}
    if tenant == "acme":
        attributes[semconv.TENANT_ID] = tenant
    with provider.get_tracer("live").start_as_current_span("chat gpt-4o", attributes=attributes) as span:
        span.add_event(
            findings.FINDING_EVENT,
            {findings.DETECTOR: "d", findings.CATEGORY: "c", findings.SEVERITY: "high", findings.CONFIDENCE: 1.0},
        )
        span_id = format(span.get_span_context().span_id, "016x")
    provider.shutdown()
    world.sent_spans += 1
    return span_id


def _sse(world: World, tenant: str) -> str:
    """What the SSE stream gives the tenant's key while both tenants send: up to its own span's call event."""
    headers = {"Authorization": f"Bearer {world.keys[tenant]}"}
    received: list[str] = []
    with httpx.stream("GET", world.base_url + "/api/v1/stream", headers=headers, timeout=WAIT_SECONDS) as answer:
        assert answer.status_code == 200
        lines = answer.iter_lines()
        assert next(lines) == ": stream open"
        _stream_span(world, OTHER[tenant])  # first, so it has passed the hub before the caller's own span
        own = _stream_span(world, tenant)
        for line in lines:
            received.append(line)
            if line.startswith("data: ") and '"finding"' not in line and own in line and '"request_model"' in line:
                break
    return "\n".join(received)


def _websocket(world: World, tenant: str) -> str:
    headers = {"Authorization": f"Bearer {world.keys[tenant]}"}
    url = world.base_url.replace("http://", "ws://") + "/api/v1/ws"
    received: list[str] = []
    with websockets.sync.client.connect(url, additional_headers=headers, open_timeout=WAIT_SECONDS) as socket:
        _stream_span(world, OTHER[tenant])
        own = _stream_span(world, tenant)
        deadline = time.monotonic() + WAIT_SECONDS
        while time.monotonic() < deadline:
            message = str(socket.recv(timeout=WAIT_SECONDS))
            received.append(message)
            parsed = json.loads(message)
            if parsed["type"] == "finding" and parsed["data"]["span_id"] == own:
                break
    return "\n".join(received)


Probe = Callable[[World, str], str]
# name → (probe, whether the answer must show some of the caller's own data)
PROBES: dict[str, tuple[Probe, bool]] = {
    "traces": (lambda w, t: _text(w.get("/api/v1/traces", t, **wide(w))), True),
    "traces filtered to the other tenant": (
        lambda w, t: _text(w.get("/api/v1/traces", t, **wide(w), tenant=OTHER[t])),
        False,
    ),
    "own trace": (lambda w, t: _text(w.get(f"/api/v1/traces/{own_trace(w, t)}", t)), True),
    "other tenant's trace": (lambda w, t: _text(w.get(f"/api/v1/traces/{own_trace(w, OTHER[t])}", t), 404), False),
    "other tenant's call through the proxy": (
        lambda w, t: _text(w.get(f"/api/v1/traces/{w.live[OTHER[t]]}", t), 404),
        False,
    ),
    "calls": (lambda w, t: _text(w.get("/api/v1/calls", t, **wide(w))), True),
    "calls of the other tenant's conversation": (
        lambda w, t: _text(w.get("/api/v1/calls", t, **wide(w), conversation=own_conversation(OTHER[t]))),
        False,
    ),
    "stats by tenant": (lambda w, t: _text(w.get("/api/v1/stats", t, **wide(w), group_by="tenant,service")), True),
    "findings": (lambda w, t: _text(w.get("/api/v1/findings", t, **wide(w))), True),
    "own conversation": (lambda w, t: _text(w.get(f"/api/v1/conversations/{own_conversation(t)}", t, **wide(w))), True),
    "other tenant's conversation": (
        lambda w, t: _text(w.get(f"/api/v1/conversations/{own_conversation(OTHER[t])}", t, **wide(w)), 404),
        False,
    ),
    "conversations": (lambda w, t: _text(w.get("/api/v1/conversations", t, **wide(w))), True),
    "services": (lambda w, t: _text(w.get("/api/v1/services", t, **wide(w))), False),
    "about": (lambda w, t: _text(w.get("/api/v1/about", t)), True),
    "stream (SSE)": (_sse, True),
    "stream (WebSocket)": (_websocket, True),
    **COMPAT_PROBES,  # Jaeger's and Tempo's APIs and Jaeger's remote storage (gRPC)
}


@pytest.mark.parametrize("tenant", ["acme", "globex"])
@pytest.mark.parametrize("probe", list(PROBES))
def test_a_tenant_key_never_sees_another_tenants_data(world: World, probe: str, tenant: str) -> None:
    ask, shows_own = PROBES[probe]
    answer = ask(world, tenant)
    wait_until_stored(world)  # spans a probe sent are among the markers too
    leaked = sorted(marker for marker in markers(world, OTHER[tenant]) if marker in answer)
    assert leaked == [], f"{probe} as {tenant} shows {OTHER[tenant]}'s data"
    if shows_own:
        assert any(marker in answer for marker in markers(world, tenant)), f"{probe} shows nothing"


def test_services_of_one_tenant_leave_out_services_only_the_other_uses(world: World) -> None:
    acme = {s["name"] for s in world.json("/api/v1/services", "acme", **wide(world))["services"]}
    assert "batch-job" in acme and "cron" not in acme
    globex = {s["name"] for s in world.json("/api/v1/services", "globex", **wide(world))["services"]}
    assert "support-bot" in globex and not {"batch-job", "cron"} & globex


def test_every_route_of_the_api_has_a_probe(world: World) -> None:
    """A route added without a probe here fails this test (the OpenAPI document lists them all)."""
    paths = set(world.json("/api/v1/openapi.json")["paths"])
    probed = {
        "/api/v1/traces", "/api/v1/traces/{trace_id}", "/api/v1/calls", "/api/v1/stats", "/api/v1/findings",
        "/api/v1/conversations", "/api/v1/conversations/{conversation_id}", "/api/v1/services", "/api/v1/about",
        "/api/v1/stream", "/api/v1/ws",
        # Probed over a store of evaluation results of its own (test_rest_evaluations.py).
        "/api/v1/evaluations",
    }  # fmt: skip
    assert paths == probed


def test_every_jaeger_and_tempo_route_has_a_probe(world: World) -> None:
    """Those APIs are left out of the OpenAPI document; their routes and gRPC methods are listed here instead."""
    context = world.api.context
    assert context is not None
    paths = {endpoint.path for group in (jaeger_http.routes, tempo_http.routes) for endpoint in group(context)}
    methods = {
        f"{service.name}/{method.name}"
        for module in (trace_storage_pb2, dependency_storage_pb2, capabilities_pb2)
        for service in module.DESCRIPTOR.services_by_name.values()
        for method in service.methods
    }
    assert paths | methods == COMPAT_ROUTES
