"""OTLP/gRPC traces service (opentelemetry.proto.collector.trace.v1.TraceService/Export) on grpc.aio.

The request is taken as raw bytes and parsed here, so an undecodable message is
answered INVALID_ARGUMENT rather than grpc's generic INTERNAL. A retryable
pipeline error is UNAVAILABLE with a RetryInfo detail when a delay is known
(RESOURCE_EXHAUSTED with RetryInfo when the memory limiter asks clients to slow
down). A request with too many messages is INVALID_ARGUMENT: OTLP clients drop
it rather than retry; spans over a per-span limit are reported in a partial success.
"""

from __future__ import annotations

import grpc
from google.protobuf.duration_pb2 import Duration as DurationProto
from google.protobuf.message import DecodeError
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceResponse,
)

from collector.component import TracesData
from collector.errors import ConsumeError, status_for
from collector.grpcserver import NO_PORT_SHARING, start_insecure
from collector.receivers.otlp.codec import PROTOBUF
from collector.receivers.otlp.config import GrpcSettings
from collector.receivers.otlp.ingest import Ingest
from collector.receivers.otlp.limits import TooManyMessages, check_counts, check_encoded_counts

SERVICE_NAME = "opentelemetry.proto.collector.trace.v1.TraceService"
METHOD_NAME = "Export"
GRACEFUL_SHUTDOWN_SECONDS = 10.0
BYTES_PER_MIB = 1024 * 1024


class GrpcReceiver:
    """A grpc.aio server exposing the OTLP trace service."""

    def __init__(self, settings: GrpcSettings, ingest: Ingest) -> None:
        self._settings = settings
        self._ingest = ingest
        self._server: grpc.aio.Server | None = None
        self.port = settings.endpoint.port

    async def start(self) -> None:
        max_bytes = self._settings.max_recv_msg_size_mib * BYTES_PER_MIB
        server = grpc.aio.server(options=[("grpc.max_receive_message_length", max_bytes), NO_PORT_SHARING])
        handler = grpc.unary_unary_rpc_method_handler(
            self._export,
            request_deserializer=None,
            response_serializer=ExportTraceServiceResponse.SerializeToString,
        )
        server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(SERVICE_NAME, {METHOD_NAME: handler})])
        self.port = await start_insecure(server, self._settings.endpoint)
        self._server = server

    @property
    def serving(self) -> bool:
        return self._server is not None

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.stop(GRACEFUL_SHUTDOWN_SECONDS)
            self._server = None

    async def _export(self, request: bytes, context: grpc.aio.ServicerContext) -> ExportTraceServiceResponse:
        limits = self._ingest.limits
        try:
            check_encoded_counts(request, PROTOBUF, limits)
            traces = TracesData.FromString(request)
            check_counts(traces, limits)
        except DecodeError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"invalid protobuf message: {exc}")
        except TooManyMessages as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        try:
            rejection = await self._ingest(traces)
        except ConsumeError as exc:
            code = status_for(exc).grpc_code
            metadata: tuple[tuple[str, bytes], ...] = ()
            if exc.retryable and exc.retry_after is not None:
                metadata = (("grpc-status-details-bin", _retry_info(code, str(exc), exc.retry_after)),)
            await context.abort(code, str(exc), trailing_metadata=metadata)
        if rejection is None:
            return ExportTraceServiceResponse()
        return ExportTraceServiceResponse(
            partial_success=ExportTracePartialSuccess(rejected_spans=rejection.spans, error_message=rejection.message)
        )


def _retry_info(code: grpc.StatusCode, message: str, retry_after: float) -> bytes:
    """A google.rpc.Status carrying RetryInfo, as OTLP clients read it."""
    delay = DurationProto(seconds=int(retry_after), nanos=int((retry_after % 1) * 1e9))
    detail = error_details_pb2.RetryInfo(retry_delay=delay)
    status = status_pb2.Status(code=code.value[0], message=message)
    status.details.add().Pack(detail)
    encoded: bytes = status.SerializeToString()
    return encoded
