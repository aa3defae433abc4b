"""CountingConsumer: spans offered, accepted and refused land in the counters named."""

from __future__ import annotations

import asyncio

import pytest

from collector.counting import CountingConsumer
from collector.errors import QueueFullError
from collector.telemetry import Telemetry
from tests.conftest import RecordingConsumer, make_traces


def test_offered_accepted_and_refused_are_counted() -> None:
    telemetry = Telemetry()
    downstream = RecordingConsumer()
    counted = CountingConsumer(downstream, telemetry, offered="in", accepted="ok", refused="no", processor="p")

    async def scenario() -> None:
        await counted.consume(make_traces(3))
        downstream.fail_with = QueueFullError("full")
        with pytest.raises(QueueFullError):
            await counted.consume(make_traces(2))

    asyncio.run(asyncio.wait_for(scenario(), 10))
    assert [telemetry.value(name, processor="p") for name in ("in", "ok", "no")] == [5, 3, 2]
    assert len(downstream.spans()) == 3
