"""Split a batch of spans by the backend each span's trace belongs to.

Every sub-batch keeps the structure of the original: a span stays under a copy
of its own resource and instrumentation scope (schema URLs included), so the
backend sees exactly what it would have seen had the batch gone to it whole.
The input is never modified: exporters share batches with each other.
"""

from __future__ import annotations

from collections.abc import Callable

from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, TracesData


def split_by_trace(traces: TracesData, owner_of: Callable[[bytes], str]) -> dict[str, TracesData]:
    """Sub-batches by backend; ``owner_of`` maps a trace id to its backend."""
    owners: dict[bytes, str] = {}  # spans of one trace tend to travel together: hash each trace once

    def owner(span: Span) -> str:
        found = owners.get(span.trace_id)
        if found is None:
            found = owners[span.trace_id] = owner_of(span.trace_id)
        return found

    groups = [
        (resource_spans, scope_spans, _group(scope_spans, owner))
        for resource_spans in traces.resource_spans
        for scope_spans in resource_spans.scope_spans
    ]
    backends = {backend for _, _, by_backend in groups for backend in by_backend}
    if len(backends) == 1:
        # The whole batch goes to one backend: send it as it is, no copy.
        return {backends.pop(): traces}
    out: dict[str, TracesData] = {}
    # Per backend, the copy of the resource currently being filled, so that the
    # scopes of one resource stay together in each sub-batch.
    open_resource: dict[str, tuple[ResourceSpans, ResourceSpans]] = {}
    for resource_spans, scope_spans, by_backend in groups:
        for backend, spans in by_backend.items():
            batch = out.setdefault(backend, TracesData())
            current = open_resource.get(backend)
            if current is None or current[0] is not resource_spans:
                copy = batch.resource_spans.add()
                copy.resource.CopyFrom(resource_spans.resource)
                copy.schema_url = resource_spans.schema_url
                current = open_resource[backend] = (resource_spans, copy)
            scope_copy = current[1].scope_spans.add()
            scope_copy.scope.CopyFrom(scope_spans.scope)
            scope_copy.schema_url = scope_spans.schema_url
            scope_copy.spans.extend(spans)
    return out


def _group(scope_spans: ScopeSpans, owner: Callable[[Span], str]) -> dict[str, list[Span]]:
    by_backend: dict[str, list[Span]] = {}
    for span in scope_spans.spans:
        by_backend.setdefault(owner(span), []).append(span)
    return by_backend
