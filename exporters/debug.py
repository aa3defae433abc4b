"""The ``debug`` exporter: prints what reaches it, for seeing a pipeline work, for every signal.

``verbosity: basic`` prints one summary line per batch, ``normal`` one line per
span, log record or metric, ``detailed`` every field of every item. It writes
synchronously to the collector's log (standard error) and keeps no queue.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

from google.protobuf import text_format
from opentelemetry.proto.logs.v1.logs_pb2 import SeverityNumber

from collector.component import ComponentSettings, Exporter, ExporterFactory, Host
from collector.pdata import any_value, iter_spans
from collector.signal_metrics import signal_metrics
from collector.signals import SIGNAL_KINDS, LogsData, MetricsData, OtlpData, Signal, TracesData

# The severity number's enum names, shown without it (ERROR, INFO2, UNSPECIFIED) when a record has no severity text.
SEVERITY_PREFIX = "SEVERITY_NUMBER_"


@dataclass(frozen=True)
class DebugConfig:
    verbosity: Literal["basic", "normal", "detailed"] = "basic"


class DebugExporter:
    """Prints the batches of one signal."""

    def __init__(self, settings: ComponentSettings, config: DebugConfig, signal: Signal = "traces") -> None:
        self._logger = settings.logger
        self._kind = SIGNAL_KINDS[signal]
        self._sent = signal_metrics(settings.telemetry, signal).exporter_sent.bind(exporter=str(settings.id))
        self._verbosity = config.verbosity

    async def start(self, host: Host) -> None:
        return None

    async def shutdown(self) -> None:
        return None

    async def consume(self, data: OtlpData) -> None:
        count = self._kind.count(data)
        self._logger.info("%s", _summary(data, count))
        if self._verbosity == "normal":
            for line in _lines(data):
                self._logger.info("  %s", line)
        elif self._verbosity == "detailed":
            self._logger.info("%s", text_format.MessageToString(data, as_utf8=True))
        # No queue: a batch is exported once it is logged, counted as the queued exporters count theirs.
        self._sent.add(count)


def _summary(data: OtlpData, count: int) -> str:
    if isinstance(data, TracesData):
        return f"Traces: {len(data.resource_spans)} resource spans, {count} spans"
    if isinstance(data, LogsData):
        return f"Logs: {len(data.resource_logs)} resource logs, {count} log records"
    metrics = sum(len(sm.metrics) for rm in data.resource_metrics for sm in rm.scope_metrics)
    return f"Metrics: {len(data.resource_metrics)} resource metrics, {metrics} metrics, {count} data points"


def _lines(data: OtlpData) -> Iterator[str]:
    """One line per span, log record or metric."""
    if isinstance(data, TracesData):
        for _, _, span in iter_spans([data]):
            yield f"{span.name} trace_id={span.trace_id.hex()} span_id={span.span_id.hex()}"
    elif isinstance(data, LogsData):
        for rl in data.resource_logs:
            for sl in rl.scope_logs:
                for record in sl.log_records:
                    severity = record.severity_text or SeverityNumber.Name(record.severity_number).removeprefix(
                        SEVERITY_PREFIX
                    )
                    trace = f" trace_id={record.trace_id.hex()}" if record.trace_id else ""
                    yield f"{severity} {any_value(record.body)!r}{trace}"
    elif isinstance(data, MetricsData):
        for rm in data.resource_metrics:
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    kind = metric.WhichOneof("data") or "empty"
                    points = len(getattr(metric, kind).data_points) if kind != "empty" else 0
                    yield f"{metric.name} {kind} {points} data points"


def create_exporter(settings: ComponentSettings, config: DebugConfig) -> Exporter:
    return DebugExporter(settings, config)


def create_logs_exporter(settings: ComponentSettings, config: DebugConfig) -> Exporter:
    return DebugExporter(settings, config, "logs")


def create_metrics_exporter(settings: ComponentSettings, config: DebugConfig) -> Exporter:
    return DebugExporter(settings, config, "metrics")


# It shows what the pipeline accepted: a batch another exporter refused is shown when the client sends it again.
factory = ExporterFactory(
    type="debug",
    config_type=DebugConfig,
    create=create_exporter,
    accepted_only=True,
    create_logs=create_logs_exporter,
    create_metrics=create_metrics_exporter,
)
