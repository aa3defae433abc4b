"""Cut a batch into serialized Export requests that a receiver will take.

A sending queue batches by span count, but receivers limit a request by bytes
(4 MiB by default, in this collector's otlp receiver as in the OpenTelemetry
Collector's), and GenAI spans carrying messages are large. So a batch leaves in
as few requests as fit under the limit: whole messages where they fit, else
one resource at a time, else runs of spans under a copy of their resource and
scope. A single span larger than the limit still goes alone; the receiver
decides about it. Log and metric batches leave whole messages, as many to a
request as fit (a message over the limit alone).

TracesData and ExportTraceServiceRequest share their wire format, and
concatenating two serialized messages merges their repeated fields, so a
request is simply the bytes of its pieces joined.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, TracesData

from collector.signals import OtlpData

# The default max_recv_msg_size_mib of OTLP/gRPC receivers is 4.
MAX_REQUEST_BYTES = 4 * 1024 * 1024
# A span's framing inside its ScopeSpans: one tag byte and a length varint of at most 5 bytes.
_SPAN_FRAMING_BYTES = 6


def cut_requests(items: Iterable[OtlpData], limit: int = MAX_REQUEST_BYTES) -> Iterator[bytes]:
    """Serialized requests holding every item of ``items`` once, each at most ``limit`` bytes where possible."""
    pending: list[bytes] = []
    pending_size = 0
    for item in items:
        for piece in _pieces(item, limit):
            data = piece.SerializeToString()
            if pending and pending_size + len(data) > limit:
                yield b"".join(pending)
                pending, pending_size = [], 0
            pending.append(data)
            pending_size += len(data)
    if pending:
        yield b"".join(pending)


def _pieces(item: OtlpData, limit: int) -> Iterator[OtlpData]:
    if item.ByteSize() <= limit or not isinstance(item, TracesData):
        yield item
        return
    for resource_spans in item.resource_spans:
        whole = TracesData(resource_spans=[resource_spans])
        if whole.ByteSize() <= limit:
            yield whole
            continue
        for scope_spans in resource_spans.scope_spans:
            yield from _span_runs(resource_spans, scope_spans, limit)


def _span_runs(resource_spans: ResourceSpans, scope_spans: ScopeSpans, limit: int) -> Iterator[TracesData]:
    """Runs of ``scope_spans``' spans, each under a copy of its resource and scope, each within ``limit``."""
    header = _with_header(resource_spans, scope_spans)
    header_size = header.ByteSize() + 2 * _SPAN_FRAMING_BYTES  # the ResourceSpans and ScopeSpans framing
    run: TracesData | None = None
    run_size = 0
    for span in scope_spans.spans:
        size = span.ByteSize() + _SPAN_FRAMING_BYTES
        if run is not None and run_size + size > limit:
            yield run
            run = None
        if run is None:
            run = TracesData()
            run.CopyFrom(header)
            run_size = header_size
        run.resource_spans[0].scope_spans[0].spans.append(span)
        run_size += size
    if run is not None:
        yield run


def _with_header(resource_spans: ResourceSpans, scope_spans: ScopeSpans) -> TracesData:
    """A TracesData with the resource and scope of a span run, and no spans yet."""
    header = TracesData()
    out_resource = header.resource_spans.add()
    out_resource.resource.CopyFrom(resource_spans.resource)
    out_resource.schema_url = resource_spans.schema_url
    out_scope = out_resource.scope_spans.add()
    out_scope.scope.CopyFrom(scope_spans.scope)
    out_scope.schema_url = scope_spans.schema_url
    return header
