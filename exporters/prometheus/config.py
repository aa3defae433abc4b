"""Settings of the ``prometheus`` exporter: where /metrics is served, how names are made, how long series live.

The names follow the OpenTelemetry Collector's prometheus exporter (``namespace``,
``const_labels``, ``add_metric_suffixes``, ``resource_to_telemetry_conversion``,
``metric_expiration``). Its former GenAI settings moved to the genai_metrics
connector: ``semconv`` is a config error naming the new place.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from collector.config.types import Duration, HostPort
from collector.listeners.settings import DEFAULT_LOCAL_MAX_CONNECTIONS, HttpServerSettings
from exporters.prometheus.naming import label_name

DEFAULT_ENDPOINT = HostPort("127.0.0.1", 8889)
# Series per metric name; the OpenTelemetry SDKs' default cardinality limit per metric.
DEFAULT_MAX_SERIES = 2000
# How long a series not updated stays exposed (the Collector's prometheus exporter's default).
DEFAULT_METRIC_EXPIRATION = Duration(300.0)
MOVED_SEMCONV = (
    "moved to the genai_metrics connector: set connectors.genai_metrics.semconv instead "
    "(docs/components.md, prometheus: moving from a traces pipeline)"
)


@dataclass(frozen=True)
class ResourceToTelemetry:
    """Whether every resource attribute becomes a label of every series (besides target_info)."""

    enabled: bool = False


@dataclass(frozen=True)
class PrometheusExporterConfig(HttpServerSettings):
    """Serves the metrics of the pipelines it is in on ``endpoint`` at /metrics.

    ``max_series`` bounds the series of each metric name; points of further
    series are dropped, and counted. A series not updated within
    ``metric_expiration`` goes. The listener's timeouts and limits are
    ``HttpServerSettings``'.
    """

    endpoint: HostPort = DEFAULT_ENDPOINT
    max_connections: int = DEFAULT_LOCAL_MAX_CONNECTIONS
    max_series: int = DEFAULT_MAX_SERIES
    metric_expiration: Duration = DEFAULT_METRIC_EXPIRATION
    namespace: str = ""
    const_labels: dict[str, str] = field(default_factory=dict)
    add_metric_suffixes: bool = True
    resource_to_telemetry_conversion: ResourceToTelemetry = field(default_factory=ResourceToTelemetry)
    # The release before connectors made GenAI metrics here; the genai_metrics connector does now.
    semconv: str | None = None

    def validate(self) -> Iterable[tuple[str, str]]:
        yield from super().validate()
        if self.max_series < 1:
            yield "max_series", "must be at least 1"
        if self.metric_expiration <= 0:
            yield "metric_expiration", "must be more than 0"
        for name in self.const_labels:
            if label_name(name) != name:
                yield f"const_labels.{name}", "is not a valid Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*)"
        if self.semconv is not None:
            yield "semconv", MOVED_SEMCONV

    def listeners(self) -> Iterable[tuple[str, HostPort]]:
        yield "endpoint", self.endpoint
