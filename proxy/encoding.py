"""Finished SDK spans as OTLP protobuf ``TracesData``, for the pipeline the proxy feeds in-process.

The OpenTelemetry SDK's own encoder builds every attribute through several
layers of generic calls; setting the protobuf fields directly does the same
work several times faster (about 22 µs against 119 µs for a proxy span with
25 attributes), and the proxy encodes one span per call it forwards.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span as ProtoSpan
from opentelemetry.proto.trace.v1.trace_pb2 import Status as ProtoStatus
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanContext, StatusCode

from collector.component import TracesData
from collector.pdata import set_any_value

# SpanKind in the SDK counts from INTERNAL = 0; OTLP reserves 0 for UNSPECIFIED.
_KIND_OFFSET = 1
_STATUS_CODES = {StatusCode.UNSET: 0, StatusCode.OK: 1, StatusCode.ERROR: 2}
# OTLP span flags: bit 8 says whether "is remote" is known, bit 9 that the parent (or linked) context
# is remote. The W3C trace flags in the low byte are left out, as the SDK's own exporters leave them.
_FLAG_CONTEXT_HAS_IS_REMOTE = 0x100
_FLAG_CONTEXT_IS_REMOTE = 0x200


def spans_to_traces(spans: Sequence[ReadableSpan]) -> TracesData:
    """``spans`` grouped by resource and instrumentation scope, as the OTLP exporters group them."""
    traces = TracesData()
    by_resource: dict[int, Any] = {}
    by_scope: dict[tuple[int, int], Any] = {}
    for span in spans:
        resource = span.resource
        resource_spans = by_resource.get(id(resource))
        if resource_spans is None:
            resource_spans = traces.resource_spans.add()
            _set_attributes(resource_spans.resource.attributes, resource.attributes)
            resource_spans.schema_url = resource.schema_url or ""
            by_resource[id(resource)] = resource_spans
        scope = span.instrumentation_scope
        scope_key = (id(resource), id(scope))
        scope_spans = by_scope.get(scope_key)
        if scope_spans is None:
            scope_spans = resource_spans.scope_spans.add()
            if scope is not None:
                scope_spans.scope.name = scope.name
                scope_spans.scope.version = scope.version or ""
                scope_spans.schema_url = scope.schema_url or ""
            by_scope[scope_key] = scope_spans
        _fill_span(scope_spans.spans.add(), span)
    return traces


def _fill_span(out: ProtoSpan, span: ReadableSpan) -> None:
    context = span.context
    assert context is not None
    out.trace_id = context.trace_id.to_bytes(16, "big")
    out.span_id = context.span_id.to_bytes(8, "big")
    if context.trace_state:
        out.trace_state = context.trace_state.to_header()
    parent = span.parent
    if parent is not None:
        out.parent_span_id = parent.span_id.to_bytes(8, "big")
    out.flags = _flags(parent)
    out.name = span.name
    out.kind = cast(ProtoSpan.SpanKind.ValueType, span.kind.value + _KIND_OFFSET)
    out.start_time_unix_nano = span.start_time or 0
    out.end_time_unix_nano = span.end_time or 0
    _set_attributes(out.attributes, span.attributes or {})
    out.dropped_attributes_count = span.dropped_attributes
    for event in span.events:
        proto_event = out.events.add()
        proto_event.name = event.name
        proto_event.time_unix_nano = event.timestamp
        _set_attributes(proto_event.attributes, event.attributes or {})
    out.dropped_events_count = span.dropped_events
    for link in span.links:
        proto_link = out.links.add()
        proto_link.trace_id = link.context.trace_id.to_bytes(16, "big")
        proto_link.span_id = link.context.span_id.to_bytes(8, "big")
        _set_attributes(proto_link.attributes, link.attributes or {})
        proto_link.dropped_attributes_count = link.dropped_attributes
        proto_link.flags = _flags(link.context)
    out.dropped_links_count = span.dropped_links
    status = span.status
    out.status.SetInParent()  # present even when unset, as the SDK's encoder writes it
    out.status.code = cast(ProtoStatus.StatusCode.ValueType, _STATUS_CODES[status.status_code])
    out.status.message = status.description or ""


def _flags(context: SpanContext | None) -> int:
    if context is not None and context.is_remote:
        return _FLAG_CONTEXT_HAS_IS_REMOTE | _FLAG_CONTEXT_IS_REMOTE
    return _FLAG_CONTEXT_HAS_IS_REMOTE


def _set_attributes(target: Any, attributes: Mapping[str, Any]) -> None:
    for key, value in attributes.items():
        pair: KeyValue = target.add()
        pair.key = key
        set_any_value(pair.value, value)
