"""A test double for an exporter of every signal: it keeps each batch it is given, for a test to read.

It is registered as the ``recording`` exporter beside the built-ins (``registry_with_recorder``),
so a running collector (tests.conftest.RunningService) can end any pipeline in it.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from collector.component import ComponentSettings, Exporter, ExporterFactory, Host
from collector.registry import Registry, default_registry
from collector.signals import SIGNALS, OtlpData, Signal, item_count, merged
from tests.conftest import RunningService

WAIT_SECONDS = 30.0


@dataclass(frozen=True)
class RecordingConfig:
    pass


@dataclass
class Recorded:
    """Every batch the ``recording`` exporters of one registry were given, by exporter id and signal."""

    batches: dict[tuple[str, Signal], list[OtlpData]] = field(default_factory=dict)
    changed: threading.Condition = field(default_factory=threading.Condition)
    # Raised to the pipeline instead of recording, while set (a refusing backend's queue).
    refuse: Exception | None = None

    def add(self, exporter: str, signal: Signal, data: OtlpData) -> None:
        with self.changed:
            self.batches.setdefault((exporter, signal), []).append(data)
            self.changed.notify_all()

    def wait_for(self, signal: Signal, items: int, exporter: str = "recording") -> Any:
        """Every batch of ``signal`` merged, once they hold at least ``items`` items; AssertionError on timeout."""
        with self.changed:
            arrived = self.changed.wait_for(
                lambda: sum(map(item_count, self.batches.get((exporter, signal), []))) >= items, WAIT_SECONDS
            )
            assert arrived, f"{exporter} got {self.batches.get((exporter, signal), [])!r}, not {items} {signal} items"
            return merged(self.batches[(exporter, signal)])


class RecordingExporter:
    def __init__(self, settings: ComponentSettings, recorded: Recorded, signal: Signal) -> None:
        self._id = str(settings.id)
        self._recorded = recorded
        self._signal = signal

    async def start(self, host: Host) -> None:
        return None

    async def shutdown(self) -> None:
        return None

    async def consume(self, data: OtlpData) -> None:
        if self._recorded.refuse is not None:
            raise self._recorded.refuse
        copy = type(data)()
        copy.CopyFrom(data)
        self._recorded.add(self._id, self._signal, copy)


def recording_factory(recorded: Recorded) -> ExporterFactory[RecordingConfig]:
    def maker(signal: Signal) -> Any:
        def create(settings: ComponentSettings, config: RecordingConfig) -> Exporter:
            return RecordingExporter(settings, recorded, signal)

        return create

    creators = {signal: maker(signal) for signal in SIGNALS}
    return ExporterFactory(
        "recording",
        RecordingConfig,
        creators["traces"],
        create_logs=creators["logs"],
        create_metrics=creators["metrics"],
    )


def registry_with_recorder() -> tuple[Registry, Recorded]:
    """The installed components plus the ``recording`` exporter, and what it records."""
    recorded = Recorded()
    registry = default_registry()
    exporters = {**registry.exporters, "recording": recording_factory(recorded)}
    return replace(registry, exporters=exporters), recorded


@contextlib.contextmanager
def recording_collector(config: str, work: Path) -> Iterator[tuple[RunningService, Recorded]]:
    """A collector running ``config`` (whose pipelines may end in ``recording`` exporters), and what they got."""
    registry, recorded = registry_with_recorder()
    service = RunningService(config, work, registry)
    try:
        yield service, recorded
    finally:
        service.stop()
