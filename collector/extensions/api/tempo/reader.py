"""What Grafana's Tempo data source asks the store, answered as Tempo's own messages (tempopb).

- ``trace``: one trace's spans (``Trace``, the body of ``/api/traces/{id}``,
  and inside ``TraceByIDResponse`` for ``/api/v2/traces/{id}``);
- ``search``: the traces with a span meeting a TraceQL spanset (or ``tags=``),
  as ``SearchResponse``: for each trace its root service and span name, start,
  duration, spans and errors by service, and the spans that matched (at most
  ``spss``, with the attributes the query named);
- ``tag_names`` and ``tag_values``: attribute keys by scope, and the values of
  one tag, for the query editor's autocompletion.

Shapes follow grafana/tempo (commit ad33aa8f): pkg/tempopb/tempo.proto,
pkg/traceql/engine.go (asTraceSearchMetadata: trace ids without leading zeros,
span ids in 16 digits), pkg/search/util.go (a trace whose root span is not
stored says "<root span not yet received>").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from google.protobuf.internal.containers import RepeatedCompositeFieldContainer
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import TracesData

from collector.extensions.api import spanfilter
from collector.extensions.api.query import catalog, spanmatch
from collector.extensions.api.query.attribute_types import kind_of, set_typed
from collector.extensions.api.query.runner import QueryRunner
from collector.extensions.api.query.spanmatch import DurationBounds, MatchedSpan, TraceMatch, TraceOverview
from collector.extensions.api.query.sql import Scope, TimeRange, Window
from collector.extensions.api.query.tables import StoreTables
from collector.extensions.api.spanfilter import Attribute, Intrinsic, SpanFilter
from collector.extensions.api.tempo.proto import tempo_pb2
from collector.extensions.caller import CallerWatch

ROOT_SPAN_NOT_YET_RECEIVED = "<root span not yet received>"
NANOS_PER_MILLI = 1_000_000
SPAN_ID_HEX_CHARS = 16
# The intrinsics this collector answers for, as Tempo's v2 tags API names them (scope "intrinsic").
INTRINSIC_TAGS = (
    "duration", "kind", "name", "status", "statusMessage",
    "span:duration", "span:kind", "span:name", "span:status", "span:statusMessage",
)  # fmt: skip
TAG_SCOPES = ("span", "resource", "intrinsic")
# Scopes TraceQL has whose attributes the store does not keep apart: asked for, they list nothing.
EMPTY_TAG_SCOPES = ("event", "link", "instrumentation")
# Attribute keys listed per scope at most.
MAX_TAG_NAMES = 10_000
_STORED_TO_WORD = {
    **{stored: word for word, stored in spanfilter.STATUS_WORDS.items()},
    **{stored: word for word, stored in spanfilter.KIND_WORDS.items()},
}
_VALUE_TYPES = {"int": "int", "double": "float", "bool": "bool"}


@dataclass(frozen=True)
class SearchRequest:
    window: TimeRange
    condition: SpanFilter | None
    limit: int
    spans_per_spanset: int
    trace_duration: DurationBounds


class TempoReader:
    """The store as Tempo's query API sees it; every call is scoped to the caller's tenant."""

    def __init__(self, runner: QueryRunner, tables: StoreTables, max_trace_spans: int) -> None:
        self._runner = runner
        self._tables = tables
        self._max_trace_spans = max_trace_spans

    async def trace(
        self, scope: Scope, trace_id: str, window: Window | None = None, caller: CallerWatch | None = None
    ) -> TracesData | None:
        """The spans of ``trace_id`` (32 hex digits) visible in ``scope``; None when there are none."""
        found = await spanmatch.fetch_traces(
            self._runner, self._tables, scope, [trace_id], self._max_trace_spans, window, caller
        )
        return found.get(trace_id)

    async def search(
        self, scope: Scope, request: SearchRequest, caller: CallerWatch | None = None
    ) -> tempo_pb2.SearchResponse:
        matches = await spanmatch.find_traces(
            self._runner,
            self._tables,
            scope,
            request.window,
            request.condition,
            request.limit,
            request.spans_per_spanset,
            request.trace_duration,
            caller,
        )
        found = await spanmatch.overviews(
            self._runner, self._tables, scope, [match.trace_id for match in matches], caller
        )
        named = _named_fields(request.condition)
        response = tempo_pb2.SearchResponse()
        listed = [(match, found[match.trace_id]) for match in matches if match.trace_id in found]
        listed.sort(key=lambda pair: pair[1].summary.start_ns, reverse=True)
        for match, overview in listed:
            _fill_metadata(response.traces.add(), match, overview, named)
        response.metrics.inspectedTraces = len(listed)
        response.metrics.completedJobs = response.metrics.totalJobs = 1
        return response

    async def tag_names(
        self,
        scope: Scope,
        window: TimeRange,
        tag_scope: str,
        condition: SpanFilter | None,
        caller: CallerWatch | None = None,
    ) -> dict[str, list[str]]:
        """Tag names by scope (span, resource, intrinsic); ``tag_scope`` (empty: all) narrows to one."""
        names: dict[str, list[str]] = {}
        for level in ("span", "resource"):
            if tag_scope in ("", level):
                names[level] = await catalog.attribute_keys(
                    self._runner, self._tables, scope, window, level, MAX_TAG_NAMES, condition, caller
                )
        if tag_scope in ("", "intrinsic"):
            names["intrinsic"] = list(INTRINSIC_TAGS)
        for empty in EMPTY_TAG_SCOPES:
            if tag_scope == empty:
                names[empty] = []
        return names

    async def tag_values(
        self,
        scope: Scope,
        window: TimeRange,
        field: Attribute | Intrinsic,
        limit: int,
        condition: SpanFilter | None,
        caller: CallerWatch | None = None,
    ) -> list[tempo_pb2.TagValue]:
        """The values ``field`` takes, each with its TraceQL type (string, int, float, bool, keyword)."""
        runner, tables = self._runner, self._tables
        if isinstance(field, Attribute):
            levels: tuple[catalog.AttributeLevel, ...] = (
                ("span", "resource") if field.scope == "any" else (field.scope,)
            )
            if field.scope == "resource" and field.name == spanfilter.SERVICE_NAME:
                texts = await catalog.column_values(
                    runner, tables, scope, window, "ServiceName", limit, condition, caller
                )
            else:
                texts = await catalog.attribute_values(
                    runner, tables, scope, window, field.name, levels, limit, condition, caller
                )
            value_type = _VALUE_TYPES.get(kind_of(field.name) or "", "string")
            return [tempo_pb2.TagValue(type=value_type, value=text) for text in texts]
        if field.name in ("status", "kind"):
            words = spanfilter.STATUS_WORDS if field.name == "status" else spanfilter.KIND_WORDS
            column: catalog.ValueColumn = "StatusCode" if field.name == "status" else "SpanKind"
            stored = await catalog.column_values(runner, tables, scope, window, column, limit, condition, caller)
            present = {_STORED_TO_WORD.get(text) for text in stored}
            return [tempo_pb2.TagValue(type="keyword", value=word) for word in words if word in present]
        if field.name in ("name", "status_message"):
            column = "SpanName" if field.name == "name" else "StatusMessage"
            texts = await catalog.column_values(runner, tables, scope, window, column, limit, condition, caller)
            return [tempo_pb2.TagValue(type="string", value=text) for text in texts]
        return []  # duration: Tempo lists no values for it either


def _named_fields(condition: SpanFilter | None) -> list[Attribute | Intrinsic]:
    """The fields a query compares, each once, in order: the attributes a matched span reports."""
    return list(dict.fromkeys(comparison.field for comparison in spanfilter.comparisons(condition)))


def _fill_metadata(
    metadata: tempo_pb2.TraceSearchMetadata,
    match: TraceMatch,
    overview: TraceOverview,
    named: Sequence[Attribute | Intrinsic],
) -> None:
    summary, stats = overview.summary, overview.stats
    metadata.traceID = summary.trace_id.lstrip("0")
    if stats.roots:
        metadata.rootServiceName = summary.root_service
        metadata.rootTraceName = summary.root_name
    else:
        metadata.rootServiceName = ROOT_SPAN_NOT_YET_RECEIVED
    metadata.startTimeUnixNano = summary.start_ns
    metadata.durationMs = summary.duration_ns // NANOS_PER_MILLI
    for service, counts in stats.services.items():
        metadata.serviceStats[service].spanCount = counts.spans
        metadata.serviceStats[service].errorCount = counts.errors
    spanset = metadata.spanSets.add()
    spanset.matched = match.matched
    for matched in match.spans:
        _fill_span(spanset.spans.add(), matched, named)
    metadata.spanSet.CopyFrom(spanset)


def _fill_span(out: tempo_pb2.Span, span: MatchedSpan, named: Sequence[Attribute | Intrinsic]) -> None:
    out.spanID = span.span_id.rjust(SPAN_ID_HEX_CHARS, "0")
    out.name = span.name
    out.startTimeUnixNano = span.start_ns
    out.durationNanos = span.duration_ns
    for field in named:
        if isinstance(field, Attribute):
            if field.name in span.attributes:
                _add_attribute(out.attributes, field.name, span.attributes[field.name])
        elif field.name == "status":
            out.attributes.add(key="status").value.string_value = _STORED_TO_WORD.get(span.status, span.status)
        elif field.name == "kind":
            out.attributes.add(key="kind").value.string_value = _STORED_TO_WORD.get(span.kind, span.kind)


def _add_attribute(attributes: RepeatedCompositeFieldContainer[KeyValue], key: str, text: str) -> None:
    pair = attributes.add()
    pair.key = key
    set_typed(pair.value, key, text)
