"""build_chain: each processor counted on both sides, what reaches it, what it passes on, what it raises for."""

from __future__ import annotations

import asyncio

import pytest

from collector.component import ComponentID, ComponentSettings, TracesConsumer, TracesData
from collector.errors import PermanentError
from collector.generated_metrics import PROCESSOR_INCOMING_SPANS, PROCESSOR_OUTGOING_SPANS, PROCESSOR_REFUSED_SPANS
from collector.runtime.plan import ComponentStep, build_chain, settings_maker
from collector.telemetry import Telemetry
from tests.conftest import RecordingConsumer, make_traces


class _Refusing:
    """A processor that refuses batches of more than ``most`` spans and passes the others on."""

    def __init__(self, most: int, next_consumer: TracesConsumer) -> None:
        self._most = most
        self._next = next_consumer

    async def consume(self, traces: TracesData) -> None:
        spans = sum(len(ss.spans) for rs in traces.resource_spans for ss in rs.scope_spans)
        if spans > self._most:
            raise PermanentError(f"{spans} spans is too many")
        await self._next.consume(traces)


class _RefusingFactory:
    def create(self, settings: ComponentSettings, config: int, next_consumer: TracesConsumer) -> _Refusing:
        return _Refusing(config, next_consumer)


def test_every_processor_counts_what_reached_it_what_it_passed_on_and_what_it_raised_for() -> None:
    telemetry = Telemetry()
    exporter = RecordingConsumer()
    steps = [ComponentStep(ComponentID.parse("first"), 10, _RefusingFactory())]
    steps.append(ComponentStep(ComponentID.parse("second"), 3, _RefusingFactory()))
    head, built = build_chain(steps, settings_maker(telemetry), telemetry, exporter)

    async def scenario() -> None:
        await head.consume(make_traces(2))
        with pytest.raises(PermanentError):
            await head.consume(make_traces(5))  # the second refuses it; the first raises what it was told
        with pytest.raises(PermanentError):
            await head.consume(make_traces(11))  # the first refuses it itself

    asyncio.run(asyncio.wait_for(scenario(), 10))
    assert [str(cid) for cid, _ in built] == ["first", "second"]

    def counts(processor: str) -> list[float]:
        declared = (PROCESSOR_INCOMING_SPANS, PROCESSOR_OUTGOING_SPANS, PROCESSOR_REFUSED_SPANS)
        return [telemetry.value(spec.name, processor=processor) for spec in declared]

    assert counts("first") == [18, 2, 16]
    assert counts("second") == [7, 2, 5]
    assert len(exporter.spans()) == 2


def test_a_chain_without_processors_is_the_next_consumer_itself() -> None:
    telemetry = Telemetry()
    exporter = RecordingConsumer()
    assert build_chain([], settings_maker(telemetry), telemetry, exporter) == (exporter, [])
