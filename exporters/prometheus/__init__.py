"""The ``prometheus`` exporter: GenAI client metrics derived from spans, served for Prometheus to scrape.

Each call to a model updates in-memory counters and histograms named as the
OpenTelemetry GenAI semantic conventions name the client metrics (dots become
underscores, units become suffixes): by default the newest conventions'
``gen_ai_client_inference_usage_input_tokens_total`` and its siblings,
``gen_ai_client_inference_duration_seconds``,
``gen_ai_client_embeddings_duration_seconds`` and
``gen_ai_client_operation_cost``; with ``semconv: v1.41`` v1.41.0's
``gen_ai_client_token_usage``, ``gen_ai_client_operation_duration_seconds`` and
this project's ``gen_ai_client_cost_usd_total`` (``exporters.prometheus.metrics``).
``consume`` only updates those aggregates, so there is no queue (as with the
debug exporter); an HTTP listener started in ``start`` serves them at /metrics
in the Prometheus text format. It is ``accepted_only``: the pipeline hands it a
batch once the exporters with a sending queue accepted it, so spans a client
sends again after a refusal are counted once.

With worker processes, reading the spans (the per-span part) happens in the
workers, where the processors left them (``SpanFactsPart``); ``consume`` in the
main process adds what they found, minus the calls a processor's main part
marked duplicates afterwards.
"""

from __future__ import annotations

from typing import cast

from collector.component import ComponentSettings, Exporter, ExporterFactory, Host, TracesData, WorkerPart
from collector.generated_metrics import PipelineSelfMetrics
from collector.pdata import span_count
from collector.runtime.annotations import notes_for
from exporters.prometheus.config import PrometheusExporterConfig
from exporters.prometheus.generated_metrics import PrometheusSelfMetrics
from exporters.prometheus.metrics import GenAiMetrics
from exporters.prometheus.server import MetricsServer
from exporters.prometheus.spans import CallFacts, StepFacts, batch_facts


class PrometheusExporter:
    """Aggregates spans into GenAiMetrics; serves them while running."""

    def __init__(self, settings: ComponentSettings, config: PrometheusExporterConfig) -> None:
        self._settings = settings
        exporter = self._exporter = str(settings.id)
        self._sent = PipelineSelfMetrics(settings.telemetry).exporter_sent_spans.bind(exporter=exporter)
        self._overflow = PrometheusSelfMetrics(settings.telemetry).prometheus_overflow_observations
        self.metrics = GenAiMetrics(config.max_series, self._count_overflow, config.semconv)
        self._server = MetricsServer(config, self.metrics.render, str(settings.id), settings.telemetry)

    @property
    def port(self) -> int:
        return self._server.port

    async def start(self, host: Host) -> None:
        await self._server.start()
        self._settings.logger.info("Prometheus metrics at http://%s/metrics", self._server.address)

    async def shutdown(self) -> None:
        await self._server.stop()

    async def consume(self, traces: TracesData) -> None:
        noted = notes_for(traces, str(self._settings.id))
        if noted is None:
            self.metrics.record(traces)
        else:
            notes, marked_since = noted
            self.metrics.observe(
                fact
                for note in notes
                for fact in cast(list[CallFacts | StepFacts], note)
                if not (isinstance(fact, CallFacts) and fact.key in marked_since)
            )
        self._sent.add(span_count(traces))

    def _count_overflow(self, metric: str) -> None:
        self._overflow.add(1, exporter=self._exporter, metric=metric)


class SpanFactsPart:
    """The exporter's part in a worker process: what each span of a batch adds to the metrics."""

    def observe(self, traces: TracesData) -> list[CallFacts | StepFacts]:
        return list(batch_facts(traces))


def create_exporter(settings: ComponentSettings, config: PrometheusExporterConfig) -> Exporter:
    return PrometheusExporter(settings, config)


def create_worker_part(settings: ComponentSettings, config: PrometheusExporterConfig) -> WorkerPart:
    return SpanFactsPart()


factory = ExporterFactory(
    type="prometheus",
    config_type=PrometheusExporterConfig,
    create=create_exporter,
    create_worker_part=create_worker_part,
    accepted_only=True,
)
