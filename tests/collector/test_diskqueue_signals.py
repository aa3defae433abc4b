"""The disk sending queue holds logs and metrics as it holds traces: a log of one signal, replayed as that signal."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from opentelemetry.proto.logs.v1.logs_pb2 import LogsData
from opentelemetry.proto.metrics.v1.metrics_pb2 import MetricsData

from collector.component import ComponentID
from collector.diskqueue import DiskQueue
from collector.exporterhelper import QueueSettings
from collector.signals import SIGNAL_KINDS, OtlpData, Signal, item_count

LOGGER = logging.getLogger("test.diskqueue.signals")


def _logs() -> LogsData:
    logs = LogsData()
    scope = logs.resource_logs.add().scope_logs.add()
    for i in range(4):
        scope.log_records.add().body.string_value = f"kept {i}"
    return logs


def _metrics() -> MetricsData:
    data = MetricsData()
    metric = data.resource_metrics.add().scope_metrics.add().metrics.add()
    metric.name = "queue.depth"
    metric.gauge.data_points.add().as_double = 2.5
    return data


async def _open(directory: Path, signal: Signal) -> DiskQueue:
    kind = SIGNAL_KINDS[signal]
    return await DiskQueue.open(
        directory, 100_000, 1000, 1000, 0.01, 1 << 24, LOGGER, data_type=kind.data_type, unit=kind.items_text
    )


def test_logs_and_metrics_survive_a_restart_as_what_they_were(tmp_path: Path) -> None:
    async def scenario(signal: Signal, data: OtlpData) -> None:
        queue = await _open(tmp_path / signal, signal)
        await queue.put(data, item_count(data))
        queue.close()
        await queue.finish()
        reopened = await _open(tmp_path / signal, signal)
        assert reopened.size == item_count(data)
        reopened.close()
        batch = await reopened.get_batch()
        assert batch is not None and batch.items == [data] and batch.span_count == item_count(data)
        reopened.done(batch)
        await reopened.finish()

    asyncio.run(scenario("logs", _logs()))
    asyncio.run(scenario("metrics", _metrics()))


def test_each_signal_has_its_queue_beside_the_traces_one(tmp_path: Path) -> None:
    exporter = ComponentID("otlp", "tempo")
    default = QueueSettings()
    traces = default.queue_directory(exporter)
    assert traces.name == "otlp%2Ftempo"  # where a traces log has always been
    assert default.queue_directory(exporter, "logs") == traces.with_name("otlp%2Ftempo+logs")
    configured = QueueSettings(directory=str(tmp_path / "q"))
    assert configured.queue_directory(exporter, "traces") == tmp_path / "q"
    assert configured.queue_directory(exporter, "metrics") == tmp_path / "q+metrics"
