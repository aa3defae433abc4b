"""Walk OTLP spans into the column lists of the ``otel_traces`` table.

Values are rendered exactly as the contrib clickhouseexporter renders them
(pdata's ``Value.AsString``): strings as they are, booleans ``true``/``false``,
doubles in plain decimal notation, bytes in base64, arrays and maps as compact
JSON. Span and trace IDs are lower-case hex; span kind and status code are the
words pdata prints (``Server``, ``Error``...). Times are nanosecond integers.

This is the exporter's hot path: one pass into flat lists, which Arrow turns
into columns in C; the insert then ships the table in Arrow format, which
ClickHouse parses natively.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

import pyarrow as pa
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status, TracesData

SERVICE_NAME_KEY = "service.name"

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


def format_double(value: float) -> str:
    """A double as Go's strconv.FormatFloat(v, 'f', -1, 64): shortest digits, never an exponent."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    text = repr(value)
    if "e" in text or "E" in text:
        text = format(Decimal(text), "f")
    elif text.endswith(".0"):
        text = text[:-2]
    return text


def _raw(value: AnyValue) -> Any:
    """An AnyValue as a plain Python value for JSON, as pdata's AsRaw gives it."""
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return value.string_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "int_value":
        return value.int_value
    if kind == "double_value":
        d = value.double_value
        return d if math.isfinite(d) else format_double(d)
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode("ascii")
    if kind == "array_value":
        return [_raw(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: _raw(kv.value) for kv in value.kvlist_value.values}
    return None


def _to_json(raw: Any) -> str:
    return json.dumps(raw, separators=(",", ":"), ensure_ascii=False, sort_keys=True)


def value_as_string(value: AnyValue) -> str:
    """An AnyValue as the one string the ``Map(..., String)`` columns store."""
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return value.string_value
    if kind == "int_value":
        return str(value.int_value)
    if kind == "bool_value":
        return "true" if value.bool_value else "false"
    if kind == "double_value":
        return format_double(value.double_value)
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode("ascii")
    if kind == "array_value" or kind == "kvlist_value":
        return _to_json(_raw(value))
    return ""


def attributes_map(attributes: Iterable[KeyValue]) -> dict[str, str]:
    """Attributes as the string map the table stores; a later duplicate key wins, as in pdata."""
    return {kv.key: value_as_string(kv.value) for kv in attributes}


class _MapBuilder:
    """Builds an Arrow ``map<string, string>`` column from flat key and value lists plus offsets.

    ``rendered`` caches the JSON of array and map values by their serialized
    bytes: the same list (finish reasons, stop sequences) recurs across a batch,
    and rendering JSON costs far more than serializing.
    """

    __slots__ = ("keys", "values", "offsets", "rendered")

    def __init__(self, rendered: dict[bytes, str]) -> None:
        self.keys: list[str] = []
        self.values: list[str] = []
        self.offsets: list[int] = [0]
        self.rendered = rendered

    def add(self, attributes: Iterable[KeyValue]) -> None:
        add_key, add_value, rendered = self.keys.append, self.values.append, self.rendered
        for kv in attributes:
            value = kv.value
            add_key(kv.key)
            kind = value.WhichOneof("value")
            # Most GenAI attributes are strings and integers: no general dispatch for them.
            if kind == "string_value":
                add_value(value.string_value)
            elif kind == "int_value":
                add_value(str(value.int_value))
            elif kind == "array_value" or kind == "kvlist_value":
                wire = value.SerializeToString()
                text = rendered.get(wire)
                if text is None:
                    text = rendered[wire] = value_as_string(value)
                add_value(text)
            else:
                add_value(value_as_string(value))
        self.offsets.append(len(self.keys))

    def add_flat(self, keys: list[str], values: list[str]) -> None:
        self.keys.extend(keys)
        self.values.extend(values)
        self.offsets.append(len(self.keys))

    def build(self) -> pa.MapArray:
        return pa.MapArray.from_arrays(
            pa.array(self.offsets, pa.int32()), pa.array(self.keys, pa.string()), pa.array(self.values, pa.string())
        )


class _ListBuilder:
    """Offsets of a list column whose items are appended elsewhere."""

    __slots__ = ("offsets",)

    def __init__(self) -> None:
        self.offsets: list[int] = [0]

    def wrap(self, values: pa.Array) -> pa.ListArray:
        return pa.ListArray.from_arrays(pa.array(self.offsets, pa.int32()), values)


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
    resource_attributes = _MapBuilder(rendered)
    scope_name: list[str] = []
    scope_version: list[str] = []
    span_attributes = _MapBuilder(rendered)
    duration: list[int] = []
    status_code: list[str] = []
    status_message: list[str] = []
    events = _ListBuilder()
    event_times: list[int] = []
    event_names: list[str] = []
    event_attributes = _MapBuilder(rendered)
    links = _ListBuilder()
    link_trace_ids: list[str] = []
    link_span_ids: list[str] = []
    link_trace_states: list[str] = []
    link_attributes = _MapBuilder(rendered)
    kind_names = SPAN_KIND_NAMES
    status_names = STATUS_CODE_NAMES
    for traces in batches:
        for resource_spans in traces.resource_spans:
            resource_attrs = attributes_map(resource_spans.resource.attributes)
            resource_keys, resource_values = list(resource_attrs), list(resource_attrs.values())
            service = resource_attrs.get(SERVICE_NAME_KEY, "")
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
