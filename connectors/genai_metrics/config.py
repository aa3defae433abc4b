"""Settings of the ``genai_metrics`` connector: how often it emits, how many series it holds, which conventions."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from collector.config.types import Duration
from collector.semconv import LATEST, Version

# How often the cumulative metrics go to the metrics pipelines (Prometheus scrapes every 15 s by default).
DEFAULT_INTERVAL = Duration(15.0)
# The OpenTelemetry SDKs' default cardinality limit per metric.
DEFAULT_MAX_SERIES = 2000


@dataclass(frozen=True)
class GenAiMetricsConfig:
    """Turns the spans of traces pipelines into GenAI client metrics for metrics pipelines.

    Every ``interval`` (and once more at shutdown) it emits every series,
    cumulative since the collector started. ``max_series`` bounds each metric's
    attribute sets; observations for further ones go to one overflow series
    per metric, and are counted. ``semconv`` picks the metrics of the newest
    GenAI conventions (``latest``) or of v1.41.0 (``v1.41``).
    """

    interval: Duration = DEFAULT_INTERVAL
    max_series: int = DEFAULT_MAX_SERIES
    semconv: Version = LATEST

    def validate(self) -> Iterable[tuple[str, str]]:
        if self.interval <= 0:
            yield "interval", "must be more than 0"
        if self.max_series < 1:
            yield "max_series", "must be at least 1"
