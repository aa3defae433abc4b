"""Metric families held in memory and rendered in the Prometheus text format: histograms and counters.

Each family holds at most ``max_series`` label sets. An observation for a new
label set beyond that goes to the family's overflow series, labelled
``otel_metric_overflow="true"`` as the OpenTelemetry SDKs label theirs, and the
``on_overflow`` callback counts it. Everything here runs on the event loop
(consume and scrape alike), so no lock is needed.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from collector.telemetry import render_labels, render_number

LabelValues = tuple[str, ...]
OVERFLOW_LABELS: tuple[tuple[str, str], ...] = (("otel_metric_overflow", "true"),)
_OVERFLOW: LabelValues = ()  # the overflow series' key: no ordinary label set is empty
S = TypeVar("S")


@dataclass
class _HistogramSeries:
    bucket_counts: list[int]  # per bucket, not cumulative; the last one is +Inf
    total: float = 0.0
    count: int = 0


class _Family(Generic[S]):
    """What histograms and counters share: a name, label names, and the bounded series by label values."""

    def __init__(
        self, name: str, help: str, label_names: tuple[str, ...], max_series: int, on_overflow: Callable[[str], None]
    ) -> None:
        self.name = name
        self.help = help
        self.label_names = label_names
        self.max_series = max_series
        self.on_overflow = on_overflow
        self.series: dict[LabelValues, S] = {}

    def _key(self, labels: LabelValues) -> LabelValues:
        """``labels``, or the overflow key when the family is full and this is a new label set."""
        if labels in self.series or len(self.series) - (_OVERFLOW in self.series) < self.max_series:
            return labels
        self.on_overflow(self.name)
        return _OVERFLOW

    def _label_pairs(self, key: LabelValues) -> tuple[tuple[str, str], ...]:
        return OVERFLOW_LABELS if key == _OVERFLOW else tuple(zip(self.label_names, key, strict=True))


class Histogram(_Family[_HistogramSeries]):
    """A Prometheus histogram with fixed bucket boundaries (upper bounds, inclusive)."""

    def __init__(
        self,
        name: str,
        help: str,
        label_names: tuple[str, ...],
        buckets: Sequence[float],
        max_series: int,
        on_overflow: Callable[[str], None],
    ) -> None:
        super().__init__(name, help, label_names, max_series, on_overflow)
        self.buckets = tuple(buckets)

    def observe(self, labels: LabelValues, value: float) -> None:
        key = self._key(labels)
        series = self.series.get(key)
        if series is None:
            series = self.series[key] = _HistogramSeries([0] * (len(self.buckets) + 1))
        # bisect_left: a value equal to a bound belongs to that bound's bucket (le is inclusive).
        series.bucket_counts[bisect.bisect_left(self.buckets, value)] += 1
        series.total += value
        series.count += 1

    def render(self, lines: list[str]) -> None:
        lines.append(f"# HELP {self.name} {self.help}")
        lines.append(f"# TYPE {self.name} histogram")
        for key in sorted(self.series):
            series = self.series[key]
            pairs = self._label_pairs(key)
            cumulative = 0
            for bound, count in zip((*map(render_number, self.buckets), "+Inf"), series.bucket_counts, strict=True):
                cumulative += count
                lines.append(f"{self.name}_bucket{render_labels((*pairs, ('le', bound)))} {cumulative}")
            lines.append(f"{self.name}_sum{render_labels(pairs)} {render_number(series.total)}")
            lines.append(f"{self.name}_count{render_labels(pairs)} {series.count}")


class Counter(_Family[float]):
    """A Prometheus counter; ``name`` ends in ``_total``."""

    def add(self, labels: LabelValues, amount: float) -> None:
        key = self._key(labels)
        self.series[key] = self.series.get(key, 0.0) + amount

    def render(self, lines: list[str]) -> None:
        lines.append(f"# HELP {self.name} {self.help}")
        lines.append(f"# TYPE {self.name} counter")
        for key in sorted(self.series):
            lines.append(f"{self.name}{render_labels(self._label_pairs(key))} {render_number(self.series[key])}")
