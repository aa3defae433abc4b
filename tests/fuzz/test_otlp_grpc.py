"""Fuzz the OTLP/gRPC Export handler with raw request bytes, as grpc.aio hands them over.

The handler the server registers (``GrpcReceiver._export``, a client-stream
handler with request_deserializer None) is called directly with the request as
a stream of one message and a stand-in context: every input is either
accepted (an ExportTraceServiceResponse) or aborted with INVALID_ARGUMENT and a
message, never another status and never an exception escaping the handler
(grpc would turn that into UNKNOWN). The logs and metrics services get the same,
through one handler serving every signal. A handful of inputs also go through a
real server on loopback, for each signal's service.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from collector.receivers.otlp.config import GrpcSettings
from collector.receivers.otlp.grpc import GrpcReceiver
from collector.receivers.otlp.ingest import Ingest
from collector.receivers.otlp.services import SERVICES
from collector.signals import SIGNALS, Signal
from collector.telemetry import Telemetry
from tests.collector.receivers.otlp.support import ANY_LOOPBACK_PORT, grpc_receiver, raw_export, run
from tests.conftest import RecordingConsumer
from tests.fuzz.otlp_inputs import SIGNAL_DATA, mutated_bytes, traces_data
from tests.fuzz.profiles import fuzz_settings

CALL_TIMEOUT_SECONDS = 5.0


class Aborted(Exception):
    """What grpc.aio's context.abort raises, so the handler stops where it aborts."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(code, details)
        self.code = code
        self.details = details


class StandInContext:
    """The part of grpc.aio.ServicerContext the handler uses."""

    async def abort(self, code: grpc.StatusCode, details: str = "", trailing_metadata: Any = ()) -> None:
        raise Aborted(code, details)


def _handler() -> GrpcReceiver:
    return GrpcReceiver(
        GrpcSettings(endpoint=ANY_LOOPBACK_PORT), Ingest(RecordingConsumer(), Telemetry(), "otlp", "grpc")
    )


async def _one_message(request: bytes) -> AsyncIterator[bytes]:
    yield request


def export_outcome(request: bytes) -> grpc.StatusCode:
    """OK, or the status the handler aborted with (checked to carry a message)."""

    async def call() -> grpc.StatusCode:
        try:
            response = await _handler()._export(_one_message(request), StandInContext())
        except Aborted as aborted:
            assert aborted.details, "an abort must say why"
            return aborted.code
        assert isinstance(response, ExportTraceServiceResponse)
        return grpc.StatusCode.OK

    return asyncio.run(call())


@fuzz_settings(200)
@given(st.binary(max_size=512))
def test_random_bytes_are_accepted_or_invalid_argument(request: bytes) -> None:
    assert export_outcome(request) in (grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT)


@fuzz_settings(100)
@given(st.data())
def test_mutated_messages_are_accepted_or_invalid_argument(data: st.DataObject) -> None:
    request = data.draw(mutated_bytes(data.draw(traces_data()).SerializeToString()))
    assert export_outcome(request) in (grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT)


@fuzz_settings(10)
@given(st.lists(st.binary(max_size=256), min_size=5, max_size=5))
def test_random_bytes_through_a_real_server(requests: list[bytes]) -> None:
    async def scenario() -> list[grpc.StatusCode]:
        codes = []
        async with grpc_receiver(RecordingConsumer(), Telemetry()) as channel:
            export = raw_export(channel)
            for request in requests:
                try:
                    await export(request, timeout=CALL_TIMEOUT_SECONDS)
                    codes.append(grpc.StatusCode.OK)
                except grpc.aio.AioRpcError as error:
                    assert error.details()
                    codes.append(error.code())
        return codes

    assert set(run(scenario())) <= {grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT}


OTHER_SIGNALS: tuple[Signal, ...] = ("logs", "metrics")


def signal_export_outcome(request: bytes, signal: Signal) -> grpc.StatusCode:
    """As ``export_outcome``, for ``signal``'s Export service of a receiver serving every signal."""

    async def call() -> grpc.StatusCode:
        telemetry = Telemetry()
        ingests = {one: Ingest(RecordingConsumer(), telemetry, "otlp", "grpc", signal=one) for one in SIGNALS}
        receiver = GrpcReceiver(GrpcSettings(endpoint=ANY_LOOPBACK_PORT), *ingests.values())
        try:
            response = await receiver._export(_one_message(request), StandInContext(), ingests[signal])
        except Aborted as aborted:
            assert aborted.details, "an abort must say why"
            return aborted.code
        assert isinstance(response, SERVICES[signal].response_type)
        return grpc.StatusCode.OK

    return asyncio.run(call())


@pytest.mark.parametrize("signal", OTHER_SIGNALS)
@fuzz_settings(100)
@given(request=st.binary(max_size=512))
def test_logs_and_metrics_random_bytes_are_accepted_or_invalid_argument(signal: Signal, request: bytes) -> None:
    assert signal_export_outcome(request, signal) in (grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT)


@pytest.mark.parametrize("signal", OTHER_SIGNALS)
@fuzz_settings(100)
@given(data=st.data())
def test_logs_and_metrics_mutated_messages_are_accepted_or_invalid_argument(
    signal: Signal, data: st.DataObject
) -> None:
    request = data.draw(mutated_bytes(data.draw(SIGNAL_DATA[signal]).SerializeToString()))
    assert signal_export_outcome(request, signal) in (grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT)


@pytest.mark.parametrize("signal", OTHER_SIGNALS)
@fuzz_settings(5)
@given(data=st.data())
def test_logs_and_metrics_through_a_real_server(signal: Signal, data: st.DataObject) -> None:
    valid = data.draw(SIGNAL_DATA[signal]).SerializeToString()
    requests = [valid, *data.draw(st.lists(st.binary(max_size=256), min_size=4, max_size=4))]
    service = SERVICES[signal]

    async def scenario() -> list[grpc.StatusCode]:
        codes = []
        telemetry = Telemetry()
        receiver = GrpcReceiver(
            GrpcSettings(endpoint=ANY_LOOPBACK_PORT),
            *(Ingest(RecordingConsumer(), telemetry, "otlp", "grpc", signal=one) for one in SIGNALS),
        )
        await receiver.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{receiver.port}") as channel:
                export = channel.unary_unary(
                    service.grpc_method, request_serializer=None, response_deserializer=service.response_type.FromString
                )
                for request in requests:
                    try:
                        await export(request, timeout=CALL_TIMEOUT_SECONDS)
                        codes.append(grpc.StatusCode.OK)
                    except grpc.aio.AioRpcError as error:
                        assert error.details()
                        codes.append(error.code())
        finally:
            await receiver.stop()
        return codes

    codes = run(scenario())
    assert codes[0] == grpc.StatusCode.OK  # the valid message, at its own service
    assert set(codes) <= {grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT}
