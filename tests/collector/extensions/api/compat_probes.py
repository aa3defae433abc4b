"""Tenant-isolation probes of the Jaeger and Tempo APIs, for test_tenants.py's table.

Each probe asks one route (or gRPC method) something as a tenant's key and returns the answer as text, ids in
hex where the answer is binary, so test_tenants can look for the other tenant's trace and span ids and name.
``COMPAT_ROUTES`` names every path and method probed, so a route added without a probe is noticed.

Dependencies need calls across services: each tenant's checkout trace (compat_world.send_checkout, its
services prefixed with the tenant's name) is sent once per running collector, on the first probe that needs it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
import httpx
from google.protobuf import json_format
from opentelemetry.proto.trace.v1.trace_pb2 import TracesData

from tests.collector.extensions.api.compat_world import send_checkout
from tests.collector.extensions.api.jaeger.storage_v2_client import StorageClient, spans_of, timestamp
from tests.collector.extensions.api.world import HOUR, MINUTE, SECOND, World, rfc3339, wait_until_stored

OTHER = {"acme": "globex", "globex": "acme"}
MICRO, MILLI = 1_000, 1_000_000
_SENT_CHECKOUTS: set[int] = set()

Probe = Callable[[World, str], str]


def _own_trace(world: World, tenant: str) -> str:
    return world.traces["chat gpt-4o globex"] if tenant == "globex" else world.traces["invoke_agent support"]


def _checkouts(world: World) -> None:
    """Each tenant's checkout trace, sent once to this collector (services acme-frontend → acme-backend ...)."""
    if id(world) in _SENT_CHECKOUTS:
        return
    _SENT_CHECKOUTS.add(id(world))
    for offset, tenant in enumerate(("acme", "globex")):
        send_checkout(world, HOUR + (52 + offset) * MINUTE, tenant, prefix=f"{tenant}-")
    wait_until_stored(world)


def _get(world: World, tenant: str, path: str, status: int = 200, **params: Any) -> httpx.Response:
    answer = httpx.get(
        world.base_url + path,
        params=params,
        headers={"Authorization": f"Bearer {world.keys[tenant]}", **params.pop("headers", {})},
        timeout=60,
    )
    assert answer.status_code == status, answer.text
    return answer


def _text(world: World, tenant: str, path: str, status: int = 200, **params: Any) -> str:
    return _get(world, tenant, path, status, **params).text


def _end(world: World) -> int:
    return world.live_window[1]


def _micros(world: World) -> dict[str, int]:
    return {"start": HOUR // MICRO, "end": _end(world) // MICRO}


def _seconds(world: World) -> dict[str, int]:
    return {"start": HOUR // SECOND, "end": _end(world) // SECOND}


def _v3(world: World) -> dict[str, str]:
    return {"query.startTimeMin": rfc3339(HOUR), "query.startTimeMax": rfc3339(_end(world))}


def _jaeger_search_by_other_id(world: World, tenant: str) -> str:
    answer = _get(world, tenant, "/api/traces", traceID=_own_trace(world, OTHER[tenant])).json()
    return str(answer["data"])  # the errors list names the id the caller asked for; only data could leak


def _jaeger_dependencies(world: World, tenant: str) -> str:
    _checkouts(world)
    end = _end(world) // MILLI
    return _text(world, tenant, "/api/dependencies", endTs=end, lookback=end - HOUR // MILLI)


def _tempo_protobuf(world: World, tenant: str, trace_id: str, status: int) -> str:
    answer = _get(world, tenant, f"/api/traces/{trace_id}", status, headers={"Accept": "application/protobuf"})
    return _traces_text([TracesData.FromString(answer.content)]) if status == 200 else answer.text


def _traces_text(chunks: list[TracesData]) -> str:
    """TracesData as text with hex ids, so the markers (hex) are found."""
    ids = [f"{span.trace_id.hex()} {span.span_id.hex()}" for span in spans_of(chunks)]
    return "\n".join([*ids, *(json_format.MessageToJson(chunk) for chunk in chunks)])


def _storage(world: World, tenant: str) -> tuple[grpc.Channel, StorageClient]:
    channel = grpc.insecure_channel(f"127.0.0.1:{world.api.grpc_port}")
    return channel, StorageClient(channel, world.keys[tenant])


def _grpc(call: Callable[[StorageClient, World, str], Any]) -> Probe:
    def probe(world: World, tenant: str) -> str:
        channel, client = _storage(world, tenant)
        with channel:
            return str(call(client, world, tenant))

    return probe


def _window(world: World) -> dict[str, Any]:
    return {"start_time_min": timestamp(HOUR), "start_time_max": timestamp(_end(world))}


def _grpc_dependencies(client: StorageClient, world: World, tenant: str) -> Any:
    _checkouts(world)
    return client.get_dependencies(timestamp(HOUR), timestamp(_end(world)))


def _summaries(client: StorageClient, world: World, tenant: str) -> str:
    return "\n".join(
        f"{s.trace_id.hex()} {s}" for r in client.find_trace_summaries(**_window(world)) for s in r.summaries
    )


# name → (probe, whether the answer must show some of the caller's own data)
COMPAT_PROBES: dict[str, tuple[Probe, bool]] = {
    "jaeger services": (lambda w, t: _text(w, t, "/api/services"), False),
    "jaeger service operations": (lambda w, t: _text(w, t, "/api/services/support-bot/operations"), False),
    "jaeger operations": (lambda w, t: _text(w, t, "/api/operations", service="support-bot"), False),
    "jaeger search": (lambda w, t: _text(w, t, "/api/traces", **_micros(w)), True),
    "jaeger search by the other tenant's id": (_jaeger_search_by_other_id, False),
    "jaeger trace": (lambda w, t: _text(w, t, f"/api/traces/{_own_trace(w, t)}"), True),
    "jaeger trace of the other tenant": (
        lambda w, t: _text(w, t, f"/api/traces/{_own_trace(w, OTHER[t])}", 404), False,
    ),
    "jaeger dependencies": (_jaeger_dependencies, True),
    "api_v3 services": (lambda w, t: _text(w, t, "/api/v3/services"), False),
    "api_v3 operations": (lambda w, t: _text(w, t, "/api/v3/operations", service="support-bot"), False),
    "api_v3 traces": (lambda w, t: _text(w, t, "/api/v3/traces", **_v3(w)), True),
    "api_v3 trace summaries": (lambda w, t: _text(w, t, "/api/v3/trace-summaries", **_v3(w)), True),
    "api_v3 trace": (lambda w, t: _text(w, t, f"/api/v3/traces/{_own_trace(w, t)}"), True),
    "api_v3 trace of the other tenant": (
        lambda w, t: _text(w, t, f"/api/v3/traces/{_own_trace(w, OTHER[t])}", 404), False,
    ),
    "tempo search": (lambda w, t: _text(w, t, "/api/search", q="{}", **_seconds(w)), True),
    "tempo search by tags": (
        lambda w, t: _text(w, t, "/api/search", tags="gen_ai.operation.name=chat", **_seconds(w)), True,
    ),
    "tempo trace": (lambda w, t: _tempo_protobuf(w, t, _own_trace(w, t), 200), True),
    "tempo trace of the other tenant": (lambda w, t: _tempo_protobuf(w, t, _own_trace(w, OTHER[t]), 404), False),
    "tempo trace v2": (lambda w, t: _text(w, t, f"/api/v2/traces/{_own_trace(w, t)}"), True),
    "tempo trace v2 of the other tenant": (
        lambda w, t: _text(w, t, f"/api/v2/traces/{_own_trace(w, OTHER[t])}", 404), False,
    ),
    "tempo tags": (lambda w, t: _text(w, t, "/api/search/tags", **_seconds(w)), False),
    "tempo tags v2": (lambda w, t: _text(w, t, "/api/v2/search/tags", **_seconds(w)), False),
    "tempo tenant values": (lambda w, t: _text(w, t, "/api/search/tag/tenant.id/values", **_seconds(w)), True),
    "tempo tenant values v2": (lambda w, t: _text(w, t, "/api/v2/search/tag/.tenant.id/values", **_seconds(w)), True),
    "tempo echo": (lambda w, t: _text(w, t, "/api/echo"), False),
    "tempo buildinfo": (lambda w, t: _text(w, t, "/api/status/buildinfo"), False),
    "grpc services": (_grpc(lambda c, w, t: c.get_services()), False),
    "grpc operations": (_grpc(lambda c, w, t: c.get_operations("support-bot")), False),
    "grpc find traces": (_grpc(lambda c, w, t: _traces_text(c.find_traces(**_window(w)))), True),
    "grpc find trace ids": (
        _grpc(lambda c, w, t: [found.trace_id.hex() for found in c.find_trace_ids(**_window(w)).trace_ids]), True,
    ),
    "grpc find trace summaries": (_grpc(_summaries), True),
    "grpc traces of the other tenant": (
        _grpc(lambda c, w, t: _traces_text(c.get_traces(bytes.fromhex(_own_trace(w, OTHER[t]))))), False,
    ),
    "grpc dependencies": (_grpc(_grpc_dependencies), True),
    "grpc capabilities": (_grpc(lambda c, w, t: c.get_capabilities()), False),
}  # fmt: skip

# Every Jaeger and Tempo route and remote-storage method, as the probes above reach them.
COMPAT_ROUTES = {
    "/api/services", "/api/services/{service}/operations", "/api/operations", "/api/traces", "/api/traces/{traceID}",
    "/api/dependencies", "/api/v3/services", "/api/v3/operations", "/api/v3/traces", "/api/v3/trace-summaries",
    "/api/v3/traces/{trace_id}", "/api/search", "/api/v2/traces/{traceID}", "/api/search/tags",
    "/api/v2/search/tags", "/api/search/tag/{tagName}/values", "/api/v2/search/tag/{tagName}/values", "/api/echo",
    "/api/status/buildinfo",
    "TraceReader/GetServices", "TraceReader/GetOperations", "TraceReader/FindTraces", "TraceReader/FindTraceIDs",
    "TraceReader/FindTraceSummaries", "TraceReader/GetTraces", "DependencyReader/GetDependencies",
    "Capabilities/GetCapabilities",
}  # fmt: skip
