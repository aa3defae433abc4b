"""Count the spans a consumer is offered, accepts and refuses, for the collector's own metrics.

A processor chain is counted with one of these in front of each processor and
one behind the last (``collector.runtime.plan.build_chain``): the one between
two processors counts both, what the first passed on that the second accepted
and what reached the second. The genai_proxy receiver counts what it fed the
pipeline with one too.
"""

from __future__ import annotations

from collector.component import TracesConsumer, TracesData
from collector.pdata import span_count
from collector.telemetry import BoundCounter


class CountingConsumer:
    """Passes batches to ``consumer``, adding their spans to whichever of the three series are given.

    ``offered`` counts every batch handed on, ``accepted`` those ``consumer`` took, ``refused`` those it
    raised for.
    """

    __slots__ = ("consumer", "_offered", "_accepted", "_refused")

    def __init__(
        self,
        consumer: TracesConsumer,
        *,
        offered: BoundCounter | None = None,
        accepted: BoundCounter | None = None,
        refused: BoundCounter | None = None,
    ) -> None:
        self.consumer = consumer
        self._offered = offered
        self._accepted = accepted
        self._refused = refused

    @property
    def forwards_to(self) -> TracesConsumer:
        """Where each batch goes on to, unchanged (``collector.component.Forwarding``)."""
        return self.consumer

    async def consume(self, traces: TracesData) -> None:
        count = span_count(traces)
        if self._offered is not None:
            self._offered.add(count)
        try:
            await self.consumer.consume(traces)
        except Exception:  # a refusal or a component bug; a cancelled task is neither
            if self._refused is not None:
                self._refused.add(count)
            raise
        if self._accepted is not None:
            self._accepted.add(count)
