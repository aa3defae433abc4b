"""The ``clickhouse`` exporter: spans into otel_traces, on embedded chDB or a ClickHouse server."""

from __future__ import annotations

from collector.component import ComponentSettings, Exporter, ExporterFactory
from collector.exporterhelper import QueuedExporter
from exporters.clickhouse.config import ClickHouseConfig
from exporters.clickhouse.store import ClickHouseStore


def create_exporter(settings: ComponentSettings, config: ClickHouseConfig) -> Exporter:
    store = ClickHouseStore(config, settings.logger, settings.telemetry, str(settings.id), settings.memory_limit)
    return QueuedExporter(settings, store, config.sending_queue, config.retry_on_failure)


factory = ExporterFactory(type="clickhouse", config_type=ClickHouseConfig, create=create_exporter)
