"""Rows of ``otel_traces`` back into OTLP ``TracesData``: the one conversion every read of spans uses.

``SPAN_COLUMNS`` is what a query selects for it (times as Unix nanoseconds,
which Python's datetime cannot hold); ``rows_to_traces`` groups the rows by
resource (its attributes) and scope (name and version) in the order they come,
and rebuilds each span: ids from hex, kind and status from the words the
exporter writes, end time from start plus duration, events and links with
their attributes. Attribute values get their types back where the conventions
say what they are (query.attribute_types); the rest stay strings.

What the table does not keep cannot come back: dropped attribute, event and
link counts, span flags, schema URLs, and the scope's attributes are empty;
a resource's ``service.name`` is among its attributes as it was sent.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from google.protobuf.internal.containers import RepeatedCompositeFieldContainer
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status, TracesData

from collector.extensions.api.query.attribute_types import set_typed
from exporters.clickhouse.columns import SPAN_KIND_NAMES, STATUS_CODE_NAMES

# (alias, expression) of each column rows_to_traces reads.
SPAN_COLUMNS: tuple[tuple[str, str], ...] = (
    ("StartNanos", "toUnixTimestamp64Nano(Timestamp)"),
    ("TraceId", "TraceId"),
    ("SpanId", "SpanId"),
    ("ParentSpanId", "ParentSpanId"),
    ("TraceState", "TraceState"),
    ("SpanName", "SpanName"),
    ("SpanKind", "SpanKind"),
    ("ResourceAttributes", "ResourceAttributes"),
    ("ScopeName", "ScopeName"),
    ("ScopeVersion", "ScopeVersion"),
    ("SpanAttributes", "SpanAttributes"),
    ("Duration", "Duration"),
    ("StatusCode", "StatusCode"),
    ("StatusMessage", "StatusMessage"),
    ("EventNanos", "arrayMap(t -> toUnixTimestamp64Nano(t), `Events.Timestamp`)"),
    ("EventNames", "`Events.Name`"),
    ("EventAttributes", "`Events.Attributes`"),
    ("LinkTraceIds", "`Links.TraceId`"),
    ("LinkSpanIds", "`Links.SpanId`"),
    ("LinkTraceStates", "`Links.TraceState`"),
    ("LinkAttributes", "`Links.Attributes`"),
)
SPAN_SELECT: tuple[str, ...] = tuple(
    expression if expression == alias else f"{expression} AS {alias}" for alias, expression in SPAN_COLUMNS
)
# Deterministic order within a trace: by start, then span id.
SPAN_ORDER: tuple[str, ...] = ("Timestamp", "SpanId")

_KIND_BY_NAME = {name: kind for kind, name in SPAN_KIND_NAMES.items()}
_STATUS_BY_NAME = {name: code for code, name in STATUS_CODE_NAMES.items()}


def rows_to_traces(rows: Iterable[Mapping[str, Any]]) -> TracesData:
    """The spans of ``rows`` (selected with SPAN_SELECT) as TracesData, grouped by resource and scope."""
    traces = TracesData()
    resources: dict[tuple[tuple[str, str], ...], ResourceSpans] = {}
    scopes: dict[tuple[int, str, str], ScopeSpans] = {}
    for row in rows:
        resource_attributes: Mapping[str, str] = row["ResourceAttributes"]
        resource_key = tuple(sorted(resource_attributes.items()))
        resource_spans = resources.get(resource_key)
        if resource_spans is None:
            resource_spans = resources[resource_key] = traces.resource_spans.add()
            _fill_attributes(resource_spans.resource.attributes, resource_attributes)
        scope_key = (id(resource_spans), row["ScopeName"], row["ScopeVersion"])
        scope_spans = scopes.get(scope_key)
        if scope_spans is None:
            scope_spans = scopes[scope_key] = resource_spans.scope_spans.add()
            scope_spans.scope.name = row["ScopeName"]
            scope_spans.scope.version = row["ScopeVersion"]
        _fill_span(scope_spans.spans.add(), row)
    return traces


def _fill_span(span: Span, row: Mapping[str, Any]) -> None:
    span.trace_id = bytes.fromhex(row["TraceId"])
    span.span_id = bytes.fromhex(row["SpanId"])
    span.parent_span_id = bytes.fromhex(row["ParentSpanId"])
    span.trace_state = row["TraceState"]
    span.name = row["SpanName"]
    span.kind = _KIND_BY_NAME.get(row["SpanKind"], Span.SPAN_KIND_UNSPECIFIED)
    start = int(row["StartNanos"])
    span.start_time_unix_nano = start
    span.end_time_unix_nano = start + int(row["Duration"])
    _fill_attributes(span.attributes, row["SpanAttributes"])
    span.status.code = _STATUS_BY_NAME.get(row["StatusCode"], Status.STATUS_CODE_UNSET)
    span.status.message = row["StatusMessage"]
    for time, name, attributes in zip(row["EventNanos"], row["EventNames"], row["EventAttributes"], strict=True):
        event = span.events.add()
        event.time_unix_nano = int(time)
        event.name = name
        _fill_attributes(event.attributes, attributes)
    links = zip(row["LinkTraceIds"], row["LinkSpanIds"], row["LinkTraceStates"], row["LinkAttributes"], strict=True)
    for trace_id, span_id, trace_state, attributes in links:
        link = span.links.add()
        link.trace_id = bytes.fromhex(trace_id)
        link.span_id = bytes.fromhex(span_id)
        link.trace_state = trace_state
        _fill_attributes(link.attributes, attributes)


def _fill_attributes(out: RepeatedCompositeFieldContainer[KeyValue], attributes: Mapping[str, str]) -> None:
    for key, text in attributes.items():
        pair = out.add()
        pair.key = key
        set_typed(pair.value, key, text)
