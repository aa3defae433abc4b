"""Settings of the ``prometheus`` exporter: where /metrics is served, and how many series it may hold."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from collector.config.types import HostPort
from collector.listeners.settings import DEFAULT_LOCAL_MAX_CONNECTIONS, HttpServerSettings
from collector.semconv import LATEST, Version

DEFAULT_ENDPOINT = HostPort("127.0.0.1", 8889)
# The OpenTelemetry SDKs' default cardinality limit per metric.
DEFAULT_MAX_SERIES = 2000


@dataclass(frozen=True)
class PrometheusExporterConfig(HttpServerSettings):
    """Serves GenAI metrics derived from spans on ``endpoint`` at /metrics.

    ``max_series`` bounds each metric's label sets; observations for further
    label sets go to one overflow series per metric, and are counted.
    ``semconv`` picks the metrics of the newest GenAI conventions (``latest``)
    or of v1.41.0 (``v1.41``), for dashboards built on those. The listener's
    timeouts and limits are ``HttpServerSettings``'.
    """

    endpoint: HostPort = DEFAULT_ENDPOINT
    max_connections: int = DEFAULT_LOCAL_MAX_CONNECTIONS
    max_series: int = DEFAULT_MAX_SERIES
    semconv: Version = LATEST

    def validate(self) -> Iterable[tuple[str, str]]:
        yield from super().validate()
        if self.max_series < 1:
            yield "max_series", "must be at least 1"

    def listeners(self) -> Iterable[tuple[str, HostPort]]:
        yield "endpoint", self.endpoint
