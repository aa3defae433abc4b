"""The ``prometheus`` exporter: the metrics of a metrics pipeline, served for Prometheus to scrape.

As the OpenTelemetry Collector's prometheus exporter: ``consume`` keeps the
latest cumulative state of every series it is given (any metric: sums,
gauges, histograms, exponential histograms, summaries; ``exporters.prometheus.store``),
and an HTTP listener started in ``start`` serves them at /metrics in the
Prometheus text format, named by the exposition format's rules
(``exporters.prometheus.naming``). There is no queue (as with the debug
exporter); it is ``accepted_only``: the pipeline hands it a batch once the
exporters with a sending queue accepted it, so points a client sends again
after a refusal are taken once.

The GenAI metrics it used to derive from spans come from the genai_metrics
connector now: a traces pipeline exports to the connector, a metrics pipeline
receives from it and exports here. Listing it in a traces pipeline is a config
error that says so.
"""

from __future__ import annotations

from collector.component import ComponentSettings, Exporter, ExporterFactory, Host, MetricsData
from collector.pdata import data_point_count
from collector.signal_metrics import signal_metrics
from exporters.prometheus.config import PrometheusExporterConfig
from exporters.prometheus.exposition import render
from exporters.prometheus.generated_metrics import PrometheusSelfMetrics
from exporters.prometheus.server import MetricsServer
from exporters.prometheus.store import MetricStore, Naming

MOVED_TRACES = (
    "prometheus exposes metrics pipelines now: export the traces to the genai_metrics connector and add a "
    "metrics pipeline that receives from it and exports to prometheus (docs/components.md, prometheus)"
)


class PrometheusExporter:
    """Keeps the series of what it consumes; serves them while running."""

    def __init__(self, settings: ComponentSettings, config: PrometheusExporterConfig) -> None:
        self._settings = settings
        self._config = config
        exporter = self._exporter = str(settings.id)
        self._sent = signal_metrics(settings.telemetry, "metrics").exporter_sent.bind(exporter=exporter)
        self._dropped = PrometheusSelfMetrics(settings.telemetry).prometheus_dropped_points
        naming = Naming(
            config.namespace,
            config.add_metric_suffixes,
            dict(config.const_labels),
            config.resource_to_telemetry_conversion.enabled,
        )
        self.store = MetricStore(naming, config.max_series, config.metric_expiration, self._count_dropped)
        self._server = MetricsServer(config, self.render, exporter, settings.telemetry)

    @property
    def port(self) -> int:
        return self._server.port

    async def start(self, host: Host) -> None:
        await self._server.start()
        self._settings.logger.info("Prometheus metrics at http://%s/metrics", self._server.address)

    async def shutdown(self) -> None:
        await self._server.stop()

    async def consume(self, metrics: MetricsData) -> None:
        self.store.add(metrics)
        self._sent.add(data_point_count(metrics))

    def render(self) -> str:
        """What a scrape gets: every series not expired."""
        self.store.expire()
        return render(self.store, self._config.namespace)

    def _count_dropped(self, metric: str) -> None:
        self._dropped.add(1, exporter=self._exporter, metric=metric)


def create_metrics_exporter(settings: ComponentSettings, config: PrometheusExporterConfig) -> Exporter:
    return PrometheusExporter(settings, config)


factory = ExporterFactory(
    type="prometheus",
    config_type=PrometheusExporterConfig,
    create=None,
    create_metrics=create_metrics_exporter,
    accepted_only=True,
    moved={"traces": MOVED_TRACES},
)
