"""The ``otlphttp`` exporter: spans, logs and metrics to another collector or a backend over OTLP/HTTP.

A queued exporter (sending queue, batching, retries from collector.exporterhelper)
per signal, whose sender is exporters.otlphttp.sender.OtlpHttpSender: protobuf
or JSON, gzip or not, to ``<endpoint>/v1/traces`` (``/v1/logs``, ``/v1/metrics``)
or the signal's own URL.
"""

from __future__ import annotations

from collector.component import ComponentSettings, Exporter, ExporterFactory
from collector.exporterhelper import QueuedExporter
from collector.signals import Signal
from exporters.otlp.requests import MAX_REQUEST_BYTES
from exporters.otlphttp.config import OtlpHttpExporterConfig
from exporters.otlphttp.sender import OtlpHttpSender


def _create(settings: ComponentSettings, config: OtlpHttpExporterConfig, signal: Signal) -> Exporter:
    if not config.url(signal):
        raise ValueError(f"the otlphttp exporter needs an endpoint or a {signal}_endpoint")
    sender = OtlpHttpSender(settings, config, MAX_REQUEST_BYTES, signal)
    return QueuedExporter(settings, sender, config.sending_queue, config.retry_on_failure, signal=signal)


def create_exporter(settings: ComponentSettings, config: OtlpHttpExporterConfig) -> Exporter:
    # Decoding refuses a config without a URL; a config built in code must set one too.
    return _create(settings, config, "traces")


def create_logs_exporter(settings: ComponentSettings, config: OtlpHttpExporterConfig) -> Exporter:
    return _create(settings, config, "logs")


def create_metrics_exporter(settings: ComponentSettings, config: OtlpHttpExporterConfig) -> Exporter:
    return _create(settings, config, "metrics")


factory = ExporterFactory(
    type="otlphttp",
    config_type=OtlpHttpExporterConfig,
    create=create_exporter,
    create_logs=create_logs_exporter,
    create_metrics=create_metrics_exporter,
)
