"""Tempo's HTTP query API, as Grafana's Tempo data source calls it.

Parameters, answers and errors follow grafana/tempo (commit ad33aa8f):
pkg/api/http.go (ParseSearchRequest, ParseTraceByIDRequest,
MarshalingFormatFromAcceptHeader), pkg/api/search_tags.go, pkg/tempopb,
modules/frontend/combiner (trace by id: protobuf or JSON by Accept) and cmd/tempo/app (echo,
buildinfo). Answers are encoded from tempopb messages (tempo/proto), so JSON
keys are the proto3 JSON names Tempo writes: ``traceID``,
``rootServiceName``, 64-bit integers as strings, ids in OTLP traces in base64.
Errors are plain text with the status, as Tempo answers them.

- ``/api/search``: ``q`` (the TraceQL subset of tempo.traceql) or ``tags``
  (logfmt ``key=value``: each an equality on one span, ``name`` the span
  name, ``status.code`` its status, ``service.name`` the resource's),
  ``start``/``end`` (Unix seconds; default the configured default window up
  to now), ``limit`` (default 20), ``spss`` (spans per spanset, default 3),
  ``minDuration``/``maxDuration`` (bounds on the trace's duration);
- ``/api/search/tags``, ``/api/v2/search/tags``: attribute keys by scope
  (``scope``: span, resource, intrinsic; ``q`` narrows to spans it matches
  when it is in the subset, and is ignored otherwise, as autocompletion sends
  unfinished queries);
- ``/api/search/tag/{tag}/values`` (``tag`` an attribute name, span's else
  resource's) and ``/api/v2/search/tag/{tag}/values`` (``tag`` a TraceQL
  field: ``span.x``, ``resource.x``, ``.x``, ``name``, ``status``, ``kind``);
- ``/api/traces/{id}`` (protobuf only: the path's JSON is Jaeger's, see
  jaeger.http) and ``/api/v2/traces/{id}`` (protobuf or JSON); ``start``/``end``
  in Unix seconds narrow the read;
- ``/api/echo`` and ``/api/status/buildinfo`` (Tempo 2.1.0's API level: Grafana then leaves gRPC
  streaming, which is not served here, off).
"""

from __future__ import annotations

from importlib import metadata
from typing import Any

import orjson
from google.protobuf import json_format
from google.protobuf.message import Message
from opentelemetry.proto.trace.v1.trace_pb2 import TracesData
from starlette.requests import HTTPConnection
from starlette.responses import PlainTextResponse, Response

from collector.extensions.api.context import ApiContext
from collector.extensions.api.durations import parse_duration
from collector.extensions.api.endpoints import ApiCall, Endpoint, Handler
from collector.extensions.api.errors import ApiError
from collector.extensions.api.params import Parameter
from collector.extensions.api.query.spanmatch import DurationBounds
from collector.extensions.api.query.sql import TimeRange
from collector.extensions.api.spanfilter import (
    Attribute,
    Comparison,
    Intrinsic,
    SpanFilter,
    StatusValue,
    all_of,
)
from collector.extensions.api.tempo import traceql
from collector.extensions.api.tempo.logfmt import LogfmtError, decode_pairs
from collector.extensions.api.tempo.proto import tempo_pb2
from collector.extensions.api.tempo.reader import EMPTY_TAG_SCOPES, TAG_SCOPES, SearchRequest, TempoReader
from collector.extensions.api.traceid import parse_hex_trace_id

PROTOBUF = "application/protobuf"
JSON = "application/json"
NANOS_PER_SECOND = 1_000_000_000
# Tempo's defaults: 20 traces per search, 3 spans per spanset.
DEFAULT_SEARCH_LIMIT = 20
DEFAULT_SPANS_PER_SPANSET = 3
# Tag values one answer lists at most (and when the caller names no limit).
MAX_TAG_VALUES = 1_000
QUERY_MODES = ("", "all", "ingesters", "blocks", "external")
# What /api/status/buildinfo reports: the last Tempo release without gRPC streaming. Grafana's Tempo data source
# turns streaming on from 2.2.0 (featuresToTempoVersion in its datasource.ts), and this collector serves none.
TEMPO_API_VERSION = "2.1.0"
LEGACY_RESERVED = frozenset({"q", "tags", "minDuration", "maxDuration", "limit", "spss", "start", "end"})
TAG = "Tempo"


class TempoError(ApiError):
    """An answer other than success, as Tempo gives it: the status and a line of text."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def tempo_error(error: ApiError) -> Response:
    return PlainTextResponse(str(error) + "\n", error.status)


def wants_protobuf(request: HTTPConnection) -> bool:
    """Tempo's rule (MarshalingFormatFromAcceptHeader): protobuf when Accept names it, else JSON."""
    return PROTOBUF in request.headers.get("accept", "")


def _encode(message: Message, request: HTTPConnection) -> Response:
    if wants_protobuf(request):
        return Response(message.SerializeToString(), media_type=PROTOBUF)
    return Response(orjson.dumps(json_format.MessageToDict(message)), media_type=JSON)


def _trace_message(traces: TracesData) -> tempo_pb2.Trace:
    """Tempo's Trace: the same wire format as OTLP's TracesData (field 1, the resource spans)."""
    return tempo_pb2.Trace.FromString(traces.SerializeToString())


def _seconds(name: str, text: str | None) -> int | None:
    if text is None:
        return None
    if not (text.isascii() and text.isdigit()):
        raise TempoError(400, f"invalid {name}: expected Unix seconds, got {text!r}")
    return int(text)


def _window(call: ApiCall, start: int | None, end: int | None) -> TimeRange:
    """The request's window: Unix seconds, both or neither; without them the configured default up to now."""
    if start and end:
        if end <= start:
            raise TempoError(400, f"http parameter start must be before end. received start={start} end={end}")
        window_ns = (end - start) * NANOS_PER_SECOND
        if window_ns > call.context.config.limits.max_time_window * NANOS_PER_SECOND:
            raise TempoError(400, "the window from start to end is longer than the configured max_time_window")
        return TimeRange(start * NANOS_PER_SECOND, end * NANOS_PER_SECOND)
    now = call.context.clock()
    return TimeRange(now - int(call.context.config.limits.default_time_window * NANOS_PER_SECOND), now + 1)


class TempoTraceAnswers:
    """Trace by id, v1 and v2: shared with jaeger.http, which serves the v1 path for both projects."""

    def __init__(self, context: ApiContext) -> None:
        self._reader = TempoReader(context.runner, context.tables, context.config.limits.max_trace_spans)

    async def _trace(self, call: ApiCall, trace_id_text: str) -> TracesData | None:
        query = call.request.query_params
        try:
            trace_id = parse_hex_trace_id(trace_id_text)
        except ValueError as exc:
            raise TempoError(400, str(exc)) from None
        if query.get("mode", "") not in QUERY_MODES:
            raise TempoError(400, f"invalid value for mode {query.get('mode')}")
        if query.get("q"):
            raise TempoError(400, "q (a span filter on a trace by id) is not supported; fetch the whole trace")
        start, end = _seconds("start", query.get("start")), _seconds("end", query.get("end"))
        if start and end and end <= start:
            raise TempoError(400, f"http parameter start must be before end. received start={start} end={end}")
        window = TimeRange(start * NANOS_PER_SECOND, end * NANOS_PER_SECOND) if start and end else None
        return await self._reader.trace(call.scope, trace_id, window, call.caller)

    async def trace_v1(self, call: ApiCall, trace_id_text: str) -> Response:
        try:
            traces = await self._trace(call, trace_id_text)
        except TempoError as exc:
            return tempo_error(exc)
        if traces is None:
            return Response(status_code=404)  # Tempo's trace-by-id combiner: 404 with no body
        # Only asked for protobuf (jaeger.http answers the path's JSON): Tempo's Trace, OTLP's wire format.
        return Response(_trace_message(traces).SerializeToString(), media_type=PROTOBUF)

    async def trace_v2(self, call: ApiCall) -> Response:
        traces = await self._trace(call, call.args.get("traceID"))
        if traces is None:
            raise TempoError(404, "trace not found")
        response = tempo_pb2.TraceByIDResponse(trace=_trace_message(traces), metrics=tempo_pb2.TraceByIDMetrics())
        return _encode(response, call.request)


def routes(context: ApiContext) -> list[Endpoint]:
    """The Tempo endpoints over ``context``'s store (``/api/traces/{id}`` is jaeger.http's)."""
    return _TempoApi(context).endpoints()


class _TempoApi:
    def __init__(self, context: ApiContext) -> None:
        self._reader = TempoReader(context.runner, context.tables, context.config.limits.max_trace_spans)
        self._traces = TempoTraceAnswers(context)
        self._max_limit = context.config.limits.max_page_limit

    def endpoints(self) -> list[Endpoint]:
        def endpoint(path: str, operation: str, summary: str, handler: Handler) -> Endpoint:
            # Parameters are read from the query string by each handler, as Tempo reads them (its names and
            # messages); the path parameter is declared so the route passes it through.
            path_params = tuple(_passthrough(name) for name in ("traceID", "tagName") if "{" + name + "}" in path)
            return Endpoint(
                path,
                operation,
                summary,
                handler,
                parameters=path_params,
                openapi=False,
                strict=False,
                error_response=tempo_error,
                tags=(TAG,),
            )

        return [
            endpoint("/api/v2/traces/{traceID}", "tempoTraceV2", "Tempo: one trace (v2)", self._traces.trace_v2),
            endpoint("/api/search", "tempoSearch", "Tempo: search", self.search),
            endpoint("/api/search/tags", "tempoTags", "Tempo: tag names", self.tags_v1),
            endpoint("/api/v2/search/tags", "tempoTagsV2", "Tempo: tag names by scope", self.tags_v2),
            endpoint("/api/search/tag/{tagName}/values", "tempoTagValues", "Tempo: tag values", self.values_v1),
            endpoint(
                "/api/v2/search/tag/{tagName}/values", "tempoTagValuesV2", "Tempo: typed tag values", self.values_v2
            ),
            endpoint("/api/echo", "tempoEcho", "Tempo: echo", self.echo),
            endpoint("/api/status/buildinfo", "tempoBuildInfo", "Tempo: build information", self.buildinfo),
        ]

    async def search(self, call: ApiCall) -> Response:
        query = call.request.query_params
        if "q" in query and "tags" in query:
            raise TempoError(400, "invalid request: can't specify tags and q in the same query")
        start, end = _seconds("start", query.get("start")), _seconds("end", query.get("end"))
        condition = self._search_condition(call, bool(start or end))
        limit = self._positive("limit", query.get("limit"), DEFAULT_SEARCH_LIMIT)
        if limit > self._max_limit:
            raise TempoError(400, f"invalid limit: at most {self._max_limit}")
        spss = self._positive("spss", query.get("spss"), DEFAULT_SPANS_PER_SPANSET, allow_zero=True)
        bounds = DurationBounds(self._duration("minDuration", query), self._duration("maxDuration", query))
        if bounds.min_ns and bounds.max_ns is not None and bounds.min_ns > bounds.max_ns:
            raise TempoError(400, "invalid maxDuration: must be greater than minDuration")
        request = SearchRequest(_window(call, start, end), condition, limit, spss or DEFAULT_SPANS_PER_SPANSET, bounds)
        return _encode(await self._reader.search(call.scope, request, call.caller), call.request)

    def _search_condition(self, call: ApiCall, ranged: bool) -> SpanFilter | None:
        query = call.request.query_params
        if "q" in query:
            try:
                return traceql.parse(query["q"])
            except traceql.TraceQLError as exc:
                raise TempoError(400, f"invalid TraceQL query: {exc}") from None
        if "tags" in query:
            try:
                pairs = decode_pairs(query["tags"])
            except LogfmtError as exc:
                raise TempoError(400, str(exc)) from None
        elif not ranged:
            # Tempo's oldest search: tags as query parameters of their own (Grafana's first Tempo search).
            pairs = [(key, value) for key, value in query.items() if key not in LEGACY_RESERVED and value]
        else:
            pairs = []
        return all_of([_tag_condition(key, value) for key, value in pairs])

    @staticmethod
    def _positive(name: str, text: str | None, default: int, allow_zero: bool = False) -> int:
        if text is None:
            return default
        if not (text.isascii() and text.isdigit()):
            raise TempoError(400, f"invalid {name}: expected a whole number, got {text!r}")
        value = int(text)
        if value == 0 and not allow_zero:
            raise TempoError(400, f"invalid {name}: must be a positive number")
        return value

    @staticmethod
    def _duration(name: str, query: Any) -> int | None:
        text = query.get(name)
        if text is None:
            return None
        try:
            return parse_duration(text)
        except ValueError as exc:
            raise TempoError(400, f"invalid {name}: {exc}") from None

    def _tags_request(self, call: ApiCall) -> tuple[TimeRange, str, SpanFilter | None]:
        query = call.request.query_params
        scope = query.get("scope", "")
        if scope not in ("", *TAG_SCOPES, *EMPTY_TAG_SCOPES):
            raise TempoError(400, f"invalid scope: {scope}")
        window = _window(call, _seconds("start", query.get("start")), _seconds("end", query.get("end")))
        return window, scope, _autocomplete_filter(query.get("q", ""))

    async def tags_v1(self, call: ApiCall) -> Response:
        window, scope, condition = self._tags_request(call)
        names = await self._reader.tag_names(call.scope, window, scope, condition, call.caller)
        # v1 lists attribute names; the intrinsics only when asked for by scope.
        listed = [tags for name, tags in names.items() if name != "intrinsic" or scope == "intrinsic"]
        merged = sorted({name for tags in listed for name in tags})
        return _encode(tempo_pb2.SearchTagsResponse(tagNames=merged, metrics=_metadata_metrics()), call.request)

    async def tags_v2(self, call: ApiCall) -> Response:
        window, scope, condition = self._tags_request(call)
        names = await self._reader.tag_names(call.scope, window, scope, condition, call.caller)
        response = tempo_pb2.SearchTagsV2Response(metrics=_metadata_metrics())
        for name, tags in names.items():
            response.scopes.add(name=name, tags=tags)
        return _encode(response, call.request)

    def _values_request(self, call: ApiCall) -> tuple[TimeRange, int, SpanFilter | None]:
        query = call.request.query_params
        window = _window(call, _seconds("start", query.get("start")), _seconds("end", query.get("end")))
        limit = self._positive("limit", query.get("limit"), MAX_TAG_VALUES, allow_zero=True) or MAX_TAG_VALUES
        self._positive("maxStaleValues", query.get("maxStaleValues"), 0, allow_zero=True)
        return window, min(limit, MAX_TAG_VALUES), _autocomplete_filter(query.get("q", ""))

    async def values_v1(self, call: ApiCall) -> Response:
        window, limit, condition = self._values_request(call)
        field = Attribute(call.args.get("tagName"))
        values = await self._reader.tag_values(call.scope, window, field, limit, condition, call.caller)
        response = tempo_pb2.SearchTagValuesResponse(tagValues=[value.value for value in values])
        response.metrics.CopyFrom(_metadata_metrics())
        return _encode(response, call.request)

    async def values_v2(self, call: ApiCall) -> Response:
        window, limit, condition = self._values_request(call)
        try:
            field = traceql.parse_field(call.args.get("tagName"))
        except traceql.TraceQLError as exc:
            raise TempoError(400, f"please provide a valid tagName: {exc}") from None
        values = await self._reader.tag_values(call.scope, window, field, limit, condition, call.caller)
        return _encode(tempo_pb2.SearchTagValuesV2Response(tagValues=values, metrics=_metadata_metrics()), call.request)

    async def echo(self, call: ApiCall) -> Response:
        return PlainTextResponse("echo\n")  # Tempo answers http.Error(w, "echo", 200)

    async def buildinfo(self, call: ApiCall) -> Response:
        # prometheus/common's version fields, as Tempo's build.GetVersion fills them. The version is the Tempo
        # release whose API this matches, which Grafana reads to choose features; the collector names itself
        # in revision.
        info = {
            "version": TEMPO_API_VERSION,
            "revision": f"genai-collector {metadata.version('genai-collector')}",
            "branch": "",
            "buildUser": "",
            "buildDate": "",
            "goVersion": "",
        }
        return Response(orjson.dumps(info), media_type=JSON)


def _passthrough(name: str) -> Parameter:
    """A path parameter passed through as given (the handler parses it and answers Tempo's errors)."""
    return Parameter(name, name, str, {"type": "string"}, location="path")


def _metadata_metrics() -> tempo_pb2.MetadataMetrics:
    return tempo_pb2.MetadataMetrics(completedJobs=1, totalJobs=1)


def _autocomplete_filter(text: str) -> SpanFilter | None:
    """The spans ``q`` narrows tag listings to; an unfinished or unsupported query narrows nothing."""
    if not text:
        return None
    try:
        return traceql.parse(text)
    except traceql.TraceQLError:
        return None


def _tag_condition(key: str, value: str) -> Comparison:
    """One ``tags=`` pair: Tempo's well-known names read the span's fields; any other is an attribute."""
    if key == "name":
        return Comparison(Intrinsic("name"), "=", value)
    if key == "status.code" and value in ("ok", "error", "unset"):
        return Comparison(Intrinsic("status"), "=", StatusValue(value))
    if key == "service.name":
        return Comparison(Attribute("service.name", "resource"), "=", value)
    if key in ("root.name", "root.service.name"):
        raise TempoError(400, f"invalid tags: {key} (a property of the trace's root span) is not supported")
    return Comparison(Attribute(key), "=", value)
