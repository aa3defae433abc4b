"""Which worker takes which spans: every span of a trace to the same one, so per-trace state stays whole.

A batch is split by trace id into one batch per worker, each span keeping its
resource and scope. The worker of a trace is the trace id's last eight bytes
(the random part of a W3C trace id) modulo the number of workers. A batch whose
spans all go to one worker is passed on as it is, uncopied.
"""

from __future__ import annotations

from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, TracesData

TRACE_ID_TAIL_BYTES = 8


def shard_of(trace_id: bytes, shards: int) -> int:
    """The worker (0 to ``shards`` - 1) that keeps ``trace_id``'s state."""
    return int.from_bytes(trace_id[-TRACE_ID_TAIL_BYTES:], "big") % shards if trace_id else 0


def split(traces: TracesData, shards: int) -> list[TracesData | None]:
    """``traces`` cut into one batch per worker (None for a worker that gets nothing)."""
    if shards == 1:
        return [traces]
    # (resource spans, scope spans, spans by worker), and every worker seen
    plan: list[tuple[ResourceSpans, ScopeSpans, dict[int, list[Span]]]] = []
    seen: set[int] = set()
    for resource_spans in traces.resource_spans:
        for scope_spans in resource_spans.scope_spans:
            buckets: dict[int, list[Span]] = {}
            for span in scope_spans.spans:
                buckets.setdefault(shard_of(span.trace_id, shards), []).append(span)
            seen.update(buckets)
            plan.append((resource_spans, scope_spans, buckets))
    out: list[TracesData | None] = [None] * shards
    if len(seen) == 1:
        out[seen.pop()] = traces
        return out
    for shard in seen:
        batch = out[shard] = TracesData()
        placed: ResourceSpans | None = None
        placed_from: ResourceSpans | None = None
        for resource_spans, scope_spans, buckets in plan:
            spans = buckets.get(shard)
            if not spans:
                continue
            if placed_from is not resource_spans:
                placed, placed_from = batch.resource_spans.add(), resource_spans
                placed.resource.CopyFrom(resource_spans.resource)
                placed.schema_url = resource_spans.schema_url
            assert placed is not None
            scope = placed.scope_spans.add()
            scope.scope.CopyFrom(scope_spans.scope)
            scope.schema_url = scope_spans.schema_url
            scope.spans.extend(spans)
    return out
