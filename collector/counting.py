"""Count the spans a consumer is offered, accepts and refuses, for the collector's own metrics.

The service wraps each processor in these (spans in, spans passed on, spans
refused) and receivers that do not count for themselves use one too, so the
admin endpoint's /metrics shows every component's traffic.
"""

from __future__ import annotations

from collector.component import TracesConsumer, TracesData
from collector.pdata import span_count
from collector.telemetry import Telemetry


class CountingConsumer:
    """Passes batches to ``consumer``, adding their spans to whichever of the three counters are named."""

    def __init__(
        self,
        consumer: TracesConsumer,
        telemetry: Telemetry,
        *,
        offered: str = "",
        accepted: str = "",
        refused: str = "",
        **labels: str,
    ) -> None:
        self.consumer = consumer
        self._telemetry = telemetry
        self._offered = offered
        self._accepted = accepted
        self._refused = refused
        self._labels = labels

    @property
    def forwards_to(self) -> TracesConsumer:
        """Where each batch goes on to, unchanged (``collector.component.Forwarding``)."""
        return self.consumer

    async def consume(self, traces: TracesData) -> None:
        count = span_count(traces)
        if self._offered:
            self._telemetry.add(self._offered, count, **self._labels)
        try:
            await self.consumer.consume(traces)
        except Exception:  # a refusal or a component bug; a cancelled task is neither
            if self._refused:
                self._telemetry.add(self._refused, count, **self._labels)
            raise
        if self._accepted:
            self._telemetry.add(self._accepted, count, **self._labels)
