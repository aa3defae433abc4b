"""Jaeger's Remote Storage API v2 over gRPC: a stock Jaeger v2 with ``grpc`` storage reads the collector's store.

Serves jaeger.storage.v2 ``TraceReader``, ``DependencyReader`` and
``Capabilities`` (jaeger/proto, as jaegertracing/jaeger-idl defines them) on
its own port (the api extension's ``grpc_endpoint``, 127.0.0.1:17271 by
default, Jaeger's remote-storage port). Every call names its caller as the
HTTP endpoints do: ``authorization: Bearer <key>`` in the call's metadata
(Jaeger's ``headers`` setting), a viewer at least, its tenant scoping every
read; on loopback with no API key created, callers without one read as
anonymous viewers. A refused call is UNAUTHENTICATED or PERMISSION_DENIED.

Capabilities: a search may leave out the service (``without_service_name``),
its conditions hold on one span (``same_span_conjunction``), and no
structured filter is served, so Jaeger never sends one; a query that carries
one anyway (field 9) is refused rather than answered without it.

GetTraces and FindTraces stream one TracesData per trace, split into
consecutive chunks when a trace's encoding would pass ``MAX_CHUNK_BYTES``
(Jaeger's client takes 4 MiB messages by default). Times: a query without
``start_time_min`` starts ``max_time_window`` before its end, one without
``start_time_max`` ends now.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import grpc
from google.protobuf.message import DecodeError, Message
from google.protobuf.timestamp_pb2 import Timestamp
from google.protobuf.unknown_fields import UnknownFieldSet
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, TracesData

from collector.config.types import HostPort
from collector.extensions.access import ROLE_RANK, AccessDenied, Principal, caller_principal
from collector.extensions.api.jaeger.proto import capabilities_pb2, dependency_storage_pb2, trace_storage_pb2
from collector.extensions.api.jaeger.reader import JaegerReader, UnknownSpanKind
from collector.extensions.api.jaeger.search import JaegerQuery, tags_of
from collector.extensions.api.query.sql import Scope, TimeRange
from collector.grpcserver import server_options, start_insecure
from collector.keys import KeyStore, Role
from collector.listeners.descriptors import CAPACITY
from collector.query.errors import QueryError, QueryTimeoutError, TooManyQueriesError
from collector.receivers.otlp.config import GrpcSettings
from exporters.clickhouse.columns import value_as_string

GRACEFUL_SHUTDOWN_SECONDS = 10.0
# Requests are small (ids, a query); answers are chunked below Jaeger's default 4 MiB receive limit.
MAX_REQUEST_MIB = 1
MAX_CHUNK_BYTES = 3 * 1024 * 1024
MAX_RESPONSE_BYTES = 4 * 1024 * 1024
# Calls served at once (more are refused RESOURCE_EXHAUSTED: a read, which Jaeger's query service reports
# rather than retries), and trace ids one GetTraces may name.
MAX_CONCURRENT_CALLS = 64
MAX_TRACE_IDS_PER_CALL = 1_000
DEFAULT_SEARCH_DEPTH = 100
TRACE_ID_BYTES = 16
FILTER_FIELD_NUMBER = 9  # TraceQueryParameters.filter, not served
REQUIRED_ROLE: Role = "viewer"
logger = logging.getLogger(__name__)


class RemoteStorageServer:
    """A grpc.aio server for Jaeger's remote storage read services over one JaegerReader."""

    def __init__(
        self,
        reader: JaegerReader,
        keys: KeyStore,
        endpoint: HostPort,
        anonymous_reads: bool,
        max_search_depth: int,
        max_window_seconds: float,
        clock: Callable[[], int],
    ) -> None:
        self._reader = reader
        self._keys = keys
        self._endpoint = endpoint
        self._anonymous_reads = anonymous_reads
        self._max_search_depth = max_search_depth
        self._max_window_ns = int(max_window_seconds * 1e9)
        self._clock = clock
        self._server: grpc.aio.Server | None = None
        self._connections = 0  # descriptors held for its connections (collector.listeners.descriptors)
        self.port = endpoint.port

    async def start(self) -> None:
        # The same bounds as every gRPC listener (handshake and keepalive timeouts, streams, connections).
        settings = GrpcSettings(endpoint=self._endpoint, max_recv_msg_size_mib=MAX_REQUEST_MIB)
        self._connections = CAPACITY.hold(settings.max_connections, f"Jaeger remote storage on {self._endpoint}")
        try:
            options = server_options(settings, self._connections)
            options.append(("grpc.max_send_message_length", MAX_RESPONSE_BYTES))
            server = grpc.aio.server(options=options, maximum_concurrent_rpcs=MAX_CONCURRENT_CALLS)
            server.add_generic_rpc_handlers(self._handlers())
            self.port = await start_insecure(server, self._endpoint)
        except BaseException:
            CAPACITY.unhold(self._connections)
            self._connections = 0
            raise
        self._server = server

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.stop(GRACEFUL_SHUTDOWN_SECONDS)
            self._server = None
            CAPACITY.unhold(self._connections)
            self._connections = 0

    def _handlers(self) -> list[grpc.GenericRpcHandler]:
        """The methods of each service, bound by the names the generated descriptors give them."""
        implementations: dict[str, Callable[..., Any]] = {
            "TraceReader.GetTraces": self._get_traces,
            "TraceReader.GetServices": self._get_services,
            "TraceReader.GetOperations": self._get_operations,
            "TraceReader.FindTraces": self._find_traces,
            "TraceReader.FindTraceIDs": self._find_trace_ids,
            "TraceReader.FindTraceSummaries": self._find_trace_summaries,
            "DependencyReader.GetDependencies": self._get_dependencies,
            "Capabilities.GetCapabilities": self._get_capabilities,
        }
        handlers = []
        for module in (trace_storage_pb2, dependency_storage_pb2, capabilities_pb2):
            for service in module.DESCRIPTOR.services_by_name.values():
                methods = {}
                for method in service.methods:
                    implementation = implementations[f"{service.name}.{method.name}"]
                    request_type = getattr(module, method.input_type.name)  # requests live in their service's module
                    guarded = self._guarded(implementation, request_type, method.server_streaming)
                    factory = (
                        grpc.unary_stream_rpc_method_handler
                        if method.server_streaming
                        else grpc.unary_unary_rpc_method_handler
                    )
                    # The request arrives as bytes and is parsed in _guarded, so that a malformed one is
                    # INVALID_ARGUMENT rather than grpc's generic INTERNAL.
                    methods[method.name] = factory(guarded, request_deserializer=None, response_serializer=_serialize)
                handlers.append(grpc.method_handlers_generic_handler(service.full_name, methods))
        return handlers

    def _guarded(
        self, implementation: Callable[..., Any], request_type: type[Message], streaming: bool
    ) -> Callable[..., Any]:
        """``implementation`` behind the caller check, with the store's failures as gRPC statuses."""
        if streaming:

            async def stream(body: bytes, context: grpc.aio.ServicerContext) -> AsyncIterator[Message]:
                scope = await self._authorize(context)
                request = await _parse(request_type, body, context)
                try:
                    async for item in implementation(request, scope):
                        yield item
                except _Refused as exc:
                    await context.abort(exc.code, str(exc))
                except (QueryError, TooManyQueriesError) as exc:
                    await context.abort(*_store_status(exc))

            return stream

        async def unary(body: bytes, context: grpc.aio.ServicerContext) -> Message:
            scope = await self._authorize(context)
            request = await _parse(request_type, body, context)
            try:
                result: Message = await implementation(request, scope)
            except _Refused as exc:
                await context.abort(exc.code, str(exc))
            except (QueryError, TooManyQueriesError) as exc:
                await context.abort(*_store_status(exc))
            return result

        return unary

    async def _authorize(self, context: grpc.aio.ServicerContext) -> Scope:
        authorization = None
        for key, value in context.invocation_metadata() or ():
            if key == "authorization":
                authorization = value if isinstance(value, str) else value.decode("latin-1")
        try:
            principal = caller_principal(authorization, self._keys, None, self._anonymous_reads)
            _require_viewer(principal)
        except AccessDenied as exc:
            code = grpc.StatusCode.UNAUTHENTICATED if exc.status == 401 else grpc.StatusCode.PERMISSION_DENIED
            await context.abort(code, str(exc))
        return Scope.of(principal)

    # ----------------------------------------------------------------------------------------------------
    # TraceReader

    async def _get_traces(self, request: trace_storage_pb2.GetTracesRequest, scope: Scope) -> AsyncIterator[Message]:
        if len(request.query) > MAX_TRACE_IDS_PER_CALL:
            raise _Refused(f"at most {MAX_TRACE_IDS_PER_CALL} trace ids per call")
        trace_ids = [_trace_id(params.trace_id) for params in request.query]
        for _, traces in await self._reader.get_traces(scope, trace_ids):
            for chunk in chunks(traces):
                yield chunk

    async def _get_services(
        self, request: trace_storage_pb2.GetServicesRequest, scope: Scope
    ) -> trace_storage_pb2.GetServicesResponse:
        return trace_storage_pb2.GetServicesResponse(services=await self._reader.services(scope))

    async def _get_operations(
        self, request: trace_storage_pb2.GetOperationsRequest, scope: Scope
    ) -> trace_storage_pb2.GetOperationsResponse:
        if not request.service:
            raise _Refused("service is required")
        try:
            found = await self._reader.operations(scope, request.service, request.span_kind)
        except UnknownSpanKind as exc:
            raise _Refused(str(exc)) from None
        return trace_storage_pb2.GetOperationsResponse(
            operations=[trace_storage_pb2.Operation(name=op.name, span_kind=op.span_kind) for op in found]
        )

    async def _find_traces(self, request: trace_storage_pb2.FindTracesRequest, scope: Scope) -> AsyncIterator[Message]:
        window, query, depth = self._search(request.query)
        for _, traces in await self._reader.find_traces(scope, window, query, depth):
            for chunk in chunks(traces):
                yield chunk

    async def _find_trace_ids(
        self, request: trace_storage_pb2.FindTraceIDsRequest, scope: Scope
    ) -> trace_storage_pb2.FindTraceIDsResponse:
        window, query, depth = self._search(request.query)
        response = trace_storage_pb2.FindTraceIDsResponse()
        for match in await self._reader.find_trace_ids(scope, window, query, depth):
            found = response.trace_ids.add(trace_id=bytes.fromhex(match.trace_id))
            found.start.FromNanoseconds(match.first_match_ns)
        return response

    async def _find_trace_summaries(
        self, request: trace_storage_pb2.FindTraceSummariesRequest, scope: Scope
    ) -> AsyncIterator[Message]:
        window, query, depth = self._search(request.query)
        response = trace_storage_pb2.FindTraceSummariesResponse()
        for overview in await self._reader.trace_summaries(scope, window, query, depth):
            summary, stats = overview.summary, overview.stats
            item = response.summaries.add(
                trace_id=bytes.fromhex(summary.trace_id),
                root_service_name=summary.root_service,
                root_operation_name=summary.root_name,
                min_start_time_unix_nano=summary.start_ns,
                max_end_time_unix_nano=summary.end_ns,
                span_count=summary.span_count,
                error_span_count=summary.error_count,
                orphan_span_count=stats.orphans,
            )
            for name, counts in sorted(stats.services.items()):
                item.services.add(name=name, span_count=counts.spans, error_span_count=counts.errors)
        if response.summaries:
            yield response

    def _search(self, query: trace_storage_pb2.TraceQueryParameters) -> tuple[TimeRange, JaegerQuery, int]:
        if FILTER_FIELD_NUMBER in {number for number, _ in _unknown_fields(query)}:
            raise _Refused("structured filters (TraceQueryParameters.filter) are not supported by this backend")
        if query.search_depth < 0 or query.search_depth > self._max_search_depth:
            raise _Refused(f"search_depth must be from 0 to {self._max_search_depth}")
        window = self._window(query.start_time_min, query.start_time_max)
        jaeger_query = JaegerQuery(
            service=query.service_name,
            operation=query.operation_name,
            tags=tags_of((pair.key, value_as_string(_otlp_value(pair.value))) for pair in query.attributes),
            min_duration_ns=query.duration_min.ToNanoseconds() if query.HasField("duration_min") else None,
            max_duration_ns=query.duration_max.ToNanoseconds() if query.HasField("duration_max") else None,
        )
        return window, jaeger_query, query.search_depth or DEFAULT_SEARCH_DEPTH

    def _window(self, start: Timestamp, end: Timestamp) -> TimeRange:
        end_ns = end.ToNanoseconds() if end.ByteSize() else self._clock()
        start_ns = start.ToNanoseconds() if start.ByteSize() else end_ns - self._max_window_ns
        if start_ns >= end_ns:
            raise _Refused("start_time_min must be before start_time_max")
        if end_ns - start_ns > self._max_window_ns:
            raise _Refused("the window from start_time_min to start_time_max is longer than max_time_window")
        return TimeRange(start_ns, end_ns)

    # ----------------------------------------------------------------------------------------------------
    # DependencyReader, Capabilities

    async def _get_dependencies(
        self, request: dependency_storage_pb2.GetDependenciesRequest, scope: Scope
    ) -> dependency_storage_pb2.GetDependenciesResponse:
        window = self._window(request.start_time, request.end_time)
        found = await self._reader.dependencies(scope, window)
        return dependency_storage_pb2.GetDependenciesResponse(
            dependencies=[
                dependency_storage_pb2.Dependency(parent=d.parent, child=d.child, call_count=d.call_count)
                for d in found
            ]
        )

    async def _get_capabilities(
        self, request: capabilities_pb2.GetCapabilitiesRequest, scope: Scope
    ) -> capabilities_pb2.GetCapabilitiesResponse:
        return capabilities_pb2.GetCapabilitiesResponse(
            search=capabilities_pb2.SearchCapabilities(without_service_name=True, same_span_conjunction=True)
        )


class _Refused(Exception):
    """A request that cannot be answered as asked: INVALID_ARGUMENT with the message."""

    code = grpc.StatusCode.INVALID_ARGUMENT


def _require_viewer(principal: Principal) -> None:
    if ROLE_RANK[principal.role] < ROLE_RANK[REQUIRED_ROLE]:
        raise AccessDenied(f"this needs the viewer role; the key {principal.key_id} is {principal.role}")


def _store_status(exc: Exception) -> tuple[grpc.StatusCode, str]:
    if isinstance(exc, TooManyQueriesError):
        return grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc)
    if isinstance(exc, QueryTimeoutError):
        return grpc.StatusCode.DEADLINE_EXCEEDED, str(exc)
    logger.warning("jaeger remote storage: the store could not answer: %s", exc)
    return grpc.StatusCode.UNAVAILABLE, f"the store could not answer: {exc}"


def _trace_id(raw: bytes) -> str:
    if len(raw) != TRACE_ID_BYTES:
        raise _Refused(f"a trace id is {TRACE_ID_BYTES} bytes, got {len(raw)}")
    return raw.hex()


def _serialize(message: Message) -> bytes:
    return message.SerializeToString()


async def _parse(request_type: type[Message], body: bytes, context: grpc.aio.ServicerContext) -> Message:
    try:
        return request_type.FromString(body)
    except DecodeError as exc:
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"invalid {request_type.__name__}: {exc}")
        raise  # abort raises; this keeps the type checker informed


def _unknown_fields(message: Message) -> Iterator[tuple[int, int]]:
    """(field number, wire type) of each field ``message`` carried that its type does not declare."""
    unknown = UnknownFieldSet(message)
    for index in range(len(unknown)):
        yield unknown[index].field_number, unknown[index].wire_type


def _otlp_value(value: trace_storage_pb2.AnyValue) -> AnyValue:
    """Jaeger's copy of OTLP's AnyValue as OTLP's own (the same wire format)."""
    return AnyValue.FromString(value.SerializeToString())


def chunks(traces: TracesData, max_bytes: int = MAX_CHUNK_BYTES) -> Iterator[TracesData]:
    """``traces`` (one trace) as consecutive non-empty TracesData of at most about ``max_bytes`` each."""
    if traces.ByteSize() <= max_bytes:
        yield traces
        return
    chunk, size = TracesData(), 0
    for resource_spans in traces.resource_spans:
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                span_size = span.ByteSize()
                if size and size + span_size > max_bytes:
                    yield chunk
                    chunk, size = TracesData(), 0
                _append(chunk, resource_spans, scope_spans, span)
                size += span_size
    if size:
        yield chunk


def _append(chunk: TracesData, resource_spans: ResourceSpans, scope_spans: ScopeSpans, span: Span) -> None:
    """Add ``span`` to ``chunk`` under copies of its resource and scope (reusing the last ones when they match)."""
    last = chunk.resource_spans[-1] if chunk.resource_spans else None
    if last is None or last.resource != resource_spans.resource:
        last = chunk.resource_spans.add(resource=resource_spans.resource, schema_url=resource_spans.schema_url)
    last_scope = last.scope_spans[-1] if last.scope_spans else None
    if last_scope is None or last_scope.scope != scope_spans.scope:
        last_scope = last.scope_spans.add(scope=scope_spans.scope, schema_url=scope_spans.schema_url)
    last_scope.spans.append(span)
