"""Jaeger's HTTP query APIs: the JSON API the Jaeger UI and Grafana's Jaeger data source call, and api_v3.

Shapes and parameters are Jaeger's, read from jaegertracing/jaeger: the
handler that served the JSON API's search, services and operations until
commit 639eefe0 removed them (cmd/jaeger/internal/extension/jaegerquery/
internal/http_handler.go and query_parser.go at 83f31216; Grafana's Jaeger
data source still calls them), the handler of what remains (same files at
8498073f) and api_v3's HTTP gateway (internal/apiv3/http_gateway.go,
query_parser.go, snapshots/).

JSON API (``/api/...``): answers are ``{"data", "total", "limit", "offset",
"errors"}``; search times (``start``, ``end``) are Unix microseconds,
durations Go's (``1.5s``), ``tags`` a JSON object and ``tag`` key:value;
dependencies take ``endTs`` and ``lookback`` in milliseconds. Errors are the
same envelope with ``errors: [{"code", "msg"}]``.

api_v3 (``/api/v3/...``): traces are OTLP/JSON in ``{"result": ...}``, times
RFC 3339 (``query.startTimeMin`` and ``query.startTimeMax`` required),
errors ``{"error": {"httpCode", "message"}}``; a search or id that finds
nothing is a 404 "No traces found", as in Jaeger.

``GET /api/traces/{id}`` is also Tempo's path: a request whose Accept names
``application/protobuf`` (Grafana's Tempo data source) gets Tempo's answer,
every other one Jaeger's JSON.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import orjson
from opentelemetry.proto.trace.v1.trace_pb2 import TracesData
from starlette.responses import JSONResponse, Response

from collector.extensions.api.context import ApiContext
from collector.extensions.api.durations import PROMETHEUS_UNITS, parse_duration
from collector.extensions.api.endpoints import ApiCall, Endpoint, ErrorRenderer, Handler, JsonResponse
from collector.extensions.api.errors import ApiError, BadParameter
from collector.extensions.api.jaeger.reader import JaegerReader, UnknownSpanKind
from collector.extensions.api.jaeger.search import JaegerQuery, tags_of
from collector.extensions.api.jaeger.uimodel import ui_trace
from collector.extensions.api.params import Parameter, integer_parser, parse_boolean, parse_timestamp, text_parser
from collector.extensions.api.query.spanmatch import TraceOverview
from collector.extensions.api.query.sql import TimeRange
from collector.extensions.api.tempo import http as tempo_http
from collector.extensions.api.traceid import parse_jaeger_trace_id
from collector.receivers.otlp.codec import encode_otlp_json

NANOS_PER_MICRO = 1_000
NANOS_PER_MILLI = 1_000_000
MAX_TEXT_CHARS = 1024
# Jaeger's defaults: a search without start looks back two days and returns 100 traces at most; dependencies
# look back a day.
DEFAULT_SEARCH_LOOKBACK_SECONDS = 2 * 86400.0
DEFAULT_SEARCH_LIMIT = 100
DEFAULT_DEPENDENCIES_LOOKBACK_SECONDS = 86400.0
TRACE_NOT_FOUND = "trace not found"  # Jaeger's spanstore.ErrTraceNotFound
NO_TRACES_FOUND = "No traces found"  # api_v3's answer to a search or id that finds nothing
TAG = "Jaeger"


def routes(context: ApiContext) -> list[Endpoint]:
    """The Jaeger endpoints over ``context``'s store."""
    limits = context.config.limits
    reader = JaegerReader(context.runner, context.tables, limits.max_trace_spans, limits.max_time_window, context.clock)
    api = _JsonApi(reader, limits.max_page_limit)
    v3 = _ApiV3(reader, limits.max_page_limit)
    trace_by_id = _TraceById(reader, tempo_http.TempoTraceAnswers(context))
    return [*api.endpoints(), *v3.endpoints(), trace_by_id.endpoint()]


# -------------------------------------------------------------------------------------------------------------
# Parameters


def _param(name: str, parse: Callable[[str], Any], location: Any = "query", repeated: bool = False) -> Parameter:
    return Parameter(name, name, parse, {"type": "string"}, location=location, repeated=repeated)


def _text(name: str, location: Any = "query", repeated: bool = False) -> Parameter:
    return _param(name, text_parser(MAX_TEXT_CHARS), location, repeated)


def _unix_units(nanos_per_unit: int) -> Callable[[str], int]:
    """A parser of a non-negative whole number of some unit since the epoch, to nanoseconds."""

    def parse(text: str) -> int:
        if not (text.isascii() and text.isdigit()):
            raise ValueError(f'expected a whole number, got "{text}"')
        return int(text) * nanos_per_unit

    return parse


def _lookback(text: str) -> int | None:
    """The UI's lookback (``1h``, ``2d``); ``custom`` means start and end say it."""
    if text == "custom":
        return None
    return parse_duration(text, PROMETHEUS_UNITS)


def _json_strings(malformed: str) -> Callable[[str], tuple[tuple[str, str], ...]]:
    """A parser of a JSON object of strings (Jaeger's tags); ``malformed`` starts its error, as Jaeger's does."""

    def parse(text: str) -> tuple[tuple[str, str], ...]:
        try:
            document = json.loads(text)
        except ValueError as exc:
            raise ValueError(f"{malformed}: {exc}") from None
        if not isinstance(document, dict) or not all(isinstance(v, str) for v in document.values()):
            raise ValueError(f"{malformed}: expected a JSON object of strings")
        return tuple(document.items())

    return parse


def _key_value_tag(text: str) -> tuple[str, str]:
    key, colon, value = text.partition(":")
    if not colon:
        raise ValueError(f"malformed 'tag' parameter, expecting key:value, received: {text}")
    return key, value


def _endpoint(
    path: str,
    operation_id: str,
    summary: str,
    handler: Handler,
    parameters: tuple[Parameter, ...] = (),
    error: ErrorRenderer | None = None,
) -> Endpoint:
    """An endpoint of Jaeger's APIs: left out of the OpenAPI document, tolerant of parameters it does not read."""
    return Endpoint(
        path,
        operation_id,
        summary,
        handler,
        parameters=parameters,
        openapi=False,
        strict=False,
        error_response=error or jaeger_error,
        tags=(TAG,),
    )


def _window(call: ApiCall, start: str, end: str, default_seconds: float) -> TimeRange:
    """``call.window`` with a default no longer than the configured widest window."""
    return call.window(start, end, default=min(default_seconds, float(call.context.config.limits.max_time_window)))


# -------------------------------------------------------------------------------------------------------------
# The UI's JSON API


def _envelope(data: Any, total: int = 0, errors: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Jaeger's structuredResponse: data, total, limit, offset and errors (null when none)."""
    return {"data": data, "total": total, "limit": 0, "offset": 0, "errors": errors}


def jaeger_error(error: ApiError) -> Response:
    """An error as the JSON API answers it: the envelope with one error."""
    return JSONResponse(_envelope(None, errors=[{"code": error.status, "msg": str(error)}]), error.status)


class _JsonApi:
    def __init__(self, reader: JaegerReader, max_limit: int) -> None:
        self._reader = reader
        self._max_limit = max_limit

    def endpoints(self) -> list[Endpoint]:
        return [
            _endpoint("/api/services", "jaegerServices", "Jaeger: services", self.services),
            _endpoint(
                "/api/services/{service}/operations",
                "jaegerServiceOperations",
                "Jaeger: operation names of a service",
                self.service_operations,
                parameters=(_text("service", "path"),),
            ),
            _endpoint(
                "/api/operations",
                "jaegerOperations",
                "Jaeger: operations of a service",
                self.operations,
                parameters=(_text("service"), _text("spanKind")),
            ),
            _endpoint(
                "/api/traces",
                "jaegerSearch",
                "Jaeger: trace search",
                self.search,
                parameters=(
                    _text("service"),
                    _text("operation"),
                    _param("tags", _json_strings("malformed 'tags' parameter, cannot unmarshal JSON"), repeated=True),
                    _param("tag", _key_value_tag, repeated=True),
                    _param("start", _unix_units(NANOS_PER_MICRO)),
                    _param("end", _unix_units(NANOS_PER_MICRO)),
                    _param("lookback", _lookback),
                    _param("limit", integer_parser(1, self._max_limit)),
                    _param("minDuration", parse_duration),
                    _param("maxDuration", parse_duration),
                    _param("traceID", parse_jaeger_trace_id, repeated=True),
                    _param("raw", parse_boolean),
                ),
            ),
            _endpoint(
                "/api/dependencies",
                "jaegerDependencies",
                "Jaeger: service dependencies",
                self.dependencies,
                parameters=(
                    _param("endTs", _unix_units(NANOS_PER_MILLI)),
                    _param("lookback", _unix_units(NANOS_PER_MILLI)),
                    _text("service"),
                ),
            ),
        ]

    async def services(self, call: ApiCall) -> Any:
        names = await self._reader.services(call.scope, call.caller)
        return _envelope(names, total=len(names))

    async def service_operations(self, call: ApiCall) -> Any:
        operations = await self._reader.operations(call.scope, call.args.get("service"), caller=call.caller)
        names = sorted({operation.name for operation in operations})
        return _envelope(names or None, total=len(names))

    async def operations(self, call: ApiCall) -> Any:
        service = call.args.get("service")
        if not service:
            raise BadParameter("service", "parameter 'service' is required")
        try:
            operations = await self._reader.operations(
                call.scope, service, call.args.get("spanKind", ""), caller=call.caller
            )
        except UnknownSpanKind as exc:
            raise BadParameter("spanKind", str(exc)) from None
        data = [{"name": operation.name, "spanKind": operation.span_kind} for operation in operations]
        return _envelope(data, total=len(data))

    async def search(self, call: ApiCall) -> Any:
        args = call.args
        trace_ids: Sequence[str] = args.get("traceID", ())
        if trace_ids:
            found = dict(await self._reader.get_traces(call.scope, trace_ids, caller=call.caller))
            missing = [
                {"msg": TRACE_NOT_FOUND, "traceID": _ui_trace_id(trace_id)}
                for trace_id in dict.fromkeys(trace_ids)
                if trace_id not in found
            ]
            return _envelope([ui_trace(traces) for traces in found.values()], errors=missing or None)
        query = JaegerQuery(
            service=args.get("service", ""),
            operation=args.get("operation", ""),
            tags=tags_of([pair for tags in args.get("tags", ()) for pair in tags] + list(args.get("tag", ()))),
            min_duration_ns=args.get("minDuration"),
            max_duration_ns=args.get("maxDuration"),
        )
        if query.min_duration_ns and query.max_duration_ns and query.max_duration_ns < query.min_duration_ns:
            raise BadParameter("maxDuration", "'maxDuration' should be greater than 'minDuration'")
        lookback = args.get("lookback")
        window = _window(call, "start", "end", lookback / 1e9 if lookback else DEFAULT_SEARCH_LOOKBACK_SECONDS)
        found_traces = await self._reader.find_traces(
            call.scope, window, query, args.get("limit", DEFAULT_SEARCH_LIMIT), call.caller
        )
        return _envelope([ui_trace(traces) for _, traces in found_traces])

    async def dependencies(self, call: ApiCall) -> Any:
        limits = call.context.config.limits
        end_ns = call.args.get("endTs", call.context.clock())
        lookback_ns = call.args.get("lookback", int(DEFAULT_DEPENDENCIES_LOOKBACK_SECONDS * 1e9))
        if lookback_ns <= 0 or lookback_ns > limits.max_time_window * 1e9:
            raise BadParameter("lookback", f"must be more than 0 and at most {limits.max_time_window:g}s")
        window = TimeRange(end_ns - lookback_ns, end_ns)
        service = call.args.get("service")
        links = [
            {"parent": link.parent, "child": link.child, "callCount": link.call_count}
            for link in await self._reader.dependencies(call.scope, window, call.caller)
            if not service or service in (link.parent, link.child)
        ]
        return _envelope(links)


def _ui_trace_id(trace_id: str) -> str:
    return trace_id[16:] if trace_id.startswith("0" * 16) else trace_id


# -------------------------------------------------------------------------------------------------------------
# api_v3


def v3_error(error: ApiError) -> Response:
    """An error as api_v3's HTTP gateway answers it (GRPCGatewayError)."""
    return JSONResponse({"error": {"httpCode": error.status, "message": str(error)}}, error.status)


class TracesNotFound(ApiError):
    status = 404
    code = "not_found"


def _either(*names: str) -> Callable[[ApiCall], Any]:
    """The value of the first of ``names`` given (api_v3's camelCase names, then their snake_case aliases)."""

    def get(call: ApiCall) -> Any:
        for name in names:
            if name in call.args:
                return call.args.get(name)
        return None

    return get


class _ApiV3:
    def __init__(self, reader: JaegerReader, max_limit: int) -> None:
        self._reader = reader
        self._max_limit = max_limit

    def _query_parameters(self) -> tuple[Parameter, ...]:
        return (
            *(_text(name) for name in ("query.serviceName", "query.service_name")),
            *(_text(name) for name in ("query.operationName", "query.operation_name")),
            _param("query.attributes", _json_strings("malformed parameter query.attributes")),
            *(_param(name, parse_timestamp) for name in ("query.startTimeMin", "query.start_time_min")),
            *(_param(name, parse_timestamp) for name in ("query.startTimeMax", "query.start_time_max")),
            *(
                _param(name, integer_parser(1, self._max_limit))
                for name in ("query.searchDepth", "query.search_depth", "query.num_traces")
            ),
            *(_param(name, parse_duration) for name in ("query.durationMin", "query.duration_min")),
            *(_param(name, parse_duration) for name in ("query.durationMax", "query.duration_max")),
            *(_param(name, parse_boolean) for name in ("query.rawTraces", "query.raw_traces")),
            _text("query.filter"),
        )

    def endpoints(self) -> list[Endpoint]:
        return [
            _endpoint("/api/v3/services", "jaegerV3Services", "Jaeger api_v3: services", self.services, error=v3_error),
            _endpoint(
                "/api/v3/operations",
                "jaegerV3Operations",
                "Jaeger api_v3: operations",
                self.operations,
                parameters=(_text("service"), _text("spanKind"), _text("span_kind")),
                error=v3_error,
            ),
            _endpoint(
                "/api/v3/traces",
                "jaegerV3FindTraces",
                "Jaeger api_v3: find traces",
                self.find_traces,
                parameters=self._query_parameters(),
                error=v3_error,
            ),
            _endpoint(
                "/api/v3/trace-summaries",
                "jaegerV3FindTraceSummaries",
                "Jaeger api_v3: find trace summaries",
                self.find_trace_summaries,
                parameters=self._query_parameters(),
                error=v3_error,
            ),
            _endpoint(
                "/api/v3/traces/{trace_id}",
                "jaegerV3GetTrace",
                "Jaeger api_v3: one trace",
                self.get_trace,
                parameters=(
                    _param("trace_id", str, "path"),
                    *(_param(name, parse_timestamp) for name in ("startTime", "start_time")),
                    *(_param(name, parse_timestamp) for name in ("endTime", "end_time")),
                    *(_param(name, parse_boolean) for name in ("rawTraces", "raw_traces")),
                ),
                error=v3_error,
            ),
        ]

    async def services(self, call: ApiCall) -> Any:
        names = await self._reader.services(call.scope, call.caller)
        return {"services": names} if names else {}

    async def operations(self, call: ApiCall) -> Any:
        service = call.args.get("service")
        if not service:
            raise BadParameter("service", "the service parameter is required")
        try:
            found = await self._reader.operations(
                call.scope, service, _either("spanKind", "span_kind")(call) or "", caller=call.caller
            )
        except UnknownSpanKind as exc:
            raise BadParameter("spanKind", str(exc)) from None
        # api_v3 reports an operation of no kind as internal (http_gateway.go getOperations).
        operations = [{"name": op.name, "spanKind": op.span_kind or "internal"} for op in found]
        return {"operations": operations} if operations else {}

    def _search(self, call: ApiCall) -> tuple[TimeRange, JaegerQuery, int]:
        if call.args.get("query.filter") is not None:
            raise BadParameter("query.filter", "structured filters are not supported by this storage backend")
        start = "query.startTimeMin" if "query.startTimeMin" in call.args else "query.start_time_min"
        end = "query.startTimeMax" if "query.startTimeMax" in call.args else "query.start_time_max"
        if start not in call.args or end not in call.args:
            raise BadParameter("query.startTimeMin", "query.startTimeMin and query.startTimeMax are required")
        window = call.window(start, end)
        query = JaegerQuery(
            service=_either("query.serviceName", "query.service_name")(call) or "",
            operation=_either("query.operationName", "query.operation_name")(call) or "",
            tags=call.args.get("query.attributes", ()),
            min_duration_ns=_either("query.durationMin", "query.duration_min")(call),
            max_duration_ns=_either("query.durationMax", "query.duration_max")(call),
        )
        depth = _either("query.searchDepth", "query.search_depth", "query.num_traces")(call)
        return window, query, depth or DEFAULT_SEARCH_LIMIT

    async def find_traces(self, call: ApiCall) -> Any:
        window, query, depth = self._search(call)
        found = await self._reader.find_traces(call.scope, window, query, depth, call.caller)
        return _result([traces for _, traces in found])

    async def find_trace_summaries(self, call: ApiCall) -> Any:
        window, query, depth = self._search(call)
        found = await self._reader.trace_summaries(call.scope, window, query, depth, call.caller)
        summaries = [_v3_summary(overview) for overview in found]
        return {"summaries": summaries} if summaries else {}

    async def get_trace(self, call: ApiCall) -> Any:
        try:
            trace_id = parse_jaeger_trace_id(call.args.get("trace_id"))
        except ValueError as exc:
            raise BadParameter("trace_id", f"malformed parameter trace_id: {exc}") from None
        window = None
        start, end = _either("startTime", "start_time")(call), _either("endTime", "end_time")(call)
        if start is not None and end is not None:
            window = TimeRange(start, end) if start < end else None
        found = await self._reader.get_traces(call.scope, [trace_id], window, call.caller)
        return _result([traces for _, traces in found])


def _result(traces: list[TracesData]) -> Any:
    """api_v3's answer: every trace's resource spans in one TracesData, wrapped in ``result``; 404 for none."""
    if not traces:
        raise TracesNotFound(NO_TRACES_FOUND)
    combined = TracesData()
    for trace in traces:
        combined.resource_spans.extend(trace.resource_spans)
    return {"result": orjson.Fragment(encode_otlp_json(combined))}


def _v3_summary(overview: TraceOverview) -> dict[str, Any]:
    """A TraceSummary as api_v3's JSON writes it (proto3 JSON: 64-bit integers as strings, zeros left out)."""
    summary, stats = overview.summary, overview.stats
    document: dict[str, Any] = {
        "traceId": summary.trace_id,
        "rootServiceName": summary.root_service,
        "rootOperationName": summary.root_name,
        "minStartTimeUnixNano": str(summary.start_ns),
        "maxEndTimeUnixNano": str(summary.end_ns),
        "spanCount": summary.span_count,
        "errorSpanCount": summary.error_count,
        "orphanSpanCount": stats.orphans,
        "services": [
            {"name": name, "spanCount": counts.spans, "errorSpanCount": counts.errors}
            for name, counts in sorted(stats.services.items())
        ],
    }
    return _without_zeros(document)


def _without_zeros(document: dict[str, Any]) -> dict[str, Any]:
    """proto3 JSON leaves out fields at their zero value."""
    out: dict[str, Any] = {}
    for key, value in document.items():
        if isinstance(value, list):
            value = [_without_zeros(item) if isinstance(item, dict) else item for item in value]
        if value in (0, "", "0", [], None):
            continue
        out[key] = value
    return out


# -------------------------------------------------------------------------------------------------------------
# GET /api/traces/{traceID}: Jaeger's JSON, or Tempo's protobuf


class _TraceById:
    def __init__(self, reader: JaegerReader, tempo: tempo_http.TempoTraceAnswers) -> None:
        self._reader = reader
        self._tempo = tempo

    def endpoint(self) -> Endpoint:
        return Endpoint(
            "/api/traces/{traceID}",
            "jaegerOrTempoTrace",
            "One trace: Tempo's protobuf when Accept names application/protobuf, else Jaeger's JSON",
            self.trace,
            parameters=(
                _param("traceID", str, "path"),
                _param("start", str),
                _param("end", str),
                _param("raw", str),
            ),
            openapi=False,
            strict=False,
            error_response=jaeger_error,
            tags=(TAG,),
        )

    async def trace(self, call: ApiCall) -> Response:
        if tempo_http.wants_protobuf(call.request):
            return await self._tempo.trace_v1(call, call.args.get("traceID"))
        try:
            trace_id = parse_jaeger_trace_id(call.args.get("traceID"))
            window = _micros_window(call.args.get("start"), call.args.get("end"))
            if call.args.get("raw") is not None:
                parse_boolean(call.args.get("raw"))
        except ValueError as exc:
            return jaeger_error(BadParameter("traceID", str(exc)))
        found = await self._reader.get_traces(call.scope, [trace_id], window, call.caller)
        if not found:
            return jaeger_error(TracesNotFound(TRACE_NOT_FOUND))
        return JsonResponse(_envelope([ui_trace(traces) for _, traces in found]))


def _micros_window(start: str | None, end: str | None) -> TimeRange | None:
    """The optional start/end hint of a trace fetch, in Unix microseconds; None unless both are given."""
    if start is None or end is None:
        return None
    parse = _unix_units(NANOS_PER_MICRO)
    start_ns, end_ns = parse(start), parse(end)
    return TimeRange(start_ns, end_ns + NANOS_PER_MICRO) if start_ns <= end_ns else None
