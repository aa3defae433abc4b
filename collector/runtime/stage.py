"""A pipeline's middle run of processors as one consumer in the main process: the worker pool does the work."""

from __future__ import annotations

from collections.abc import Sequence

from collector.component import ComponentID, MainPart, TracesConsumer, TracesData
from collector.runtime.annotations import Annotation, annotated
from collector.runtime.pool import WorkerPool


class WorkerStage:
    """Sends each batch through ``pipeline``'s processors in the workers; what they pass on goes to ``next_consumer``.

    The ``main_parts`` of those processors (ProcessorFactory.create_main_part) see
    the batch and their notes in between, in this process; the exporters with a
    worker part (``observers``) find their notes on the batch they consume
    (collector.runtime.annotations). So do the sending queues the batch's
    encoding, when ``next_consumer`` hands the batch to the exporters as it is
    (``feeds_exporters``: no processor runs in this process after the workers)
    and no main part changed a span of it.

    It returns, like any consumer, only once the batch is safe downstream, so a
    receiver still acknowledges a client only when every exporter's queue has
    taken its spans.
    """

    def __init__(
        self,
        pool: WorkerPool,
        pipeline: str,
        next_consumer: TracesConsumer,
        main_parts: Sequence[tuple[ComponentID, MainPart]] = (),
        observers: Sequence[ComponentID] = (),
        feeds_exporters: bool = False,
    ) -> None:
        self._pool = pool
        self._pipeline = pipeline
        self._next = next_consumer
        self._main_parts = [(str(cid), part) for cid, part in main_parts]
        self._observers = {str(cid) for cid in observers}
        self._feeds_exporters = feeds_exporters

    async def consume(self, traces: TracesData) -> None:
        processed = await self._pool.process(self._pipeline, traces)
        passed_on, notes = processed.traces, processed.notes
        # In pipeline order, as they would have run in one process, after everything the workers did.
        changed: set[bytes] = set()
        for processor, part in self._main_parts:
            changed |= part.apply(passed_on, notes.get(processor, []))
        if not passed_on.resource_spans:
            return
        exporters = {key: value for key, value in notes.items() if key in self._observers}
        # A changed span makes the workers' bytes stale; a processor after this stage may change anything.
        encoded = processed.encoded if self._feeds_exporters and not changed else None
        with annotated(passed_on, Annotation(exporters, frozenset(changed), encoded)):
            await self._next.consume(passed_on)
