"""The receiver's listener settings: bytes in flight answered as OTLP throttling, gRPC read timeout, config."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import httpx
import pytest
from google.rpc import code_pb2, error_details_pb2, status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from collector.component import TracesData
from collector.config.decode import decode
from collector.config.problems import ConfigError
from collector.httpserver import HttpServer
from collector.listeners.generated_metrics import LISTENER_REQUESTS_REFUSED, LISTENER_TIMEOUTS
from collector.listeners.metrics import BODY, IN_FLIGHT
from collector.listeners.settings import AdmissionSettings, KeepaliveSettings
from collector.receivers.otlp.codec import JSON, PROTOBUF
from collector.receivers.otlp.config import GrpcSettings, HttpSettings, OtlpReceiverConfig
from collector.receivers.otlp.grpc import GrpcReceiver, server_options
from collector.receivers.otlp.http import create_app
from collector.receivers.otlp.ingest import Ingest
from collector.telemetry import Telemetry
from tests.collector.receivers.otlp.support import ANY_LOOPBACK_PORT, EXPORT_METHOD, RECEIVER, raw_export, run
from tests.conftest import make_traces

MIB = 1024 * 1024
CLIENT_TIMEOUT_SECONDS = 10.0
STATUS_DETAILS_KEY = "grpc-status-details-bin"


class HoldingConsumer:
    """Holds every batch until ``release`` is set, so a request stays in flight as long as a test needs."""

    def __init__(self) -> None:
        self.holding = asyncio.Event()
        self.release = asyncio.Event()

    async def consume(self, traces: TracesData) -> None:
        self.holding.set()
        await self.release.wait()


def _refused(telemetry: Telemetry, transport: str) -> float:
    return telemetry.value(LISTENER_REQUESTS_REFUSED.name, listener=RECEIVER, transport=transport, reason=IN_FLIGHT)


@pytest.mark.parametrize("content_type", [PROTOBUF, JSON])
def test_an_http_request_the_bytes_in_flight_cannot_hold_is_answered_503_with_retry_after(content_type: str) -> None:
    telemetry = Telemetry()
    settings = HttpSettings(
        endpoint=ANY_LOOPBACK_PORT, max_request_body_size=MIB, admission=AdmissionSettings(request_limit_mib=1)
    )
    held = make_traces(2000, name="n" * 300).SerializeToString()
    assert MIB // 2 < len(held) < MIB  # two of them do not fit in the 1 MiB budget
    consumer = HoldingConsumer()

    async def scenario() -> tuple[httpx.Response, httpx.Response]:
        app = create_app(settings, Ingest(consumer, telemetry, RECEIVER, "http"))
        server = HttpServer(app, settings, listener=RECEIVER, telemetry=telemetry)
        await server.start()
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}", timeout=10) as client:
                headers = {"Content-Type": PROTOBUF}
                first = asyncio.ensure_future(client.post("/v1/traces", content=held, headers=headers))
                await consumer.holding.wait()
                refused = await client.post("/v1/traces", content=held, headers={"Content-Type": content_type})
                consumer.release.set()
                return refused, await first
        finally:
            consumer.release.set()
            await server.stop()

    refused, first = run(scenario())

    assert refused.status_code == 503
    assert refused.headers["retry-after"] == "1"
    assert refused.headers["content-type"] == content_type
    if content_type == PROTOBUF:
        status = status_pb2.Status.FromString(refused.content)
        assert status.code == code_pb2.UNAVAILABLE
        assert "bytes of requests in flight" in status.message
    assert first.status_code == 200
    assert _refused(telemetry, "http") == 1


def test_a_grpc_call_the_bytes_in_flight_cannot_hold_is_refused_unavailable_with_retry_info() -> None:
    telemetry = Telemetry()
    # The budget is one largest message: while a call is in flight, the next cannot be read.
    settings = GrpcSettings(
        endpoint=ANY_LOOPBACK_PORT, max_recv_msg_size_mib=1, admission=AdmissionSettings(request_limit_mib=1)
    )
    consumer = HoldingConsumer()
    body = make_traces(5).SerializeToString()

    async def scenario() -> tuple[grpc.aio.AioRpcError, ExportTraceServiceResponse]:
        receiver = GrpcReceiver(settings, Ingest(consumer, telemetry, RECEIVER, "grpc"))
        await receiver.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{receiver.port}") as channel:
                export = raw_export(channel)
                first = asyncio.ensure_future(export(body, timeout=CLIENT_TIMEOUT_SECONDS))
                await consumer.holding.wait()
                with pytest.raises(grpc.aio.AioRpcError) as refused:
                    await export(body, timeout=CLIENT_TIMEOUT_SECONDS)
                consumer.release.set()
                return refused.value, await first
        finally:
            consumer.release.set()
            await receiver.stop()

    error, first = run(scenario())

    assert error.code() == grpc.StatusCode.UNAVAILABLE
    details = status_pb2.Status.FromString(dict(error.trailing_metadata() or ())[STATUS_DETAILS_KEY])
    retry = error_details_pb2.RetryInfo()
    assert details.details[0].Unpack(retry)
    assert retry.retry_delay.seconds == 1
    assert first == ExportTraceServiceResponse()
    assert _refused(telemetry, "grpc") == 1


def test_a_grpc_call_whose_message_does_not_arrive_within_read_timeout_ends_deadline_exceeded() -> None:
    telemetry = Telemetry()
    settings = GrpcSettings(endpoint=ANY_LOOPBACK_PORT, read_timeout=0.5)  # type: ignore[arg-type]
    never = asyncio.Event()

    async def no_message() -> AsyncIterator[bytes]:
        await never.wait()
        yield b""  # pragma: no cover

    async def scenario() -> grpc.aio.AioRpcError:
        receiver = GrpcReceiver(settings, Ingest(HoldingConsumer(), telemetry, RECEIVER, "grpc"))
        await receiver.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{receiver.port}") as channel:
                call = channel.stream_unary(EXPORT_METHOD)
                with pytest.raises(grpc.aio.AioRpcError) as ended:
                    await call(no_message(), timeout=CLIENT_TIMEOUT_SECONDS)
                return ended.value
        finally:
            never.set()
            await receiver.stop()

    error = run(scenario())

    assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert "read_timeout" in (error.details() or "")
    assert telemetry.value(LISTENER_TIMEOUTS.name, listener=RECEIVER, transport="grpc", phase=BODY) == 1
    assert telemetry.value("genai_listener_bytes_in_flight", listener=RECEIVER, transport="grpc") == 0


def test_grpc_settings_become_grpc_channel_arguments() -> None:
    settings = decode(
        GrpcSettings,
        {
            "max_concurrent_streams": 10,
            "handshake_timeout": "2s",
            "keepalive": {
                "server_parameters": {"max_connection_idle": "1m", "max_connection_age": "2h", "time": "30s"},
                "enforcement_policy": {"min_time": "10s", "permit_without_stream": True},
            },
        },
        "receivers.otlp.protocols.grpc",
    )

    options = dict(server_options(settings, max_connections=42))

    assert options["grpc.max_concurrent_streams"] == 10
    assert options["grpc.max_allowed_incoming_connections"] == 42
    assert options["grpc.server_handshake_timeout_ms"] == 2000
    assert options["grpc.max_connection_idle_ms"] == 60_000
    assert options["grpc.max_connection_age_ms"] == 7_200_000
    assert options["grpc.keepalive_time_ms"] == 30_000
    assert options["grpc.http2.min_ping_interval_without_data_ms"] == 10_000
    assert options["grpc.keepalive_permit_without_calls"] == 1
    assert options["grpc.http2.bdp_probe"] == 0
    assert settings.keepalive != KeepaliveSettings()


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        (
            {"protocols": {"http": {"read_header_timeout": 0}}},
            "receivers.otlp.protocols.http.read_header_timeout: must be more than 0",
        ),
        (
            {"protocols": {"http": {"max_connections": 0}}},
            "receivers.otlp.protocols.http.max_connections: must be at least 1",
        ),
        (
            {"protocols": {"http": {"admission": {"request_limit_mib": 8}}}},
            "receivers.otlp.protocols.http.admission.request_limit_mib: must hold at least max_request_body_size "
            "(20971520 bytes), or the largest request could never be read",
        ),
        (
            {"protocols": {"grpc": {"admission": {"request_limit_mib": 2}}}},
            "receivers.otlp.protocols.grpc.admission.request_limit_mib: must be at least max_recv_msg_size_mib (4), "
            "or no request could be read",
        ),
        (
            {"protocols": {"grpc": {"keepalive": {"server_parameters": {"max_connection_age_grace": "-1s"}}}}},
            "receivers.otlp.protocols.grpc.keepalive.server_parameters.max_connection_age_grace: expected a duration "
            'like 72h, got "-1s"',
        ),
        (
            {"protocols": {"grpc": {"max_concurrent_streams": 0}}},
            "receivers.otlp.protocols.grpc.max_concurrent_streams: must be at least 1",
        ),
    ],
)
def test_each_listener_setting_mistake_is_one_line(raw: dict[str, object], problem: str) -> None:
    with pytest.raises(ConfigError) as raised:
        decode(OtlpReceiverConfig, raw, "receivers.otlp")
    assert [str(p) for p in raised.value.problems] == [problem]
