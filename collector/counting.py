"""Count the items (spans, log records, metric points) a consumer is offered, accepts and refuses, for the
collector's own metrics.

A processor chain is counted with one of these in front of each processor and
one behind the last (``collector.runtime.plan.build_chain``): the one between
two processors counts both, what the first passed on that the second accepted
and what reached the second. The genai_proxy receiver counts what it fed the
pipeline with one too.
"""

from __future__ import annotations

from typing import Any

from collector.component import Consumer
from collector.signals import OtlpData, item_count
from collector.telemetry import BoundCounter


class CountingConsumer:
    """Passes batches to ``consumer``, adding their items to whichever of the three series are given.

    ``offered`` counts every batch handed on, ``accepted`` those ``consumer`` took, ``refused`` those it
    raised for.
    """

    __slots__ = ("consumer", "_offered", "_accepted", "_refused")

    def __init__(
        self,
        consumer: Consumer[Any],
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
    def forwards_to(self) -> Consumer[Any]:
        """Where each batch goes on to, unchanged (``collector.component.Forwarding``)."""
        return self.consumer

    async def consume(self, data: OtlpData) -> None:
        count = item_count(data)
        if self._offered is not None:
            self._offered.add(count)
        try:
            await self.consumer.consume(data)
        except Exception:  # a refusal or a component bug; a cancelled task is neither
            if self._refused is not None:
                self._refused.add(count)
            raise
        if self._accepted is not None:
            self._accepted.add(count)
