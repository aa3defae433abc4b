"""The ``otlp`` exporter: spans, logs and metrics to another collector or a backend over OTLP/gRPC.

A queued exporter (sending queue, batching, retries from collector.exporterhelper)
per signal, whose sender is exporters.otlp.sender.OtlpSender. The loadbalancing
exporter builds one of these per backend with ``create_otlp_exporter``.
"""

from __future__ import annotations

from collector.component import ComponentSettings, Exporter, ExporterFactory
from collector.config.types import HostPort
from collector.exporterhelper import QueuedExporter
from collector.signals import Signal
from exporters.otlp.config import OtlpExporterConfig, OtlpSettings
from exporters.otlp.requests import MAX_REQUEST_BYTES
from exporters.otlp.sender import OtlpSender


def create_otlp_exporter(
    settings: ComponentSettings, config: OtlpSettings, endpoint: HostPort, signal: Signal = "traces"
) -> QueuedExporter:
    """A queued exporter of ``signal`` sending to ``endpoint`` with ``config``'s transport, queue and retries."""
    sender = OtlpSender(settings, config, endpoint, MAX_REQUEST_BYTES, signal)
    return QueuedExporter(settings, sender, config.sending_queue, config.retry_on_failure, signal=signal)


def _create(settings: ComponentSettings, config: OtlpExporterConfig, signal: Signal) -> Exporter:
    # Decoding refuses a config without an endpoint; a config built in code must set one too.
    if config.endpoint is None:
        raise ValueError("the otlp exporter needs an endpoint")
    return create_otlp_exporter(settings, config, config.endpoint, signal)


def create_exporter(settings: ComponentSettings, config: OtlpExporterConfig) -> Exporter:
    return _create(settings, config, "traces")


def create_logs_exporter(settings: ComponentSettings, config: OtlpExporterConfig) -> Exporter:
    return _create(settings, config, "logs")


def create_metrics_exporter(settings: ComponentSettings, config: OtlpExporterConfig) -> Exporter:
    return _create(settings, config, "metrics")


factory = ExporterFactory(
    type="otlp",
    config_type=OtlpExporterConfig,
    create=create_exporter,
    create_logs=create_logs_exporter,
    create_metrics=create_metrics_exporter,
)
