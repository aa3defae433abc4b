"""A pipeline's middle run of processors as one consumer in the main process: the worker pool does the work."""

from __future__ import annotations

from collector.component import TracesConsumer, TracesData
from collector.runtime.pool import WorkerPool


class WorkerStage:
    """Sends each batch through ``pipeline``'s processors in the workers; what they pass on goes to ``next_consumer``.

    It returns, like any consumer, only once the batch is safe downstream, so a
    receiver still acknowledges a client only when every exporter's queue has
    taken its spans.
    """

    def __init__(self, pool: WorkerPool, pipeline: str, next_consumer: TracesConsumer) -> None:
        self._pool = pool
        self._pipeline = pipeline
        self._next = next_consumer

    async def consume(self, traces: TracesData) -> None:
        passed_on = await self._pool.process(self._pipeline, traces)
        if passed_on.resource_spans:
            await self._next.consume(passed_on)
