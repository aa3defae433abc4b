"""The pipeline tap: every batch a traces pipeline accepted, offered to listeners that never make it wait.

The Service wraps the end of each pipeline (after the last processor, where
the batch goes to its exporters) in a ``TappedConsumer``: once the exporters
have accepted a batch, it is handed to each listener of the ``PipelineTap``.
A listener is a plain function called on the event loop; it must return at
once (queue the batch, or drop it and count that), because the receiver's
answer to its client waits for it. The batch is shared with the exporters,
which treat it as read-only: listeners must too.

With no listener the tap costs one attribute check per batch. The tap lives
in the main process and is the one seam the read side (the api extension's
live stream) uses, so moving processors into worker processes later only has
to keep feeding ``publish`` here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from collector.component import TracesConsumer, TracesData

Listener = Callable[[TracesData], None]
logger = logging.getLogger(__name__)


class PipelineTap:
    """Listeners of what the pipelines accepted; see the module docstring."""

    def __init__(self) -> None:
        self._listeners: tuple[Listener, ...] = ()

    @property
    def active(self) -> bool:
        return bool(self._listeners)

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Add ``listener``; the function returned removes it (safe to call twice)."""
        self._listeners = (*self._listeners, listener)

        def unsubscribe() -> None:
            self._listeners = tuple(other for other in self._listeners if other is not listener)

        return unsubscribe

    def publish(self, traces: TracesData) -> None:
        """Offer ``traces`` to every listener; a listener that raises is logged, never the pipeline's problem."""
        for listener in self._listeners:
            try:
                listener(traces)
            except Exception:
                logger.exception("a pipeline tap listener failed; the batch was delivered regardless")


class TappedConsumer:
    """Passes batches to ``consumer`` and, once it accepted one, publishes it on ``tap``."""

    def __init__(self, consumer: TracesConsumer, tap: PipelineTap) -> None:
        self.consumer = consumer
        self._tap = tap

    async def consume(self, traces: TracesData) -> None:
        await self.consumer.consume(traces)
        if self._tap.active:
            self._tap.publish(traces)
