"""The whole ``otlp`` receiver: both transports on real loopback sockets, lifecycle, and ports already in use."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator, Mapping

import grpc
import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from collector.component import ComponentID, ComponentSettings, Exporter, Host
from collector.config.types import HostPort
from collector.httpserver import ListenError, bind_socket
from collector.receivers.otlp import OtlpReceiver, factory
from collector.receivers.otlp.codec import JSON, PROTOBUF
from collector.receivers.otlp.config import GrpcSettings, HttpSettings, OtlpReceiverConfig, Protocols
from tests.collector.receivers.otlp.support import (
    ANY_LOOPBACK_PORT,
    CLIENT_TIMEOUT_SECONDS,
    SAMPLE_JSON,
    accepted,
    raw_export,
    refused,
    run,
)
from tests.conftest import RecordingConsumer, make_traces


class _EmptyHost:
    """A running service with no exporters; the otlp receiver never asks its host for anything."""

    @property
    def exporters(self) -> Mapping[ComponentID, Exporter]:
        return {}


HOST: Host = _EmptyHost()


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A loopback port another socket is listening on for the duration of the test."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen(1)
        yield int(blocker.getsockname()[1])


def _config(
    grpc_endpoint: HostPort | None = ANY_LOOPBACK_PORT, http_endpoint: HostPort | None = ANY_LOOPBACK_PORT
) -> OtlpReceiverConfig:
    return OtlpReceiverConfig(
        protocols=Protocols(
            grpc=GrpcSettings(endpoint=grpc_endpoint) if grpc_endpoint is not None else None,
            http=HttpSettings(endpoint=http_endpoint) if http_endpoint is not None else None,
        )
    )


def test_both_transports_feed_the_pipeline_and_count_per_transport(
    recorder: RecordingConsumer, make_settings: Callable[..., ComponentSettings]
) -> None:
    settings = make_settings("otlp", "receiver")
    receiver = OtlpReceiver(settings, _config(), recorder)
    grpc_traces = make_traces(2, service="via-grpc")

    async def scenario() -> tuple[int, int, ExportTraceServiceResponse]:
        await receiver.start(HOST)
        try:
            assert receiver.http is not None and receiver.grpc is not None
            assert receiver.http.port != 0 and receiver.grpc.port != 0
            assert receiver.http.port != receiver.grpc.port
            async with httpx.AsyncClient(timeout=CLIENT_TIMEOUT_SECONDS) as client:
                url = f"http://127.0.0.1:{receiver.http.port}/v1/traces"
                as_json = await client.post(url, content=SAMPLE_JSON.read_bytes(), headers={"Content-Type": JSON})
                as_protobuf = await client.post(
                    url, content=make_traces(4).SerializeToString(), headers={"Content-Type": PROTOBUF}
                )
            async with grpc.aio.insecure_channel(f"127.0.0.1:{receiver.grpc.port}") as channel:
                request = ExportTraceServiceRequest(resource_spans=grpc_traces.resource_spans)
                response = await raw_export(channel)(request.SerializeToString(), timeout=CLIENT_TIMEOUT_SECONDS)
            return as_json.status_code, as_protobuf.status_code, response
        finally:
            await receiver.shutdown()

    assert run(scenario()) == (200, 200, ExportTraceServiceResponse())
    assert len(recorder.received) == 3
    assert len(recorder.spans()) == 3 + 4 + 2
    assert recorder.received[2] == grpc_traces
    assert accepted(settings.telemetry, "http") == 7
    assert accepted(settings.telemetry, "grpc") == 2
    assert (refused(settings.telemetry, "http"), refused(settings.telemetry, "grpc")) == (0, 0)


def test_factory_builds_the_receiver(
    recorder: RecordingConsumer, make_settings: Callable[..., ComponentSettings]
) -> None:
    receiver = factory.create(make_settings("otlp", "receiver"), _config(), recorder)

    assert factory.type == "otlp"
    assert isinstance(receiver, OtlpReceiver)


def test_shutdown_is_safe_before_start_and_twice(
    recorder: RecordingConsumer, make_settings: Callable[..., ComponentSettings]
) -> None:
    receiver = OtlpReceiver(make_settings("otlp", "receiver"), _config(), recorder)

    async def scenario() -> None:
        await receiver.shutdown()
        await receiver.start(HOST)
        await receiver.shutdown()
        await receiver.shutdown()

    run(scenario())


def test_shutdown_releases_both_ports(
    recorder: RecordingConsumer, make_settings: Callable[..., ComponentSettings]
) -> None:
    receiver = OtlpReceiver(make_settings("otlp", "receiver"), _config(), recorder)

    async def scenario() -> tuple[int, int]:
        await receiver.start(HOST)
        assert receiver.http is not None and receiver.grpc is not None
        ports = receiver.http.port, receiver.grpc.port
        await receiver.shutdown()
        return ports

    for port in run(scenario()):
        bind_socket(HostPort("127.0.0.1", port)).close()  # raises ListenError if still held


def test_only_the_configured_transport_listens(
    recorder: RecordingConsumer, make_settings: Callable[..., ComponentSettings]
) -> None:
    receiver = OtlpReceiver(make_settings("otlp", "receiver"), _config(grpc_endpoint=None), recorder)

    async def scenario() -> int:
        await receiver.start(HOST)
        try:
            assert receiver.http is not None
            async with httpx.AsyncClient(timeout=CLIENT_TIMEOUT_SECONDS) as client:
                response = await client.post(
                    f"http://127.0.0.1:{receiver.http.port}/v1/traces",
                    content=make_traces(1).SerializeToString(),
                    headers={"Content-Type": PROTOBUF},
                )
            return response.status_code
        finally:
            await receiver.shutdown()

    assert receiver.grpc is None
    assert run(scenario()) == 200
    assert len(recorder.spans()) == 1


def test_http_port_in_use_is_a_listen_error_and_grpc_is_stopped(
    recorder: RecordingConsumer, make_settings: Callable[..., ComponentSettings], busy_port: int
) -> None:
    receiver = OtlpReceiver(
        make_settings("otlp", "receiver"), _config(http_endpoint=HostPort("127.0.0.1", busy_port)), recorder
    )

    async def scenario() -> int:
        with pytest.raises(ListenError) as refused_start:
            await receiver.start(HOST)
        assert str(refused_start.value) == f"127.0.0.1:{busy_port} is already in use"
        assert receiver.grpc is not None
        return receiver.grpc.port

    grpc_port = run(scenario())

    assert grpc_port != 0
    bind_socket(HostPort("127.0.0.1", grpc_port)).close()  # the gRPC listener was let go


def test_grpc_port_in_use_is_a_listen_error(
    recorder: RecordingConsumer, make_settings: Callable[..., ComponentSettings], busy_port: int
) -> None:
    receiver = OtlpReceiver(
        make_settings("otlp", "receiver"), _config(grpc_endpoint=HostPort("127.0.0.1", busy_port)), recorder
    )

    async def scenario() -> None:
        with pytest.raises(ListenError) as refused_start:
            await receiver.start(HOST)
        assert str(refused_start.value) == f"127.0.0.1:{busy_port} is already in use"
        await receiver.shutdown()

    run(scenario())


def test_two_receivers_cannot_share_a_port(
    recorder: RecordingConsumer, make_settings: Callable[..., ComponentSettings]
) -> None:
    first = OtlpReceiver(make_settings("otlp", "receiver"), _config(), recorder)

    async def scenario() -> None:
        await first.start(HOST)
        try:
            assert first.http is not None and first.grpc is not None
            for clash in (
                _config(grpc_endpoint=None, http_endpoint=HostPort("127.0.0.1", first.http.port)),
                _config(grpc_endpoint=HostPort("127.0.0.1", first.grpc.port), http_endpoint=None),
            ):
                second = OtlpReceiver(make_settings("otlp/second", "receiver"), clash, recorder)
                with pytest.raises(ListenError):
                    await second.start(HOST)
                await second.shutdown()
        finally:
            await first.shutdown()

    run(scenario())
