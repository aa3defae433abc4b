"""The ``otlp`` exporter: spans to another collector or a tracing backend over OTLP/gRPC.

A queued exporter (sending queue, batching, retries from collector.exporterhelper)
whose sender is exporters.otlp.sender.OtlpSender. The loadbalancing exporter
builds one of these per backend with ``create_otlp_exporter``.
"""

from __future__ import annotations

from collector.component import ComponentSettings, Exporter, ExporterFactory
from collector.config.types import HostPort
from collector.exporterhelper import QueuedExporter
from exporters.otlp.config import OtlpExporterConfig, OtlpSettings
from exporters.otlp.sender import OtlpSender


def create_otlp_exporter(settings: ComponentSettings, config: OtlpSettings, endpoint: HostPort) -> QueuedExporter:
    """A queued exporter sending to ``endpoint`` with ``config``'s transport, queue and retries."""
    sender = OtlpSender(settings, config, endpoint)
    return QueuedExporter(settings, sender, config.sending_queue, config.retry_on_failure)


def create_exporter(settings: ComponentSettings, config: OtlpExporterConfig) -> Exporter:
    # Decoding refuses a config without an endpoint; a config built in code must set one too.
    if config.endpoint is None:
        raise ValueError("the otlp exporter needs an endpoint")
    return create_otlp_exporter(settings, config, config.endpoint)


factory = ExporterFactory(type="otlp", config_type=OtlpExporterConfig, create=create_exporter)
