"""OTLP/gRPC TraceService/Export served by grpc.aio on loopback: one test per status code it answers."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import TracesData

from collector.errors import ConsumeError, PermanentError, QueueFullError, RetryableError
from collector.receivers.otlp.config import GrpcSettings
from collector.telemetry import Telemetry
from tests.collector.receivers.otlp.support import (
    ANY_LOOPBACK_PORT,
    CLIENT_TIMEOUT_SECONDS,
    accepted,
    grpc_receiver,
    raw_export,
    refused,
    run,
)
from tests.conftest import RecordingConsumer, make_traces

STATUS_DETAILS_KEY = "grpc-status-details-bin"


@pytest.fixture
def telemetry() -> Telemetry:
    return Telemetry()


def _request(traces: TracesData) -> bytes:
    return ExportTraceServiceRequest(resource_spans=traces.resource_spans).SerializeToString()


def _export(
    recorder: RecordingConsumer,
    telemetry: Telemetry,
    body: bytes,
    settings: GrpcSettings | None = None,
    compression: grpc.Compression | None = None,
) -> ExportTraceServiceResponse | grpc.aio.AioRpcError:
    """The response to Export(body), or the error the call ended with."""

    async def scenario() -> ExportTraceServiceResponse | grpc.aio.AioRpcError:
        async with grpc_receiver(recorder, telemetry, settings, compression) as channel:
            try:
                response: ExportTraceServiceResponse = await raw_export(channel)(body, timeout=CLIENT_TIMEOUT_SECONDS)
                return response
            except grpc.aio.AioRpcError as error:
                return error

    return run(scenario())


def _error(outcome: ExportTraceServiceResponse | grpc.aio.AioRpcError) -> grpc.aio.AioRpcError:
    assert isinstance(outcome, grpc.aio.AioRpcError), f"expected an error status, got {outcome!r}"
    return outcome


def _status_details(error: grpc.aio.AioRpcError) -> status_pb2.Status | None:
    """The google.rpc.Status in the trailers, if the server sent one."""
    for key, value in error.trailing_metadata() or ():
        if key == STATUS_DETAILS_KEY:
            assert isinstance(value, bytes)
            return status_pb2.Status.FromString(value)
    return None


# --- OK ----------------------------------------------------------------------------------------------------------


def test_export_is_answered_ok_with_an_empty_response(recorder: RecordingConsumer, telemetry: Telemetry) -> None:
    traces = make_traces(3)

    outcome = _export(recorder, telemetry, _request(traces))

    assert outcome == ExportTraceServiceResponse()
    assert recorder.received == [traces]
    assert len(recorder.spans()) == 3
    assert accepted(telemetry, "grpc") == 3
    assert refused(telemetry, "grpc") == 0
    assert accepted(telemetry, "http") == 0


def test_gzip_compressed_export_is_accepted(recorder: RecordingConsumer, telemetry: Telemetry) -> None:
    traces = make_traces(5)

    outcome = _export(recorder, telemetry, _request(traces), compression=grpc.Compression.Gzip)

    assert outcome == ExportTraceServiceResponse()
    assert recorder.received == [traces]
    assert accepted(telemetry, "grpc") == 5


def test_export_with_a_typed_stub_is_accepted(recorder: RecordingConsumer, telemetry: Telemetry) -> None:
    traces = make_traces(2)

    async def scenario() -> ExportTraceServiceResponse:
        async with grpc_receiver(recorder, telemetry) as channel:
            export = channel.unary_unary(
                "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
                request_serializer=ExportTraceServiceRequest.SerializeToString,
                response_deserializer=ExportTraceServiceResponse.FromString,
            )
            request = ExportTraceServiceRequest(resource_spans=traces.resource_spans)
            response: ExportTraceServiceResponse = await export(request, timeout=CLIENT_TIMEOUT_SECONDS)
            return response

    assert run(scenario()) == ExportTraceServiceResponse()
    assert recorder.received == [traces]


def test_empty_export_is_answered_ok_without_reaching_the_pipeline(
    recorder: RecordingConsumer, telemetry: Telemetry
) -> None:
    recorder.fail_with = RetryableError("must not be asked")

    outcome = _export(recorder, telemetry, b"")

    assert outcome == ExportTraceServiceResponse()
    assert recorder.received == []
    assert (accepted(telemetry, "grpc"), refused(telemetry, "grpc")) == (0, 0)


# --- INVALID_ARGUMENT --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("body", [b"\xff\xff\xff", b"\x0a\x05ab", b"this is not a protobuf message"])
def test_invalid_protobuf_is_answered_invalid_argument(
    recorder: RecordingConsumer, telemetry: Telemetry, body: bytes
) -> None:
    error = _error(_export(recorder, telemetry, body))

    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (error.details() or "").startswith("invalid protobuf message: ")
    assert recorder.received == []
    assert (accepted(telemetry, "grpc"), refused(telemetry, "grpc")) == (0, 0)


def test_permanent_pipeline_error_is_answered_invalid_argument(
    recorder: RecordingConsumer, telemetry: Telemetry
) -> None:
    recorder.fail_with = PermanentError("rejected by policy")

    error = _error(_export(recorder, telemetry, _request(make_traces(3))))

    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == "rejected by policy"
    assert _status_details(error) is None
    assert accepted(telemetry, "grpc") == 0
    assert refused(telemetry, "grpc") == 3


# --- UNAVAILABLE -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "delay"),
    [
        (RetryableError("store restarting", retry_after=1.5), Duration(seconds=1, nanos=500_000_000)),
        (RetryableError("store restarting", retry_after=30), Duration(seconds=30)),
        (QueueFullError("sending queue is full (8 of 10 spans held)", retry_after=1.0), Duration(seconds=1)),
    ],
)
def test_retryable_pipeline_error_is_answered_unavailable_with_retry_info(
    recorder: RecordingConsumer, telemetry: Telemetry, error: ConsumeError, delay: Duration
) -> None:
    recorder.fail_with = error

    rpc_error = _error(_export(recorder, telemetry, _request(make_traces(3))))

    assert rpc_error.code() == grpc.StatusCode.UNAVAILABLE
    assert rpc_error.details() == str(error)
    status = _status_details(rpc_error)
    assert status is not None
    assert status.code == grpc.StatusCode.UNAVAILABLE.value[0]
    assert status.message == str(error)
    assert len(status.details) == 1
    retry_info = error_details_pb2.RetryInfo()
    assert status.details[0].Unpack(retry_info)
    assert retry_info.retry_delay == delay
    assert accepted(telemetry, "grpc") == 0
    assert refused(telemetry, "grpc") == 3


def test_retryable_error_without_a_delay_is_answered_unavailable_without_retry_info(
    recorder: RecordingConsumer, telemetry: Telemetry
) -> None:
    recorder.fail_with = QueueFullError("the exporter is shutting down")

    error = _error(_export(recorder, telemetry, _request(make_traces(2))))

    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert error.details() == "the exporter is shutting down"
    assert _status_details(error) is None
    assert refused(telemetry, "grpc") == 2


# --- RESOURCE_EXHAUSTED ------------------------------------------------------------------------------------------


def test_message_over_max_recv_msg_size_is_answered_resource_exhausted(
    recorder: RecordingConsumer, telemetry: Telemetry
) -> None:
    settings = GrpcSettings(endpoint=ANY_LOOPBACK_PORT, max_recv_msg_size_mib=1)
    traces = make_traces(1, name="x" * (1024 * 1024 + 1))

    error = _error(_export(recorder, telemetry, _request(traces), settings))

    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert recorder.received == []
