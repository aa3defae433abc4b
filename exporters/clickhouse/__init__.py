"""The ``clickhouse`` exporter: spans, log records and metric points into their tables, on chDB or a server.

As in the OpenTelemetry Collector, the exporter has one instance per signal, each with
its own sending queue (a disk queue per signal) and self-metrics; the instances of one
exporter id share one store (one connection, one schema, one query pool), started by the
first of them and closed by the last (ClickHouseStore.start and close count them). The
traces exporter's sender is the store itself: the read side finds it there
(collector.query.stores).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from collector.component import ComponentSettings, Exporter, ExporterFactory
from collector.exporterhelper import QueuedExporter
from collector.queue import Batch
from collector.signals import Signal
from exporters.clickhouse.config import ClickHouseConfig
from exporters.clickhouse.store import ClickHouseStore


def shared_store(settings: ComponentSettings, config: ClickHouseConfig) -> ClickHouseStore:
    """The store of ``settings.id``, made by the first of its signals' exporters to ask."""
    return settings.shared.get_or_make(
        "exporter",
        settings.id,
        lambda: ClickHouseStore(config, settings.logger, settings.telemetry, str(settings.id), settings.memory_limit),
    )


class SignalSender:
    """The sender of the logs or metrics exporter: the shared store's start and close, and its insert for the signal."""

    def __init__(self, store: ClickHouseStore, send: Callable[[Batch[Any]], None]) -> None:
        self.store = store
        self._send = send

    def start(self) -> None:
        self.store.start()

    def send(self, batch: Batch[Any]) -> None:
        self._send(batch)

    def close(self) -> None:
        self.store.close()


def create_exporter(settings: ComponentSettings, config: ClickHouseConfig) -> Exporter:
    store = shared_store(settings, config)
    return QueuedExporter(settings, store, config.sending_queue, config.retry_on_failure)


def _signal_exporter(settings: ComponentSettings, config: ClickHouseConfig, signal: Signal) -> Exporter:
    store = shared_store(settings, config)
    # Set before start: a store that writes logs or metrics checks their tables too when create_schema is off.
    store.serves_logs_or_metrics = True
    sender = SignalSender(store, store.send_logs if signal == "logs" else store.send_metrics)
    return QueuedExporter(settings, sender, config.sending_queue, config.retry_on_failure, signal=signal)


def create_logs_exporter(settings: ComponentSettings, config: ClickHouseConfig) -> Exporter:
    return _signal_exporter(settings, config, "logs")


def create_metrics_exporter(settings: ComponentSettings, config: ClickHouseConfig) -> Exporter:
    return _signal_exporter(settings, config, "metrics")


factory = ExporterFactory(
    type="clickhouse",
    config_type=ClickHouseConfig,
    create=create_exporter,
    create_logs=create_logs_exporter,
    create_metrics=create_metrics_exporter,
)
