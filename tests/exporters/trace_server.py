"""An OTLP/gRPC trace service on loopback for exporter tests: records each call, answers as scripted.

It stands in for a remote receiver where the test needs to choose the answer
(a status code, a RetryInfo, a partial success) or see the call's metadata.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import grpc
from google.protobuf.duration_pb2 import Duration as DurationProto
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.proto.trace.v1.trace_pb2 import TracesData

SERVICE = "opentelemetry.proto.collector.trace.v1.TraceService"
WAIT_SECONDS = 30.0
SERVER_THREADS = 4


@dataclass(frozen=True)
class Answer:
    """One scripted reply: a failure status (with an optional RetryInfo delay), or a response."""

    code: grpc.StatusCode | None = None
    message: str = ""
    retry_delay: float | None = None
    response: ExportTraceServiceResponse = field(default_factory=ExportTraceServiceResponse)


@dataclass(frozen=True)
class Call:
    metadata: dict[str, str]
    request: bytes

    def traces(self) -> TracesData:
        return TracesData.FromString(self.request)


class TraceServer:
    """Answers calls with ``answers`` in order, then OK."""

    def __init__(self, answers: Iterable[Answer] = (), credentials: grpc.ServerCredentials | None = None) -> None:
        self.answers = list(answers)
        self.calls: list[Call] = []
        self._changed = threading.Condition()
        self._server = grpc.server(ThreadPoolExecutor(SERVER_THREADS))
        handler = grpc.unary_unary_rpc_method_handler(
            self._export, request_deserializer=None, response_serializer=ExportTraceServiceResponse.SerializeToString
        )
        self._server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(SERVICE, {"Export": handler})])
        address = "127.0.0.1:0"
        if credentials is None:
            self.port = self._server.add_insecure_port(address)
        else:
            self.port = self._server.add_secure_port(address, credentials)
        self._server.start()

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _export(self, request: bytes, context: grpc.ServicerContext) -> ExportTraceServiceResponse:
        with self._changed:
            self.calls.append(Call({m.key: m.value for m in context.invocation_metadata()}, request))
            answer = self.answers.pop(0) if self.answers else Answer()
            self._changed.notify_all()
        if answer.code is not None:
            if answer.retry_delay is not None:
                context.set_trailing_metadata((("grpc-status-details-bin", _retry_info(answer)),))
            context.abort(answer.code, answer.message)
        return answer.response

    def wait_for_calls(self, count: int) -> list[Call]:
        with self._changed:
            assert self._changed.wait_for(lambda: len(self.calls) >= count, WAIT_SECONDS), self.calls
            return list(self.calls)

    def wait_for_spans(self, count: int) -> None:
        def spans() -> int:
            return sum(
                len(ss.spans) for call in self.calls for rs in call.traces().resource_spans for ss in rs.scope_spans
            )

        with self._changed:
            assert self._changed.wait_for(lambda: spans() >= count, WAIT_SECONDS), self.calls

    def received(self) -> TracesData:
        """Every request merged into one TracesData."""
        merged = TracesData()
        for call in self.calls:
            merged.MergeFrom(call.traces())
        return merged

    def stop(self) -> None:
        self._server.stop(None)


def _retry_info(answer: Answer) -> bytes:
    assert answer.code is not None and answer.retry_delay is not None
    seconds = int(answer.retry_delay)
    delay = DurationProto(seconds=seconds, nanos=int((answer.retry_delay - seconds) * 1e9))
    status = status_pb2.Status(code=answer.code.value[0], message=answer.message)
    status.details.add().Pack(error_details_pb2.RetryInfo(retry_delay=delay))
    encoded: bytes = status.SerializeToString()
    return encoded
