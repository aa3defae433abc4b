"""Small helpers over the OTLP protobuf that flows through pipelines."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import Span, TracesData


def span_count(traces: TracesData) -> int:
    """How many spans ``traces`` holds."""
    return sum(len(scope_spans.spans) for rs in traces.resource_spans for scope_spans in rs.scope_spans)


def iter_spans(batches: Iterable[TracesData]) -> Iterator[tuple[Resource, InstrumentationScope, Span]]:
    """Every span of every batch, with the resource and scope it belongs to."""
    for traces in batches:
        for resource_spans in traces.resource_spans:
            resource = resource_spans.resource
            for scope_spans in resource_spans.scope_spans:
                scope = scope_spans.scope
                for span in scope_spans.spans:
                    yield resource, scope, span
