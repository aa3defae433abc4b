"""The ``genai_metrics`` connector: GenAI client metrics derived from spans, for metrics pipelines.

It is an exporter of traces pipelines and a receiver of metrics pipelines. Each
call to a model, agent step and tool execution updates in-memory cumulative
sums and explicit-bucket histograms named as the OpenTelemetry GenAI semantic
conventions name the client metrics (``connectors.genai_metrics.metrics``);
every ``interval``, and once more at shutdown, it hands them as one OTLP
``MetricsData`` (cumulative temporality) to the metrics pipelines that receive
from it, where the prometheus, otlp, otlphttp, clickhouse or debug exporters
take them. The metrics carry an empty resource and the scope
``genai_collector.genai_metrics``; whose calls a series counts is in its
``service.name`` and ``tenant.id`` attributes.

``consume`` only updates those aggregates and never refuses. It is
``accepted_only``: the pipeline hands it a batch once the exporters with a
sending queue accepted it, so spans a client sends again after a refusal are
counted once. With worker processes, reading the spans happens in the workers,
where the processors left them (``SpanFactsPart``); ``consume`` in the main
process adds what they found, minus the calls a processor's main part marked
duplicates afterwards. An emit the metrics pipelines refuse is counted,
logged and shown by /health until one is taken; the next one carries the same
totals (they are cumulative), so nothing is lost but time.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any, cast

from opentelemetry.proto.metrics.v1.metrics_pb2 import MetricsData

from collector import __version__
from collector.component import (
    ComponentSettings,
    Connector,
    ConnectorFactory,
    Consumer,
    Host,
    TracesData,
    WorkerPart,
)
from collector.runtime.annotations import notes_for
from connectors.genai_metrics.config import GenAiMetricsConfig
from connectors.genai_metrics.generated_metrics import GenaiMetricsSelfMetrics
from connectors.genai_metrics.metrics import GenAiMetrics
from connectors.genai_metrics.spans import CallFacts, StepFacts, batch_facts

SCOPE_NAME = "genai_collector.genai_metrics"
Clock = Callable[[], int]  # Unix nanoseconds


class GenAiMetricsConnector:
    """Aggregates spans into GenAiMetrics; emits them to ``next_consumer`` while running."""

    def __init__(
        self,
        settings: ComponentSettings,
        config: GenAiMetricsConfig,
        next_consumer: Consumer[MetricsData],
        clock: Clock = time.time_ns,
    ) -> None:
        self._settings = settings
        self._config = config
        self._next = next_consumer
        self._clock = clock
        self._id = str(settings.id)
        own = GenaiMetricsSelfMetrics(settings.telemetry)
        self._overflow = own.metrics_overflow_observations
        self._emit_failures = own.metrics_emit_failures.bind(connector=self._id)
        self.metrics = GenAiMetrics(config.max_series, self._count_overflow, config.semconv, start=clock())
        self._stopping = asyncio.Event()
        self._emitter: asyncio.Task[None] | None = None
        self._emitting = asyncio.Lock()  # the timer's emit and the final one never overlap
        self._stopped = False
        self._last_refusal: str | None = None  # why the last emit was refused; None once one is taken

    async def start(self, host: Host) -> None:
        if self._emitter is None and not self._stopped:
            self._emitter = asyncio.create_task(self._emit_every_interval(), name=f"{self._id} emitter")

    async def shutdown(self) -> None:
        """Stop the timer and emit what was aggregated since the last emit; safe twice and before start."""
        if self._stopped:
            return
        self._stopped = True
        self._stopping.set()
        if self._emitter is not None:
            await self._emitter
            await self.emit()

    async def consume(self, traces: TracesData) -> None:
        noted = notes_for(traces, self._id)
        if noted is None:
            self.metrics.record(traces)
            return
        notes, marked_since = noted
        self.metrics.observe(
            fact
            for note in notes
            for fact in cast(list[CallFacts | StepFacts], note)
            if not (isinstance(fact, CallFacts) and fact.key in marked_since)
        )

    def metrics_data(self) -> MetricsData:
        """Every series, cumulative up to now, as one OTLP batch (no metric when nothing was observed yet)."""
        data = MetricsData()
        if self.metrics.point_count():
            scope_metrics = data.resource_metrics.add().scope_metrics.add()
            scope_metrics.scope.name, scope_metrics.scope.version = SCOPE_NAME, __version__
            self.metrics.write(scope_metrics, self._clock())
        return data

    async def emit(self) -> None:
        """Hand every series to the metrics pipelines; a refusal is counted and logged, never raised."""
        async with self._emitting:
            data = self.metrics_data()
            if not data.resource_metrics:
                return
            try:
                await self._next.consume(data)
            except Exception as exc:
                self._emit_failures.add(1)
                self._last_refusal = str(exc) or type(exc).__name__
                self._settings.logger.warning("the metrics pipelines refused the GenAI metrics: %s", exc)
            else:
                self._last_refusal = None

    def health_problems(self) -> list[str]:
        """While the metrics pipelines refuse its emits, /health says so (collector.health.HealthReporter)."""
        if self._last_refusal is None:
            return []
        return [f"the metrics pipelines refused the last emit ({self._last_refusal}); the next carries the same totals"]

    async def _emit_every_interval(self) -> None:
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._config.interval)
            if not self._stopping.is_set():
                await self.emit()

    def _count_overflow(self, metric: str) -> None:
        self._overflow.add(1, connector=self._id, metric=metric)


class SpanFactsPart:
    """The connector's part in a worker process: what each span of a batch adds to the metrics."""

    def observe(self, traces: TracesData) -> list[CallFacts | StepFacts]:
        return list(batch_facts(traces))


def create_connector(
    settings: ComponentSettings, config: GenAiMetricsConfig, next_consumer: Consumer[Any]
) -> Connector:
    return GenAiMetricsConnector(settings, config, next_consumer)


def create_worker_part(settings: ComponentSettings, config: GenAiMetricsConfig) -> WorkerPart:
    return SpanFactsPart()


factory = ConnectorFactory(
    type="genai_metrics",
    config_type=GenAiMetricsConfig,
    creators={("traces", "metrics"): create_connector},
    create_worker_part=create_worker_part,
    accepted_only=True,
)
