"""CountingConsumer: spans offered, accepted and refused land in the series it was given."""

from __future__ import annotations

import asyncio

import pytest

from collector.counting import CountingConsumer
from collector.errors import QueueFullError
from collector.generated_metrics import (
    PROCESSOR_INCOMING_SPANS,
    PROCESSOR_OUTGOING_SPANS,
    PROCESSOR_REFUSED_SPANS,
    PipelineSelfMetrics,
)
from collector.telemetry import Telemetry
from tests.conftest import RecordingConsumer, make_traces


def test_offered_accepted_and_refused_are_counted() -> None:
    telemetry = Telemetry()
    metrics = PipelineSelfMetrics(telemetry)
    downstream = RecordingConsumer()
    counted = CountingConsumer(
        downstream,
        offered=metrics.processor_incoming_spans.bind(processor="p"),
        accepted=metrics.processor_outgoing_spans.bind(processor="p"),
        refused=metrics.processor_refused_spans.bind(processor="p"),
    )

    async def scenario() -> None:
        await counted.consume(make_traces(3))
        downstream.fail_with = QueueFullError("full")
        with pytest.raises(QueueFullError):
            await counted.consume(make_traces(2))

    asyncio.run(asyncio.wait_for(scenario(), 10))
    declared = (PROCESSOR_INCOMING_SPANS, PROCESSOR_OUTGOING_SPANS, PROCESSOR_REFUSED_SPANS)
    assert [telemetry.value(spec.name, processor="p") for spec in declared] == [5, 3, 2]
    assert len(downstream.spans()) == 3
    assert counted.forwards_to is downstream
