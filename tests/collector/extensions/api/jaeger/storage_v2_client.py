"""A client of Jaeger's Remote Storage API v2, written from jaeger-idl, independently of the collector's server.

The messages are declared here field by field from jaegertracing/jaeger-idl at commit
74be5630c18f2cd8446073a101b6c9e30bc4b4b6 (proto/storage/v2/trace_storage.proto, dependency_storage.proto,
capabilities.proto), in a descriptor pool of their own: nothing is imported from the server's .proto files or
their generated modules, so a name, number or type the server got wrong makes these messages disagree with it.
TracesData answers are read with opentelemetry-proto's own class, as Jaeger reads them.

``TraceQueryParameters.filter`` (field 9, a jaeger.expression.v1.Call upstream) is declared as bytes, which
share its wire type: enough to send one and see it refused.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, duration_pb2, message_factory, timestamp_pb2
from google.protobuf.message import Message
from opentelemetry.proto.trace.v1.trace_pb2 import TracesData

PACKAGE = "jaeger.storage.v2"
F = descriptor_pb2.FieldDescriptorProto
OPTIONAL, REPEATED = F.LABEL_OPTIONAL, F.LABEL_REPEATED
Field = tuple[str, int, int, int, str]  # name, number, type, label, message type name (or "")


def _string(name: str, number: int, label: int = OPTIONAL) -> Field:
    return (name, number, F.TYPE_STRING, label, "")


def _message(name: str, number: int, type_name: str, label: int = OPTIONAL) -> Field:
    return (name, number, F.TYPE_MESSAGE, label, type_name)


TIMESTAMP, DURATION = ".google.protobuf.Timestamp", ".google.protobuf.Duration"
MESSAGES: dict[str, Sequence[Field]] = {
    "GetTraceParams": [
        ("trace_id", 1, F.TYPE_BYTES, OPTIONAL, ""),
        _message("start_time", 2, TIMESTAMP),
        _message("end_time", 3, TIMESTAMP),
    ],
    "GetTracesRequest": [_message("query", 1, f".{PACKAGE}.GetTraceParams", REPEATED)],
    "GetServicesRequest": [],
    "GetServicesResponse": [_string("services", 1, REPEATED)],
    "GetOperationsRequest": [_string("service", 1), _string("span_kind", 2)],
    "Operation": [_string("name", 1), _string("span_kind", 2)],
    "GetOperationsResponse": [_message("operations", 1, f".{PACKAGE}.Operation", REPEATED)],
    "KeyValue": [_string("key", 1), _message("value", 2, f".{PACKAGE}.AnyValue")],
    "AnyValue": [
        _string("string_value", 1),
        ("bool_value", 2, F.TYPE_BOOL, OPTIONAL, ""),
        ("int_value", 3, F.TYPE_INT64, OPTIONAL, ""),
        ("double_value", 4, F.TYPE_DOUBLE, OPTIONAL, ""),
        ("bytes_value", 7, F.TYPE_BYTES, OPTIONAL, ""),
    ],
    "TraceQueryParameters": [
        _string("service_name", 1),
        _string("operation_name", 2),
        _message("attributes", 3, f".{PACKAGE}.KeyValue", REPEATED),
        _message("start_time_min", 4, TIMESTAMP),
        _message("start_time_max", 5, TIMESTAMP),
        _message("duration_min", 6, DURATION),
        _message("duration_max", 7, DURATION),
        ("search_depth", 8, F.TYPE_INT32, OPTIONAL, ""),
        ("filter", 9, F.TYPE_BYTES, OPTIONAL, ""),
    ],
    "FindTracesRequest": [_message("query", 1, f".{PACKAGE}.TraceQueryParameters")],
    "FindTraceIDsRequest": [_message("query", 1, f".{PACKAGE}.TraceQueryParameters")],
    "FoundTraceID": [
        ("trace_id", 1, F.TYPE_BYTES, OPTIONAL, ""),
        _message("start", 2, TIMESTAMP),
        _message("end", 3, TIMESTAMP),
    ],
    "FindTraceIDsResponse": [_message("trace_ids", 1, f".{PACKAGE}.FoundTraceID", REPEATED)],
    "ServiceSummary": [
        _string("name", 1),
        ("span_count", 2, F.TYPE_INT32, OPTIONAL, ""),
        ("error_span_count", 3, F.TYPE_INT32, OPTIONAL, ""),
    ],
    "TraceSummary": [
        ("trace_id", 1, F.TYPE_BYTES, OPTIONAL, ""),
        _string("root_service_name", 2),
        _string("root_operation_name", 3),
        ("min_start_time_unix_nano", 4, F.TYPE_FIXED64, OPTIONAL, ""),
        ("max_end_time_unix_nano", 5, F.TYPE_FIXED64, OPTIONAL, ""),
        ("span_count", 6, F.TYPE_INT32, OPTIONAL, ""),
        ("error_span_count", 7, F.TYPE_INT32, OPTIONAL, ""),
        ("orphan_span_count", 8, F.TYPE_INT32, OPTIONAL, ""),
        _message("services", 9, f".{PACKAGE}.ServiceSummary", REPEATED),
    ],
    "FindTraceSummariesRequest": [_message("query", 1, f".{PACKAGE}.TraceQueryParameters")],
    "FindTraceSummariesResponse": [_message("summaries", 1, f".{PACKAGE}.TraceSummary", REPEATED)],
    "GetDependenciesRequest": [_message("start_time", 1, TIMESTAMP), _message("end_time", 2, TIMESTAMP)],
    "Dependency": [
        _string("parent", 1),
        _string("child", 2),
        ("call_count", 3, F.TYPE_UINT64, OPTIONAL, ""),
        _string("source", 4),
    ],
    "GetDependenciesResponse": [_message("dependencies", 1, f".{PACKAGE}.Dependency", REPEATED)],
    "SearchCapabilities": [
        ("without_service_name", 1, F.TYPE_BOOL, OPTIONAL, ""),
        ("same_span_conjunction", 2, F.TYPE_BOOL, OPTIONAL, ""),
        _message("filter", 3, f".{PACKAGE}.FilterCapabilities"),
    ],
    "FilterCapabilities": [_string("levels", 1, REPEATED), _string("operators", 2, REPEATED)],
    "GetCapabilitiesRequest": [],
    "GetCapabilitiesResponse": [_message("search", 1, f".{PACKAGE}.SearchCapabilities")],
}


def _pool() -> descriptor_pool.DescriptorPool:
    pool = descriptor_pool.DescriptorPool()
    for known in (timestamp_pb2, duration_pb2):
        file_proto = descriptor_pb2.FileDescriptorProto()
        known.DESCRIPTOR.CopyToProto(file_proto)
        pool.Add(file_proto)
    storage = descriptor_pb2.FileDescriptorProto(
        name="tests/jaeger_storage_v2_client.proto",
        package=PACKAGE,
        syntax="proto3",
        dependency=["google/protobuf/timestamp.proto", "google/protobuf/duration.proto"],
    )
    for name, fields in MESSAGES.items():
        message = storage.message_type.add(name=name)
        for field_name, number, field_type, label, type_name in fields:
            field = message.field.add(name=field_name, number=number, type=field_type, label=label)
            if type_name:
                field.type_name = type_name
    pool.Add(storage)
    return pool


POOL = _pool()


def new(name: str, **fields: Any) -> Any:
    """A message of jaeger.storage.v2 named ``name``."""
    cls = message_factory.GetMessageClass(POOL.FindMessageTypeByName(f"{PACKAGE}.{name}"))
    return cls(**fields)


class StorageClient:
    """Calls the storage services on ``channel``, with ``key`` (if any) as the Bearer credential."""

    def __init__(self, channel: grpc.Channel, key: str | None) -> None:
        self._channel = channel
        self._metadata = (("authorization", f"Bearer {key}"),) if key else ()

    def _unary(self, method: str, request: Message, response: str) -> Any:
        call = self._channel.unary_unary(
            f"/{PACKAGE}.{method}",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=lambda b: new(response).FromString(b),
        )
        return call(request, metadata=self._metadata, timeout=60)

    def _stream(self, method: str, request: Message, parse: Any) -> list[Any]:
        call = self._channel.unary_stream(
            f"/{PACKAGE}.{method}",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=parse,
        )
        return list(call(request, metadata=self._metadata, timeout=60))

    def raw(self, method: str, body: bytes) -> bytes:
        call = self._channel.unary_unary(f"/{PACKAGE}.{method}")
        answer: bytes = call(body, metadata=self._metadata, timeout=60)
        return answer

    def get_services(self) -> list[str]:
        return list(self._unary("TraceReader/GetServices", new("GetServicesRequest"), "GetServicesResponse").services)

    def get_operations(self, service: str, span_kind: str = "") -> list[tuple[str, str]]:
        request = new("GetOperationsRequest", service=service, span_kind=span_kind)
        answer = self._unary("TraceReader/GetOperations", request, "GetOperationsResponse")
        return [(operation.name, operation.span_kind) for operation in answer.operations]

    def get_traces(self, *trace_ids: bytes) -> list[TracesData]:
        request = new("GetTracesRequest", query=[new("GetTraceParams", trace_id=tid) for tid in trace_ids])
        return self._stream("TraceReader/GetTraces", request, TracesData.FromString)

    def find_traces(self, **query: Any) -> list[TracesData]:
        request = new("FindTracesRequest", query=new("TraceQueryParameters", **query))
        return self._stream("TraceReader/FindTraces", request, TracesData.FromString)

    def find_trace_ids(self, **query: Any) -> Any:
        request = new("FindTraceIDsRequest", query=new("TraceQueryParameters", **query))
        return self._unary("TraceReader/FindTraceIDs", request, "FindTraceIDsResponse")

    def find_trace_summaries(self, **query: Any) -> list[Any]:
        request = new("FindTraceSummariesRequest", query=new("TraceQueryParameters", **query))
        parse = new("FindTraceSummariesResponse").FromString
        return self._stream("TraceReader/FindTraceSummaries", request, parse)

    def get_dependencies(self, start: Any, end: Any) -> list[tuple[str, str, int]]:
        request = new("GetDependenciesRequest", start_time=start, end_time=end)
        answer = self._unary("DependencyReader/GetDependencies", request, "GetDependenciesResponse")
        return [(d.parent, d.child, d.call_count) for d in answer.dependencies]

    def get_capabilities(self) -> Any:
        return self._unary("Capabilities/GetCapabilities", new("GetCapabilitiesRequest"), "GetCapabilitiesResponse")


def spans_of(chunks: list[TracesData]) -> Iterator[Any]:
    for chunk in chunks:
        for resource in chunk.resource_spans:
            for scope in resource.scope_spans:
                yield from scope.spans


def timestamp(nanos: int) -> dict[str, int]:
    """A google.protobuf.Timestamp (or Duration) as the dict message constructors take."""
    seconds, fraction = divmod(nanos, 1_000_000_000)
    return {"seconds": seconds, "nanos": fraction}
