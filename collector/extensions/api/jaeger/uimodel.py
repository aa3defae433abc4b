"""OTLP spans as the Jaeger UI's JSON trace: the ``data`` items of Jaeger's ``/api/traces`` answers.

The mapping is Jaeger's own, read from jaegertracing/jaeger (commit 8498073f):
internal/uimodel/model.go (the JSON shape), internal/uimodel/converter/v1/json
(from_domain.go, process_hashtable.go) and the OTLP-to-Jaeger translator it
runs first (opentelemetry-collector-contrib pkg/translator/jaeger,
traces_to_jaegerproto.go):

- ids: the span id in 16 hex digits; the trace id in 32, or 16 when its high
  half is zero (Jaeger's TraceID.String);
- times in microseconds since the epoch, the duration in microseconds;
- ``references``: the parent as CHILD_OF first, then each link as
  FOLLOWS_FROM (CHILD_OF when its ``opentracing.ref_type`` says so);
- ``tags``: ``otel.scope.name`` and ``otel.scope.version``, the span's
  attributes, then ``span.kind``, ``otel.status_code``, ``error`` (true on an
  error status), ``otel.status_description`` and ``w3c.tracestate``;
- ``logs``: one per event, its name as the ``event`` field, then its attributes;
- ``processes``: one per distinct resource (service name and other
  attributes), keyed ``p1``, ``p2``... in order of appearance; the spans name
  theirs by ``processID``.

Values keep the types the OTLP attributes carry (see query.attribute_types
for how the store's strings get them back): ``int64`` (as a string beyond
JavaScript's safe integers, as Jaeger does), ``float64``, ``bool``,
``binary`` (base64) and ``string``; arrays and maps are strings of JSON.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Iterable, Iterator
from typing import Any

from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status, TracesData

from exporters.clickhouse.columns import value_as_string

JS_MAX_SAFE_INTEGER = (1 << 53) - 1
NANOS_PER_MICRO = 1_000
NO_SERVICE_NAME = "OTLPResourceNoServiceName"  # the translator's name for a resource without service.name
SERVICE_NAME = "service.name"
REF_TYPE_ATTRIBUTE = "opentracing.ref_type"
CHILD_OF = "CHILD_OF"
FOLLOWS_FROM = "FOLLOWS_FROM"
EVENT_FIELD = "event"
SPAN_KIND_TAGS = {
    Span.SPAN_KIND_CLIENT: "client",
    Span.SPAN_KIND_SERVER: "server",
    Span.SPAN_KIND_PRODUCER: "producer",
    Span.SPAN_KIND_CONSUMER: "consumer",
    Span.SPAN_KIND_INTERNAL: "internal",
}
STATUS_CODE_TAGS = {Status.STATUS_CODE_OK: "OK", Status.STATUS_CODE_ERROR: "ERROR"}

Json = dict[str, Any]


def trace_id_text(trace_id: bytes) -> str:
    """A trace id as Jaeger prints it: 16 hex digits when its high half is zero, else 32."""
    text = trace_id.rjust(16, b"\0").hex()
    return text[16:] if text.startswith("0" * 16) else text


def span_id_text(span_id: bytes) -> str:
    return span_id.rjust(8, b"\0").hex()


def ui_trace(traces: TracesData) -> Json:
    """One trace's spans (all of ``traces``) as a Jaeger UI trace object."""
    processes: dict[tuple[Any, ...], str] = {}
    process_json: dict[str, Json] = {}
    spans: list[Json] = []
    for resource_spans in traces.resource_spans:
        process = _process(resource_spans.resource)
        identity = (process["serviceName"], tuple((t["key"], t["type"], repr(t["value"])) for t in process["tags"]))
        process_id = processes.get(identity)
        if process_id is None:
            process_id = processes[identity] = f"p{len(processes) + 1}"
            process_json[process_id] = process
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                spans.append(_span(span, scope_spans.scope, process_id))
    return {
        "traceID": spans[0]["traceID"] if spans else "",
        "spans": spans,
        "processes": process_json,
        "warnings": None,
    }


def _process(resource: Resource) -> Json:
    service = NO_SERVICE_NAME if not resource.attributes else ""
    tags = []
    for pair in resource.attributes:
        if pair.key == SERVICE_NAME:
            service = pair.value.string_value
        else:
            tags.append(key_value(pair.key, pair.value))
    return {"serviceName": service, "tags": tags}


def _span(span: Span, scope: InstrumentationScope, process_id: str) -> Json:
    trace_id = trace_id_text(span.trace_id)
    duration = max(0, span.end_time_unix_nano - span.start_time_unix_nano)
    return {
        "traceID": trace_id,
        "spanID": span_id_text(span.span_id),
        "operationName": span.name,
        "references": _references(span, trace_id),
        "startTime": span.start_time_unix_nano // NANOS_PER_MICRO,
        "duration": duration // NANOS_PER_MICRO,
        "tags": list(_tags(span, scope)),
        "logs": [
            {
                "timestamp": event.time_unix_nano // NANOS_PER_MICRO,
                "fields": _event_fields(event.name, event.attributes),
            }
            for event in span.events
        ],
        "processID": process_id,
        "warnings": None,
    }


def _references(span: Span, trace_id: str) -> list[Json]:
    references: list[Json] = []
    parent = span_id_text(span.parent_span_id) if any(span.parent_span_id) else ""
    if parent:
        references.append({"refType": CHILD_OF, "traceID": trace_id, "spanID": parent})
    for link in span.links:
        ref_type = FOLLOWS_FROM
        for pair in link.attributes:
            if pair.key == REF_TYPE_ATTRIBUTE and pair.value.string_value == "child_of":
                ref_type = CHILD_OF
        link_trace, link_span = trace_id_text(link.trace_id), span_id_text(link.span_id)
        if parent and link_trace == trace_id and link_span == parent:
            references[0]["refType"] = ref_type  # a link to the parent only says which kind of reference it is
            continue
        references.append({"refType": ref_type, "traceID": link_trace, "spanID": link_span})
    return references


def _tags(span: Span, scope: InstrumentationScope) -> Iterator[Json]:
    if scope.name:
        yield _string_tag("otel.scope.name", scope.name)
    if scope.version:
        yield _string_tag("otel.scope.version", scope.version)
    for pair in span.attributes:
        yield key_value(pair.key, pair.value)
    if span.kind in SPAN_KIND_TAGS:
        yield _string_tag("span.kind", SPAN_KIND_TAGS[span.kind])
    if span.status.code in STATUS_CODE_TAGS:
        yield _string_tag("otel.status_code", STATUS_CODE_TAGS[span.status.code])
    if span.status.code == Status.STATUS_CODE_ERROR:
        yield {"key": "error", "type": "bool", "value": True}
    if span.status.message:
        yield _string_tag("otel.status_description", span.status.message)
    if span.trace_state:
        yield _string_tag("w3c.tracestate", span.trace_state)


def _event_fields(name: str, attributes: Iterable[KeyValue]) -> list[Json]:
    fields = [key_value(pair.key, pair.value) for pair in attributes]
    if name and not any(field["key"] == EVENT_FIELD for field in fields):
        fields.insert(0, _string_tag(EVENT_FIELD, name))
    return fields


def _string_tag(key: str, value: str) -> Json:
    return {"key": key, "type": "string", "value": value}


def key_value(key: str, value: AnyValue) -> Json:
    """An OTLP attribute as a Jaeger UI key/value with its type."""
    kind = value.WhichOneof("value")
    if kind == "bool_value":
        return {"key": key, "type": "bool", "value": value.bool_value}
    if kind == "int_value":
        number = value.int_value
        shown: int | str = number if -JS_MAX_SAFE_INTEGER <= number <= JS_MAX_SAFE_INTEGER else str(number)
        return {"key": key, "type": "int64", "value": shown}
    if kind == "double_value" and math.isfinite(value.double_value):
        return {"key": key, "type": "float64", "value": value.double_value}
    if kind == "bytes_value":
        return {"key": key, "type": "binary", "value": base64.b64encode(value.bytes_value).decode("ascii")}
    return _string_tag(key, value_as_string(value))
