"""The ``otlphttp`` exporter: spans to another collector or a tracing backend over OTLP/HTTP.

A queued exporter (sending queue, batching, retries from collector.exporterhelper)
whose sender is exporters.otlphttp.sender.OtlpHttpSender: protobuf or JSON,
gzip or not, to ``<endpoint>/v1/traces`` or ``traces_endpoint``.
"""

from __future__ import annotations

from collector.component import ComponentSettings, Exporter, ExporterFactory
from collector.exporterhelper import QueuedExporter
from exporters.otlphttp.config import OtlpHttpExporterConfig
from exporters.otlphttp.sender import OtlpHttpSender


def create_exporter(settings: ComponentSettings, config: OtlpHttpExporterConfig) -> Exporter:
    # Decoding refuses a config without a URL; a config built in code must set one too.
    if not config.endpoint and not config.traces_endpoint:
        raise ValueError("the otlphttp exporter needs an endpoint or a traces_endpoint")
    sender = OtlpHttpSender(settings, config)
    return QueuedExporter(settings, sender, config.sending_queue, config.retry_on_failure)


factory = ExporterFactory(type="otlphttp", config_type=OtlpHttpExporterConfig, create=create_exporter)
