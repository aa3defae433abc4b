"""Walk OTLP spans into the column lists of the ``otel_traces`` table.

Values are rendered as the contrib clickhouseexporter renders them
(exporters.clickhouse.rendering). Span and trace IDs are lower-case hex; span
kind and status code are the words pdata prints (``Server``, ``Error``...).
Times are nanosecond integers.

This is the exporter's hot path: one pass into flat lists, which Arrow turns
into columns in C; the insert then ships the table in Arrow format, which
ClickHouse parses natively.
"""

from __future__ import annotations

from collections.abc import Iterable

import pyarrow as pa
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status, TracesData

from exporters.clickhouse.rendering import SERVICE_NAME_KEY as SERVICE_NAME_KEY
from exporters.clickhouse.rendering import ListBuilder, MapBuilder, resource_columns
from exporters.clickhouse.rendering import format_double as format_double
from exporters.clickhouse.rendering import value_as_string as value_as_string

# Column names in insert order; "Events.*" and "Links.*" are the Nested columns.
TRACE_COLUMNS: tuple[str, ...] = (
    "Timestamp",
    "TraceId",
    "SpanId",
    "ParentSpanId",
    "TraceState",
    "SpanName",
    "SpanKind",
    "ServiceName",
    "ResourceAttributes",
    "ScopeName",
    "ScopeVersion",
    "SpanAttributes",
    "Duration",
    "StatusCode",
    "StatusMessage",
    "Events.Timestamp",
    "Events.Name",
    "Events.Attributes",
    "Links.TraceId",
    "Links.SpanId",
    "Links.TraceState",
    "Links.Attributes",
)

SPAN_KIND_NAMES = {
    Span.SPAN_KIND_UNSPECIFIED: "Unspecified",
    Span.SPAN_KIND_INTERNAL: "Internal",
    Span.SPAN_KIND_SERVER: "Server",
    Span.SPAN_KIND_CLIENT: "Client",
    Span.SPAN_KIND_PRODUCER: "Producer",
    Span.SPAN_KIND_CONSUMER: "Consumer",
}
STATUS_CODE_NAMES = {
    Status.STATUS_CODE_UNSET: "Unset",
    Status.STATUS_CODE_OK: "Ok",
    Status.STATUS_CODE_ERROR: "Error",
}


def traces_to_table(batches: Iterable[TracesData]) -> pa.Table:
    """Every span of ``batches`` as an Arrow table with the columns of TRACE_COLUMNS, in that order."""
    timestamp: list[int] = []
    trace_id: list[str] = []
    span_id: list[str] = []
    parent_span_id: list[str] = []
    trace_state: list[str] = []
    span_name: list[str] = []
    span_kind: list[str] = []
    service_name: list[str] = []
    rendered: dict[bytes, str] = {}
    resource_attributes = MapBuilder(rendered)
    scope_name: list[str] = []
    scope_version: list[str] = []
    span_attributes = MapBuilder(rendered)
    duration: list[int] = []
    status_code: list[str] = []
    status_message: list[str] = []
    events = ListBuilder()
    event_times: list[int] = []
    event_names: list[str] = []
    event_attributes = MapBuilder(rendered)
    links = ListBuilder()
    link_trace_ids: list[str] = []
    link_span_ids: list[str] = []
    link_trace_states: list[str] = []
    link_attributes = MapBuilder(rendered)
    kind_names = SPAN_KIND_NAMES
    status_names = STATUS_CODE_NAMES
    for traces in batches:
        for resource_spans in traces.resource_spans:
            resource_keys, resource_values, service = resource_columns(resource_spans.resource.attributes)
            for scope_spans in resource_spans.scope_spans:
                scope = scope_spans.scope
                name_of_scope, version_of_scope = scope.name, scope.version
                for span in scope_spans.spans:
                    start = span.start_time_unix_nano
                    end = span.end_time_unix_nano
                    timestamp.append(start)
                    trace_id.append(span.trace_id.hex())
                    span_id.append(span.span_id.hex())
                    parent_span_id.append(span.parent_span_id.hex())
                    trace_state.append(span.trace_state)
                    span_name.append(span.name)
                    span_kind.append(kind_names.get(span.kind, "Unspecified"))
                    service_name.append(service)
                    resource_attributes.add_flat(resource_keys, resource_values)
                    scope_name.append(name_of_scope)
                    scope_version.append(version_of_scope)
                    span_attributes.add(span.attributes)
                    duration.append(end - start if end > start else 0)
                    status = span.status
                    status_code.append(status_names.get(status.code, "Unset"))
                    status_message.append(status.message)
                    for event in span.events:
                        event_times.append(event.time_unix_nano)
                        event_names.append(event.name)
                        event_attributes.add(event.attributes)
                    events.offsets.append(len(event_times))
                    for link in span.links:
                        link_trace_ids.append(link.trace_id.hex())
                        link_span_ids.append(link.span_id.hex())
                        link_trace_states.append(link.trace_state)
                        link_attributes.add(link.attributes)
                    links.offsets.append(len(link_trace_ids))
    nanos = pa.timestamp("ns")
    text = pa.string()
    arrays = [
        pa.array(timestamp, nanos),
        pa.array(trace_id, text),
        pa.array(span_id, text),
        pa.array(parent_span_id, text),
        pa.array(trace_state, text),
        pa.array(span_name, text),
        pa.array(span_kind, text),
        pa.array(service_name, text),
        resource_attributes.build(),
        pa.array(scope_name, text),
        pa.array(scope_version, text),
        span_attributes.build(),
        pa.array(duration, pa.uint64()),
        pa.array(status_code, text),
        pa.array(status_message, text),
        events.wrap(pa.array(event_times, nanos)),
        events.wrap(pa.array(event_names, text)),
        events.wrap(event_attributes.build()),
        links.wrap(pa.array(link_trace_ids, text)),
        links.wrap(pa.array(link_span_ids, text)),
        links.wrap(pa.array(link_trace_states, text)),
        links.wrap(link_attributes.build()),
    ]
    return pa.Table.from_arrays(arrays, names=list(TRACE_COLUMNS))
