"""The cumulative aggregates the genai_metrics connector keeps, bounded per metric, written out as OTLP metrics.

Each family is one OpenTelemetry metric: a monotonic sum (``Counter``) or a
histogram with explicit bucket boundaries (``Histogram``), cumulative since the
connector started. It holds at most ``max_series`` attribute sets. An
observation for a new attribute set beyond that goes to the family's overflow
series, with the one attribute ``otel.metric.overflow=true`` as the OpenTelemetry
SDKs mark theirs, and the ``on_overflow`` callback counts it. Attributes with an
empty value are left out of a data point (in Prometheus an empty label is no label).
Everything here runs on the event loop, so no lock is needed.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.metrics.v1.metrics_pb2 import AggregationTemporality, Metric

LabelValues = tuple[str, ...]
OVERFLOW_ATTRIBUTE = "otel.metric.overflow"
_OVERFLOW: LabelValues = ()  # the overflow series' key: no ordinary attribute set is empty
_CUMULATIVE = AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE
S = TypeVar("S")


@dataclass
class _HistogramSeries:
    bucket_counts: list[int]  # per bucket, not cumulative; the last one is above the highest boundary
    total: float = 0.0
    count: int = 0


@dataclass(frozen=True)
class Times:
    """The start of the cumulative aggregation and the time of the data points being written (Unix nanoseconds)."""

    start: int
    now: int


class _Family(Generic[S]):
    """What histograms and counters share: a name, unit, description, attribute names, the bounded series."""

    def __init__(
        self,
        name: str,
        unit: str,
        description: str,
        attribute_names: tuple[str, ...],
        max_series: int,
        on_overflow: Callable[[str], None],
    ) -> None:
        self.name = name
        self.unit = unit
        self.description = description
        self.attribute_names = attribute_names
        self.max_series = max_series
        self.on_overflow = on_overflow
        self.series: dict[LabelValues, S] = {}

    def _key(self, labels: LabelValues) -> LabelValues:
        """``labels``, or the overflow key when the family is full and this is a new attribute set."""
        if labels in self.series or len(self.series) - (_OVERFLOW in self.series) < self.max_series:
            return labels
        self.on_overflow(self.name)
        return _OVERFLOW

    def _metric(self, metric: Metric) -> None:
        metric.name, metric.unit, metric.description = self.name, self.unit, self.description

    def _attributes(self, key: LabelValues) -> list[KeyValue]:
        if key == _OVERFLOW:
            pair = KeyValue(key=OVERFLOW_ATTRIBUTE)
            pair.value.bool_value = True
            return [pair]
        pairs = []
        for name, value in zip(self.attribute_names, key, strict=True):
            if value:
                pair = KeyValue(key=name)
                pair.value.string_value = value
                pairs.append(pair)
        return pairs


class Histogram(_Family[_HistogramSeries]):
    """A histogram with fixed bucket boundaries (upper bounds, inclusive)."""

    def __init__(
        self,
        name: str,
        unit: str,
        description: str,
        attribute_names: tuple[str, ...],
        boundaries: Sequence[float],
        max_series: int,
        on_overflow: Callable[[str], None],
    ) -> None:
        super().__init__(name, unit, description, attribute_names, max_series, on_overflow)
        self.boundaries = tuple(float(bound) for bound in boundaries)

    def observe(self, labels: LabelValues, value: float) -> None:
        key = self._key(labels)
        series = self.series.get(key)
        if series is None:
            series = self.series[key] = _HistogramSeries([0] * (len(self.boundaries) + 1))
        # bisect_left: a value equal to a bound belongs to that bound's bucket (OTLP's bounds are inclusive).
        series.bucket_counts[bisect.bisect_left(self.boundaries, value)] += 1
        series.total += value
        series.count += 1

    def write(self, metric: Metric, times: Times) -> None:
        self._metric(metric)
        metric.histogram.aggregation_temporality = _CUMULATIVE
        for key in sorted(self.series):
            series = self.series[key]
            point = metric.histogram.data_points.add(
                start_time_unix_nano=times.start,
                time_unix_nano=times.now,
                count=series.count,
                sum=series.total,
                bucket_counts=series.bucket_counts,
                explicit_bounds=self.boundaries,
            )
            point.attributes.extend(self._attributes(key))


class Counter(_Family[float]):
    """A monotonic cumulative sum."""

    def add(self, labels: LabelValues, amount: float) -> None:
        key = self._key(labels)
        self.series[key] = self.series.get(key, 0.0) + amount

    def write(self, metric: Metric, times: Times) -> None:
        self._metric(metric)
        metric.sum.aggregation_temporality = _CUMULATIVE
        metric.sum.is_monotonic = True
        for key in sorted(self.series):
            point = metric.sum.data_points.add(
                start_time_unix_nano=times.start, time_unix_nano=times.now, as_double=self.series[key]
            )
            point.attributes.extend(self._attributes(key))
