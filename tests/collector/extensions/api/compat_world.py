"""The api tests' running collector (world.py) plus one trace across services, for the Jaeger and Tempo tests.

``checkout`` (tenant acme, on its spans), sent with the OpenTelemetry SDK's OTLP/HTTP exporter at
``CHECKOUT_START``, fifty minutes into the world's hour::

    frontend  GET /checkout      server  2s   http.response.status_code=200
    frontend  POST backend       client  1.5s
    backend   POST /orders       server  1s   error "db down"
    db        SELECT orders      client  0.5s db.system=postgresql

so the services call frontend → backend → db once each, and only checkout's spans carry those services.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode, set_span_in_context

from collector import semconv
from tests.collector.extensions.api.world import HOUR, MINUTE, SECOND, World, running_world, wait_until_stored

CHECKOUT_START = HOUR + 50 * MINUTE
CHECKOUT_SERVICES = ("frontend", "backend", "db")
WIDE_LIMITS = "    limits:\n      max_time_window: 100000h"


def send_checkout(world: World, start: int = CHECKOUT_START, tenant: str = "acme", prefix: str = "") -> None:
    """Send the checkout trace (see the module docstring); its span names and ids go into ``world``."""
    url = f"http://127.0.0.1:{world.service.port()}/v1/traces"
    providers = {
        service: TracerProvider(resource=Resource.create({"service.name": prefix + service}))
        for service in CHECKOUT_SERVICES
    }
    for provider in providers.values():
        provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=url, timeout=30)))
    tracers = {service: provider.get_tracer("tests.compat", "0.1") for service, provider in providers.items()}
    tenant_attributes = {semconv.TENANT_ID: tenant}

    def span(service: str, name: str, offset: float, seconds: float, parent: Any, kind: SpanKind, **attrs: Any) -> Any:
        context = set_span_in_context(parent) if parent is not None else None
        started = start + int(offset * SECOND)
        made = tracers[service].start_span(
            prefix + name, context=context, kind=kind, attributes={**tenant_attributes, **attrs}, start_time=started
        )
        if name == "POST /orders":
            made.set_status(Status(StatusCode.ERROR, "db down"))
        made.end(end_time=started + int(seconds * SECOND))
        span_context = made.get_span_context()
        world.traces.setdefault(prefix + name, format(span_context.trace_id, "032x"))
        world.spans[prefix + name] = format(span_context.span_id, "016x")
        world.sent_spans += 1
        return made

    root = span("frontend", "GET /checkout", 0, 2, None, SpanKind.SERVER, **{semconv.HTTP_RESPONSE_STATUS_CODE: 200})
    client = span("frontend", "POST backend", 0.2, 1.5, root, SpanKind.CLIENT)
    orders = span("backend", "POST /orders", 0.3, 1, client, SpanKind.SERVER)
    span("db", "SELECT orders", 0.4, 0.5, orders, SpanKind.CLIENT, **{"db.system": "postgresql"})
    for provider in providers.values():
        provider.shutdown()


def compat_world(root: Path) -> Iterator[World]:
    """world.py's running collector (limits widened) with the checkout trace stored too."""
    worlds = running_world(root, WIDE_LIMITS)
    world = next(worlds)
    try:
        send_checkout(world)
        wait_until_stored(world)
        yield world
    finally:
        worlds.close()
