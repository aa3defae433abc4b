"""The pipeline graph: fan-out, shared exporters, per-pipeline processors, start and shutdown order."""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass
from typing import Any

import pytest
import yaml

from collector.component import (
    ComponentID,
    ComponentSettings,
    ExporterFactory,
    ProcessorFactory,
    ReceiverFactory,
    TracesConsumer,
    TracesData,
)
from collector.config.service import parse_config
from collector.errors import PermanentError, RetryableError
from collector.registry import Registry
from collector.service import FanOut, Service
from tests.conftest import RecordingConsumer, make_traces

EVENTS: list[str] = []


class RecordingExporter(RecordingConsumer):
    def __init__(self, settings: ComponentSettings, config: Any) -> None:
        super().__init__()
        self.id = str(settings.id)

    async def start(self, host: Any) -> None:
        EVENTS.append(f"start {self.id}")

    async def shutdown(self) -> None:
        EVENTS.append(f"stop {self.id}")


class TagProcessor:
    """Adds an attribute naming itself to every span, to show which pipeline a copy went through."""

    def __init__(self, settings: ComponentSettings, config: Any, next_consumer: TracesConsumer) -> None:
        self.id = str(settings.id)
        self._next = next_consumer

    async def start(self, host: Any) -> None:
        EVENTS.append(f"start {self.id}")

    async def shutdown(self) -> None:
        EVENTS.append(f"stop {self.id}")

    async def consume(self, traces: TracesData) -> None:
        for rs in traces.resource_spans:
            for ss in rs.scope_spans:
                for span in ss.spans:
                    span.attributes.add(key="tag").value.string_value = self.id
        await self._next.consume(traces)


class CapturingReceiver:
    """A receiver that keeps the consumer the service wired it to, so tests can drive the graph."""

    def __init__(self, settings: ComponentSettings, config: Any, consumer: TracesConsumer) -> None:
        self.consumer = consumer

    async def start(self, host: Any) -> None:
        EVENTS.append("start receiver")

    async def shutdown(self) -> None:
        EVENTS.append("stop receiver")


@dataclass(frozen=True)
class EmptyConfig:
    pass


def _registry() -> Registry:
    return Registry(
        receivers={"capture": ReceiverFactory("capture", EmptyConfig, CapturingReceiver)},  # type: ignore[arg-type]
        processors={"tag": ProcessorFactory("tag", EmptyConfig, TagProcessor)},  # type: ignore[arg-type]
        exporters={"memory": ExporterFactory("memory", EmptyConfig, RecordingExporter)},  # type: ignore[arg-type]
    )


CONFIG = """
receivers:
  capture:
processors:
  tag/a:
  tag/b:
exporters:
  memory/one:
  memory/two:
service:
  pipelines:
    traces/a: {receivers: [capture], processors: [tag/a], exporters: [memory/one, memory/two]}
    traces/b: {receivers: [capture], processors: [tag/b], exporters: [memory/two]}
"""


def test_graph_wiring_and_lifecycle_order() -> None:
    EVENTS.clear()
    service = Service(parse_config(yaml.safe_load(CONFIG), _registry()), _registry())

    async def scenario() -> None:
        await service.start()
        await service.shutdown()
        await service.shutdown()

    asyncio.run(asyncio.wait_for(scenario(), 10))
    starts = [e for e in EVENTS if e.startswith("start")]
    stops = [e for e in EVENTS if e.startswith("stop")]
    # downstream first on start, upstream first on stop; each shared exporter once
    assert starts == ["start memory/one", "start memory/two", "start tag/b", "start tag/a", "start receiver"]
    assert stops == ["stop receiver", "stop tag/a", "stop tag/b", "stop memory/one", "stop memory/two"]


def test_each_pipeline_gets_its_own_copy_and_shared_exporters_see_both() -> None:
    service = Service(parse_config(yaml.safe_load(CONFIG), _registry()), _registry())
    receiver: CapturingReceiver = service.receivers[next(iter(service.receivers))]  # type: ignore[assignment]
    fan_out = receiver.consumer

    asyncio.run(fan_out.consume(make_traces(1)))
    one, two = (service.exporters[cid] for cid in sorted(service.exporters))
    assert [s.attributes[-1].value.string_value for s in one.spans()] == ["tag/a"]  # type: ignore[attr-defined]
    assert sorted(s.attributes[-1].value.string_value for s in two.spans()) == ["tag/a", "tag/b"]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("errors", "expected"),
    [
        ([None, RetryableError("full")], RetryableError),
        ([PermanentError("bad"), RetryableError("full")], RetryableError),
        ([PermanentError("bad"), None], PermanentError),
    ],
)
def test_fan_out_fails_if_any_branch_fails_and_prefers_retryable(
    errors: list[Exception | None], expected: type
) -> None:
    branches = []
    for error in errors:
        branch = RecordingConsumer()
        branch.fail_with = error  # type: ignore[assignment]
        branches.append(branch)
    with pytest.raises(expected):
        asyncio.run(FanOut(branches).consume(make_traces(1)))


COUNTED_CONFIG = """
receivers:
  capture:
exporters:
  counter:
  memory/one:
  memory/two:
service:
  pipelines:
    traces: {receivers: [capture], exporters: [counter, memory/one, memory/two]}
"""


def test_an_accepted_only_exporter_sees_a_batch_once_every_other_exporter_took_it() -> None:
    # Declared on its factory, whatever its type is called.
    counting = ExporterFactory("counter", EmptyConfig, RecordingExporter, accepted_only=True)  # type: ignore[arg-type]
    registry = dataclasses.replace(_registry(), exporters={**_registry().exporters, "counter": counting})
    service = Service(parse_config(yaml.safe_load(COUNTED_CONFIG), registry), registry)
    receiver: CapturingReceiver = service.receivers[next(iter(service.receivers))]  # type: ignore[assignment]
    counter, one, two = (service.exporters[ComponentID.parse(name)] for name in ("counter", "memory/one", "memory/two"))
    one.fail_with = RetryableError("queue full")  # type: ignore[attr-defined]
    refused, accepted = make_traces(3), make_traces(4)

    with pytest.raises(RetryableError):
        asyncio.run(receiver.consumer.consume(refused))
    assert not counter.received  # type: ignore[attr-defined]
    assert two.received == [refused]  # type: ignore[attr-defined]  # a queued branch that took it keeps it

    one.fail_with = None  # type: ignore[attr-defined]
    asyncio.run(receiver.consumer.consume(refused))  # the client sends it again
    asyncio.run(receiver.consumer.consume(accepted))
    assert counter.received == [refused, accepted]  # type: ignore[attr-defined]
    assert counter.received[0] is refused  # type: ignore[attr-defined]  # as it is: exporters only read


def test_a_fan_out_answers_for_the_accepted_only_consumers_too() -> None:
    first, then = RecordingConsumer(), RecordingConsumer()
    then.fail_with = RetryableError("broken")
    with pytest.raises(RetryableError):
        asyncio.run(FanOut([first], then=[then]).consume(make_traces(1)))
    assert len(first.received) == 1


class BrokenStopProcessor(TagProcessor):
    async def shutdown(self) -> None:
        EVENTS.append(f"stop {self.id}")
        raise RuntimeError("flush failed")


def test_shutdown_goes_on_past_a_component_that_fails_to_stop(caplog: pytest.LogCaptureFixture) -> None:
    EVENTS.clear()
    registry = dataclasses.replace(
        _registry(),
        processors={"tag": ProcessorFactory("tag", EmptyConfig, BrokenStopProcessor)},  # type: ignore[arg-type]
    )
    service = Service(parse_config(yaml.safe_load(CONFIG), registry), registry)

    async def scenario() -> None:
        await service.start()
        await service.shutdown()

    asyncio.run(asyncio.wait_for(scenario(), 10))
    stops = [e for e in EVENTS if e.startswith("stop")]
    assert stops == ["stop receiver", "stop tag/a", "stop tag/b", "stop memory/one", "stop memory/two"]
    assert caplog.text.count("did not shut down cleanly") == 2
