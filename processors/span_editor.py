"""The shape every processor that edits spans one by one shares: walk the batch, edit in place, pass it on."""

from __future__ import annotations

from opentelemetry.proto.trace.v1.trace_pb2 import Span

from collector.component import Host, TracesConsumer, TracesData


class SpanEditor:
    """A processor that changes spans in place (``edit``) and hands the batch to the next consumer."""

    def __init__(self, next_consumer: TracesConsumer) -> None:
        self._next = next_consumer

    async def start(self, host: Host) -> None:
        return None

    async def shutdown(self) -> None:
        return None

    async def consume(self, traces: TracesData) -> None:
        edit = self.edit
        for resource_spans in traces.resource_spans:
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    edit(span)
        self.batch_edited()
        await self._next.consume(traces)

    def edit(self, span: Span) -> None:
        raise NotImplementedError

    def batch_edited(self) -> None:
        """Called once a batch's spans are all edited, before it is passed on (say, to publish counts)."""
