"""The live stream on a running collector: filters, the client limit, and a slow client cut while the pipeline
takes every span and a fast client gets every event (counts, not timings)."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from collector import findings, semconv
from collector.extensions.api.config import StreamConfig
from collector.extensions.api.generated_metrics import API_STREAM_BATCHES_SKIPPED, API_STREAM_CLIENTS_CUT
from collector.extensions.api.query.sql import Scope
from collector.extensions.api.stream.hub import StreamFilter, StreamHub
from collector.tap import PipelineTap
from collector.telemetry import Telemetry
from tests.collector.extensions.api.world import WAIT_SECONDS, World, running_world, wait_until_stored
from tests.conftest import make_traces

CLIENT_BUFFER = 100
BATCH_SPANS = 50
# A span this large fills the slow client's socket buffers in a few hundred events.
PADDING = "x" * 10_000
MAX_BATCHES = 200


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    # A short keepalive lets a reader thread notice its close soon (it waits for the next line).
    stream = f"    stream:\n      client_buffer: {CLIENT_BUFFER}\n      max_clients: 3\n      keepalive: 100ms"
    yield from running_world(tmp_path_factory.mktemp("stream"), stream)


def _spans(count: int, service: str = "load", **attributes: Any) -> list[ReadableSpan]:
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("load")
    for _ in range(count):
        with tracer.start_as_current_span("work", attributes=attributes):
            pass
    provider.shutdown()
    return list(memory.get_finished_spans())


class SseReader:
    """An SSE client in a thread that reads everything and keeps the events it gets."""

    def __init__(self, world: World, **params: str) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.opened = threading.Event()
        self.changed = threading.Condition()
        self._response: httpx.Response | None = None
        self._closing = False
        headers = {"Authorization": f"Bearer {world.keys['admin']}"}
        self._thread = threading.Thread(target=self._read, args=(world, headers, params), daemon=True)
        self._thread.start()
        assert self.opened.wait(WAIT_SECONDS)

    def _read(self, world: World, headers: dict[str, str], params: dict[str, str]) -> None:
        with httpx.stream(
            "GET", world.base_url + "/api/v1/stream", headers=headers, params=params, timeout=WAIT_SECONDS
        ) as answer:
            self._response = answer
            kind = ""
            try:
                for line in answer.iter_lines():
                    if line == ": stream open":
                        self.opened.set()
                    elif line.startswith("event: "):
                        kind = line[len("event: ") :]
                    elif line.startswith("data: "):
                        with self.changed:
                            self.events.append((kind, json.loads(line[len("data: ") :])))
                            self.changed.notify_all()
            except httpx.HTTPError:
                if not self._closing:
                    raise

    def wait_for(self, count: int) -> list[tuple[str, dict[str, Any]]]:
        with self.changed:
            assert self.changed.wait_for(lambda: len(self.events) >= count, WAIT_SECONDS), self.events
            return list(self.events)

    def close(self) -> None:
        self._closing = True
        if self._response is not None:
            self._response.close()
        self._thread.join(WAIT_SECONDS)


def _slow_client(world: World) -> socket.socket:
    """An SSE client that asks for every event and never reads one, behind a small receive buffer."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    port = int(world.base_url.rsplit(":", 1)[1])
    sock.connect(("127.0.0.1", port))
    sock.settimeout(WAIT_SECONDS)
    request = (
        f"GET /api/v1/stream HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {world.keys['admin']}\r\n\r\n"
    )
    sock.sendall(request.encode())
    return sock


def _wait_for_clients(world: World, count: int) -> None:
    telemetry = world.service.service.telemetry
    deadline = time.monotonic() + WAIT_SECONDS
    while telemetry.value("genai_api_stream_clients") != count:
        assert time.monotonic() < deadline, f"the stream never had {count} clients"
        time.sleep(0.01)


def test_a_slow_client_is_cut_while_the_pipeline_takes_every_span(world: World) -> None:
    telemetry = world.service.service.telemetry
    exporter = OTLPSpanExporter(endpoint=f"http://127.0.0.1:{world.service.port()}/v1/traces", timeout=30)
    fast = SseReader(world, kind="span", service="load")
    slow = _slow_client(world)
    _wait_for_clients(world, 2)
    batches = 0
    sent = 0
    try:
        # Until the slow client is cut, then a few batches more: the pipeline goes on as before.
        extra = 3
        while extra > 0 and batches < MAX_BATCHES:
            assert exporter.export(_spans(BATCH_SPANS, padding=PADDING)) is SpanExportResult.SUCCESS
            batches += 1
            sent += BATCH_SPANS
            if telemetry.value(API_STREAM_CLIENTS_CUT.name, reason="slow") >= 1:
                extra -= 1
        world.sent_spans += sent
        assert telemetry.value(API_STREAM_CLIENTS_CUT.name, reason="slow") == 1
        # Every span sent was stored, and the fast client got every one of them.
        wait_until_stored(world)
        assert len(fast.wait_for(sent)) == sent
        assert telemetry.value(API_STREAM_BATCHES_SKIPPED.name) == 0
        # The slow client's connection ends: whatever it had not read, then the end of the stream.
        received = b""
        while chunk := slow.recv(65536):
            received += chunk
        assert received.startswith(b"HTTP/1.1 200 OK")
        _wait_for_clients(world, 1)
    finally:
        slow.close()
        fast.close()
        exporter.shutdown()


def test_events_match_the_filters_and_only_they_come(world: World) -> None:
    high = {findings.DETECTOR: "d", findings.CATEGORY: "c", findings.SEVERITY: "high", findings.CONFIDENCE: 0.5}
    low = {**high, findings.SEVERITY: "low"}
    reader = SseReader(world, service="filtered", model="gpt-4o", min_severity="high", kind="call,finding")
    exporter = OTLPSpanExporter(endpoint=f"http://127.0.0.1:{world.service.port()}/v1/traces", timeout=30)
    wanted = ""
    try:
        for service, model, event in [
            ("other", "gpt-4o", high),  # another service
            ("filtered", "gpt-4o-mini", high),  # another model
            ("filtered", "gpt-4o", low),  # not severe enough
            ("filtered", "gpt-4o", high),  # this one: its call and its finding
        ]:
            memory = InMemorySpanExporter()
            provider = TracerProvider(resource=Resource.create({"service.name": service}))
            provider.add_span_processor(SimpleSpanProcessor(memory))
            attributes = {
                semconv.OPERATION_NAME: "chat",
                semconv.REQUEST_MODEL: model,
                findings.FINDINGS_COUNT: 1,
                findings.FINDINGS_MAX_SEVERITY: event[findings.SEVERITY],
            }
            with provider.get_tracer("t").start_as_current_span(f"chat {model}", attributes=attributes) as span:
                span.add_event(findings.FINDING_EVENT, event)
            (sent,) = memory.get_finished_spans()
            provider.shutdown()
            assert exporter.export([sent]) is SpanExportResult.SUCCESS
            world.sent_spans += 1
            wanted = format(sent.context.span_id, "016x")
        events = reader.wait_for(2)
        assert [(kind, event["span_id"]) for kind, event in events] == [("call", wanted), ("finding", wanted)]
        assert events[0][1]["request_model"] == "gpt-4o" and events[1][1]["severity"] == "high"
    finally:
        reader.close()
        exporter.shutdown()


def test_clients_beyond_max_clients_are_turned_away(world: World) -> None:
    readers = [SseReader(world) for _ in range(3)]
    try:
        answer = world.get("/api/v1/stream")
        assert (answer.status_code, answer.json()["code"]) == (503, "stream_full")
    finally:
        for reader in readers:
            reader.close()


@pytest.mark.parametrize(("param", "value"), [("kind", "spans"), ("min_severity", "urgent")])
def test_stream_parameters_are_checked(world: World, param: str, value: str) -> None:
    answer = world.get("/api/v1/stream", **{param: value})
    assert (answer.status_code, answer.json()["parameter"]) == (400, param)


def test_the_hub_skips_and_counts_batches_beyond_its_backlog_instead_of_waiting() -> None:
    async def scenario() -> tuple[float, int]:
        telemetry = Telemetry()
        tap = PipelineTap()
        hub = StreamHub(StreamConfig(hub_batches=2), telemetry, logging.getLogger("test.hub"))
        hub.start(tap)
        client = hub.open(StreamFilter(Scope.everything()))
        for _ in range(5):
            tap.publish(make_traces(1))  # in the pipeline's path: returns at once, the hub has not run yet
        skipped = telemetry.value(API_STREAM_BATCHES_SKIPPED.name)
        await asyncio.sleep(0)  # let the pump run once
        await asyncio.sleep(0)
        delivered = 0
        while (event := await client.next(0.0)) is not None:
            delivered += event.kind == "span"
        await hub.stop()
        return skipped, delivered

    assert asyncio.run(asyncio.wait_for(scenario(), WAIT_SECONDS)) == (3, 2)
