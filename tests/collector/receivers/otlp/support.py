"""Helpers for the otlp receiver tests: run a scenario with a deadline, serve either transport on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import grpc
import httpx
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from collector.component import TracesConsumer
from collector.config.types import HostPort
from collector.httpserver import HttpServer
from collector.receivers.otlp.config import GrpcSettings, HttpSettings
from collector.receivers.otlp.grpc import GrpcReceiver
from collector.receivers.otlp.http import create_app
from collector.receivers.otlp.ingest import Ingest
from collector.telemetry import Telemetry

T = TypeVar("T")

RECEIVER = "otlp"
ANY_LOOPBACK_PORT = HostPort("127.0.0.1", 0)
SCENARIO_DEADLINE_SECONDS = 10.0
CLIENT_TIMEOUT_SECONDS = 5.0
EXPORT_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
SAMPLE_JSON = Path(__file__).resolve().parents[3] / "data" / "otlp_traces.json"


def run(scenario: Coroutine[Any, Any, T], deadline: float = SCENARIO_DEADLINE_SECONDS) -> T:
    """Run ``scenario`` on a fresh event loop, failing it if it takes longer than ``deadline`` seconds."""
    return asyncio.run(asyncio.wait_for(scenario, deadline))


def accepted(telemetry: Telemetry, transport: str) -> float:
    return telemetry.value("otelcol_receiver_accepted_spans", receiver=RECEIVER, transport=transport)


def refused(telemetry: Telemetry, transport: str) -> float:
    return telemetry.value("otelcol_receiver_refused_spans", receiver=RECEIVER, transport=transport)


@asynccontextmanager
async def http_receiver(
    consumer: TracesConsumer, telemetry: Telemetry, max_request_body_size: int | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    """The OTLP/HTTP app served by uvicorn on a free loopback port, and a client pointed at it."""
    settings = HttpSettings(endpoint=ANY_LOOPBACK_PORT)
    if max_request_body_size is not None:
        settings = HttpSettings(endpoint=ANY_LOOPBACK_PORT, max_request_body_size=max_request_body_size)
    server = HttpServer(create_app(settings, Ingest(consumer, telemetry, RECEIVER, "http")), settings)
    await server.start()
    try:
        assert server.port != 0
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{server.port}", timeout=CLIENT_TIMEOUT_SECONDS
        ) as client:
            yield client
    finally:
        await server.stop()


@asynccontextmanager
async def grpc_receiver(
    consumer: TracesConsumer,
    telemetry: Telemetry,
    settings: GrpcSettings | None = None,
    compression: grpc.Compression | None = None,
) -> AsyncIterator[grpc.aio.Channel]:
    """The OTLP/gRPC service on a free loopback port, and an insecure channel to it."""
    settings = settings or GrpcSettings(endpoint=ANY_LOOPBACK_PORT)
    receiver = GrpcReceiver(settings, Ingest(consumer, telemetry, RECEIVER, "grpc"))
    await receiver.start()
    try:
        assert receiver.port != 0
        async with grpc.aio.insecure_channel(f"127.0.0.1:{receiver.port}", compression=compression) as channel:
            yield channel
    finally:
        await receiver.stop()


def raw_export(channel: grpc.aio.Channel) -> grpc.aio.UnaryUnaryMultiCallable:
    """The Export method taking request bytes as they are, so a test can send what no stub would."""
    return channel.unary_unary(
        EXPORT_METHOD, request_serializer=None, response_deserializer=ExportTraceServiceResponse.FromString
    )
