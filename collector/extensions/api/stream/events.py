"""What the live stream sends: spans, GenAI calls and findings made from a batch the pipeline accepted.

Each event carries what the filters look at (kind, service, tenant, models,
severity) and its JSON payload, encoded once for every client. A call event
has the fields of a /api/v1/calls item and a finding event those of a
/api/v1/findings item (the same records build both), so a client can switch
between reading the store and watching the stream. A span's attributes keep
their OTLP types (bytes in base64).
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, TracesData

from collector import findings, semconv
from collector.extensions.api.params import format_timestamp
from collector.extensions.api.query.calls import call_from_span
from collector.extensions.api.query.findings import FindingRecord
from collector.pdata import any_value
from exporters.clickhouse.columns import SPAN_KIND_NAMES, STATUS_CODE_NAMES, value_as_string

Kind = Literal["span", "call", "finding"]
KINDS: tuple[Kind, ...] = ("span", "call", "finding")
NANOS_PER_MILLISECOND = 1_000_000
_FINDING_CORE = {findings.DETECTOR, findings.CATEGORY, findings.SEVERITY, findings.CONFIDENCE}


@dataclass(frozen=True)
class StreamEvent:
    kind: Kind
    service: str
    tenant: str
    models: frozenset[str]
    severity_rank: int  # a finding's severity; a span's or call's worst finding; 0 for none
    payload: dict[str, Any]
    data: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "data", orjson.dumps(self.payload))


def _plain(value: Any) -> Any:
    """An attribute value as JSON holds it: bytes in base64, the rest as they are."""
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value


def _attributes(pairs: Iterable[KeyValue]) -> dict[str, Any]:
    return {pair.key: _plain(any_value(pair.value)) for pair in pairs}


def _span_events(span: Span, service: str, resource_attributes: dict[str, Any]) -> list[StreamEvent]:
    attributes = _attributes(span.attributes)
    tenant = str(attributes.get(semconv.TENANT_ID, resource_attributes.get(semconv.TENANT_ID, "")))
    models = frozenset(
        str(attributes[name]) for name in (semconv.REQUEST_MODEL, semconv.RESPONSE_MODEL) if name in attributes
    )
    worst = findings.SEVERITY_RANK.get(str(attributes.get(findings.FINDINGS_MAX_SEVERITY, "")), 0)
    trace_id, span_id = span.trace_id.hex(), span.span_id.hex()
    start = span.start_time_unix_nano
    duration = max(0, span.end_time_unix_nano - start)
    status = STATUS_CODE_NAMES.get(span.status.code, "Unset")
    events = [
        StreamEvent(
            "span",
            service,
            tenant,
            models,
            worst,
            {
                "trace_id": trace_id,
                "span_id": span_id,
                "parent_span_id": span.parent_span_id.hex(),
                "name": span.name,
                "kind": SPAN_KIND_NAMES.get(span.kind, "Unspecified"),
                "service": service,
                "tenant": tenant,
                "start": format_timestamp(start),
                "duration_ms": duration / NANOS_PER_MILLISECOND,
                "status": status,
                "status_message": span.status.message,
                "attributes": attributes,
            },
        )
    ]
    if semconv.is_model_call(str(attributes.get(semconv.OPERATION_NAME, ""))) and (
        semconv.CALL_DUPLICATE_OF not in attributes
    ):
        call = call_from_span(
            start_ns=start,
            duration_ns=duration,
            trace_id=trace_id,
            span_id=span_id,
            service=service,
            tenant=tenant,
            status=status,
            attributes=attributes,
        )
        events.append(StreamEvent("call", service, tenant, models, worst, call.to_json()))
    for event in span.events:
        if event.name != findings.FINDING_EVENT:
            continue
        stored = {pair.key: value_as_string(pair.value) for pair in event.attributes}
        severity = stored.get(findings.SEVERITY, "")
        try:
            confidence = float(stored.get(findings.CONFIDENCE, "0"))
        except ValueError:
            confidence = 0.0
        finding = FindingRecord(
            time_ns=event.time_unix_nano,
            trace_id=trace_id,
            span_id=span_id,
            service=service,
            tenant=tenant,
            detector=stored.get(findings.DETECTOR, ""),
            category=stored.get(findings.CATEGORY, ""),
            severity=severity,
            confidence=confidence,
            attributes={key: value for key, value in stored.items() if key not in _FINDING_CORE},
        )
        rank = findings.SEVERITY_RANK.get(severity, 0)
        events.append(StreamEvent("finding", service, tenant, models, rank, finding.to_json()))
    return events


def events_of(traces: TracesData) -> list[StreamEvent]:
    """Every event ``traces`` makes, span by span: the span, its call if it is one, then its findings."""
    events: list[StreamEvent] = []
    for resource_spans in traces.resource_spans:
        resource_attributes = _attributes(resource_spans.resource.attributes)
        service = str(resource_attributes.get(semconv.SERVICE_NAME, ""))
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                events.extend(_span_events(span, service, resource_attributes))
    return events
