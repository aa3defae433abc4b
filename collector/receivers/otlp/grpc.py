"""OTLP/gRPC Export services on grpc.aio: TraceService, LogsService and MetricsService, one handler for all.

The request is taken as raw bytes and parsed here, so an undecodable message is
answered INVALID_ARGUMENT rather than grpc's generic INTERNAL. A retryable
pipeline error is UNAVAILABLE with a RetryInfo detail when a delay is known
(RESOURCE_EXHAUSTED with RetryInfo when the memory limiter asks clients to slow
down). A request with too many messages is INVALID_ARGUMENT: OTLP clients drop
it rather than retry; spans over a per-span limit are reported in a partial success.

The method is served as a client stream of one message, so the handler decides
before the message is read: a call the listener's bytes in flight cannot hold
(``admission``) is refused UNAVAILABLE with RetryInfo without reading it, and a
message not received within ``read_timeout`` ends the call DEADLINE_EXCEEDED.
grpc's BDP probing is off, so a call not being read holds no more than its
HTTP/2 window: memory follows what is admitted, not what clients send at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import NoReturn

import grpc
from google.protobuf.duration_pb2 import Duration as DurationProto
from google.protobuf.message import DecodeError, Message
from google.rpc import error_details_pb2, status_pb2

from collector.errors import ConsumeError, status_for
from collector.grpcserver import server_options, start_insecure
from collector.listeners.descriptors import CAPACITY
from collector.listeners.inflight import InFlightBudget, Overloaded
from collector.listeners.metrics import BODY, ListenerMetrics
from collector.receivers.otlp.codec import PROTOBUF
from collector.receivers.otlp.config import GrpcSettings
from collector.receivers.otlp.ingest import Ingest
from collector.receivers.otlp.limits import TooManyMessages, check_counts, check_encoded_counts
from collector.receivers.otlp.services import EXPORT_METHOD, SERVICES
from collector.signals import SIGNAL_KINDS

GRACEFUL_SHUTDOWN_SECONDS = 10.0


class GrpcReceiver:
    """A grpc.aio server exposing the OTLP Export service of each ingest's signal."""

    def __init__(self, settings: GrpcSettings, ingest: Ingest, *more: Ingest) -> None:
        self._settings = settings
        self._ingests = {one.signal: one for one in (ingest, *more)}
        self._server: grpc.aio.Server | None = None
        self._connections = 0
        self.metrics = ListenerMetrics(ingest.telemetry, ingest.receiver, "grpc")
        self._budget = InFlightBudget(settings.admission.request_limit_bytes, self.metrics)
        self.port = settings.endpoint.port

    def serve(self, ingest: Ingest) -> None:
        """Serve ``ingest``'s signal too; before start."""
        self._ingests[ingest.signal] = ingest

    async def start(self) -> None:
        endpoint = self._settings.endpoint
        self._connections = CAPACITY.hold(self._settings.max_connections, f"OTLP/gRPC listener on {endpoint}")
        try:
            await self._start()
        except BaseException:
            CAPACITY.unhold(self._connections)
            self._connections = 0
            raise

    async def _start(self) -> None:
        server = grpc.aio.server(options=server_options(self._settings, self._connections))
        for ingest in self._ingests.values():

            async def export(
                requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext, ingest: Ingest = ingest
            ) -> Message:
                return await self._export(requests, context, ingest)

            handler = grpc.stream_unary_rpc_method_handler(
                export, request_deserializer=None, response_serializer=_serialize
            )
            service = SERVICES[ingest.signal].grpc_service
            server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(service, {EXPORT_METHOD: handler})])
        self.port = await start_insecure(server, self._settings.endpoint)
        self._server = server

    @property
    def serving(self) -> bool:
        return self._server is not None

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.stop(GRACEFUL_SHUTDOWN_SECONDS)
            self._server = None
            CAPACITY.unhold(self._connections)
            self._connections = 0

    async def _export(
        self, requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext, ingest: Ingest | None = None
    ) -> Message:
        """One Export call of ``ingest``'s signal (the first ingest's when not given)."""
        ingest = ingest or next(iter(self._ingests.values()))
        with self._budget.admit() as share:
            try:
                # Until it is read, a message may be as large as grpc lets it be.
                share.take(self._settings.max_recv_msg_size)
            except Overloaded as exc:
                details = (
                    ("grpc-status-details-bin", _retry_info(grpc.StatusCode.UNAVAILABLE, str(exc), exc.retry_after)),
                )
                await _abort(context, grpc.StatusCode.UNAVAILABLE, str(exc), trailing_metadata=details)
            request = await self._read_message(requests, context)
            share.resize(len(request))
            return await self._handle(ingest, request, context)

    async def _read_message(self, requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext) -> bytes:
        try:
            async with asyncio.timeout(self._settings.read_timeout):
                request = await anext(requests, None)
        except TimeoutError:
            self.metrics.timed_out(BODY)
            await _abort(
                context,
                grpc.StatusCode.DEADLINE_EXCEEDED,
                f"the request message was not received within {self._settings.read_timeout:g}s (read_timeout)",
            )
        if request is None:
            # grpc has ended the call already (a message over max_recv_msg_size, a cancelled client).
            # grpc ends a call whose message is over max_recv_msg_size itself, and its status stands.
            await _abort(context, grpc.StatusCode.INVALID_ARGUMENT, "the call carried no request message")
        return request

    async def _handle(self, ingest: Ingest, request: bytes, context: grpc.aio.ServicerContext) -> Message:
        limits = ingest.limits
        try:
            check_encoded_counts(request, PROTOBUF, limits, ingest.signal)
            data = SIGNAL_KINDS[ingest.signal].data_type.FromString(request)
            check_counts(data, limits)
        except DecodeError as exc:
            await _abort(context, grpc.StatusCode.INVALID_ARGUMENT, f"invalid protobuf message: {exc}")
        except TooManyMessages as exc:
            await _abort(context, grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        try:
            rejection = await ingest(data)
        except ConsumeError as exc:
            code = status_for(exc).grpc_code
            metadata: tuple[tuple[str, bytes], ...] = ()
            if exc.retryable and exc.retry_after is not None:
                metadata = (("grpc-status-details-bin", _retry_info(code, str(exc), exc.retry_after)),)
            await _abort(context, code, str(exc), trailing_metadata=metadata)
        service = SERVICES[ingest.signal]
        return service.answer() if rejection is None else service.answer(rejection.spans, rejection.message)


def _serialize(response: Message) -> bytes:
    return response.SerializeToString()


async def _abort(
    context: grpc.aio.ServicerContext,
    code: grpc.StatusCode,
    details: str,
    trailing_metadata: tuple[tuple[str, bytes], ...] = (),
) -> NoReturn:
    """End the call with ``code``; typed so that the code after it knows it does not return."""
    await context.abort(code, details, trailing_metadata=trailing_metadata)
    raise AssertionError("grpc's abort() raises")


def _retry_info(code: grpc.StatusCode, message: str, retry_after: float) -> bytes:
    """A google.rpc.Status carrying RetryInfo, as OTLP clients read it."""
    delay = DurationProto(seconds=int(retry_after), nanos=int((retry_after % 1) * 1e9))
    detail = error_details_pb2.RetryInfo(retry_delay=delay)
    status = status_pb2.Status(code=code.value[0], message=message)
    status.details.add().Pack(detail)
    encoded: bytes = status.SerializeToString()
    return encoded
