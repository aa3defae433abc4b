"""The clickhouse exporter's signals share one store, which stays open until the last of them has drained."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from pathlib import Path

from opentelemetry.proto.logs.v1.logs_pb2 import LogsData

from collector.component import ComponentID, ComponentSettings, SharedComponents
from collector.exporterhelper import QueuedExporter
from collector.telemetry import Telemetry
from exporters.clickhouse import factory
from exporters.clickhouse.config import ClickHouseConfig
from exporters.clickhouse.store import ClickHouseStore
from tests.conftest import make_traces
from tests.exporters.clickhouse.signal_data import every_kind_of_log_record, sdk_logs


class _Host:
    exporters: dict[ComponentID, QueuedExporter] = {}


def test_the_store_closes_after_its_last_signal_has_drained(chdb_path: Path, tmp_path: Path) -> None:
    config = ClickHouseConfig(endpoint=f"chdb://{chdb_path}")
    config = dataclasses.replace(
        config, sending_queue=dataclasses.replace(config.sending_queue, directory=str(tmp_path / "queue"))
    )
    cid = ComponentID("clickhouse")
    logger = logging.getLogger("test.clickhouse")
    settings = ComponentSettings(cid, "exporter", logger, Telemetry(), shared=SharedComponents())
    logs_records = every_kind_of_log_record()

    async def run() -> None:
        traces = factory.create(settings, config)
        logs = factory.creator("logs")(settings, config)
        store = traces.sender  # type: ignore[attr-defined]
        assert isinstance(store, ClickHouseStore) and logs.sender.store is store  # type: ignore[attr-defined]
        assert store.serves_logs_or_metrics
        for exporter in (traces, logs):
            await exporter.start(_Host())
        assert store.users == 2
        await traces.consume(make_traces(2))
        await traces.shutdown()
        assert store.users == 1
        # The traces exporter has closed the store; the logs one still holds it, and sends what it takes at shutdown.
        batch: LogsData = sdk_logs(logs_records)
        await logs.consume(batch)
        await logs.shutdown()
        await logs.shutdown()
        assert store.users == 0

    asyncio.run(run())
    store = ClickHouseStore(config, logging.getLogger("test.stored"))
    try:
        counts = store.query("SELECT (SELECT count() FROM otel_traces), (SELECT count() FROM otel_logs)").rows
    finally:
        store.close()
    assert counts == [[2, len(logs_records)]]
