"""The prometheus exporter's series: the last value of each, cumulative, kept until it is not updated for a while.

As the OpenTelemetry Collector's prometheus exporter accumulates (its
lastValueAccumulator): a series is one Prometheus metric name and label set.
A cumulative point replaces the series' value unless it is older; a delta point
of a monotonic sum or a histogram is added to it when it starts where the last
one ended (a later start is a reset, an earlier one is dropped); a delta
non-monotonic sum, or a sum of unspecified temporality, cannot be exposed and is
dropped; a gauge or summary keeps its latest point; a point flagged "no recorded
value" ends its series. A series not updated within ``metric_expiration`` goes.

Labels are the point's attributes, the scope's (``otel_scope_name``,
``otel_scope_version``, ``otel_scope_schema_url``, ``otel_scope_<attribute>``),
``job`` and ``instance`` from the resource's ``service.namespace``/``service.name``
and ``service.instance.id``, and the configured constant labels; the rest of the
resource goes to one ``target_info`` series per job and instance (or to every
series with ``resource_to_telemetry_conversion``). Each metric name holds at most
``max_series`` series; points of further ones are dropped and counted.
Everything here runs on the event loop (consume and scrape alike): no lock.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.metrics.v1.metrics_pb2 import (
    AggregationTemporality,
    DataPointFlags,
    ExponentialHistogramDataPoint,
    HistogramDataPoint,
    Metric,
    MetricsData,
    NumberDataPoint,
    SummaryDataPoint,
)

from collector.pdata import any_value
from exporters.prometheus.naming import Kind, label_name, label_value, metric_name

Labels = tuple[tuple[str, str], ...]
DELTA = AggregationTemporality.AGGREGATION_TEMPORALITY_DELTA
CUMULATIVE = AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE
NO_RECORDED_VALUE = DataPointFlags.DATA_POINT_FLAGS_NO_RECORDED_VALUE_MASK
JOB, INSTANCE = "job", "instance"
SERVICE_NAME, SERVICE_NAMESPACE, SERVICE_INSTANCE_ID = "service.name", "service.namespace", "service.instance.id"
# Metric names, and targets (job, instance), the exporter holds at most: a client sending ever new names or
# service instances must not grow it without end. What comes beyond is dropped and counted.
MAX_METRIC_NAMES = 10_000
MAX_TARGETS = 10_000
# The dropped counter's metric label for a point whose metric name is beyond MAX_METRIC_NAMES (its own name
# would make that counter's labels as unbounded as the names).
OVER_MAX_METRIC_NAMES = "(beyond the metric names held)"
# Between scrapes, series past their expiration are forgotten at most this often, as data arrives.
EXPIRE_EVERY_SECONDS = 10.0
TARGET_INFO = "target_info"
TARGET_INFO_HELP = "Target metadata"
Point = NumberDataPoint | HistogramDataPoint | ExponentialHistogramDataPoint | SummaryDataPoint


@dataclass
class Series:
    """One series' latest state: a value (gauges, sums), or buckets, sum and count (histograms, summaries)."""

    labels: Labels
    start: int
    time: int
    updated: float
    value: float = 0.0
    count: int = 0
    total: float = 0.0
    bounds: tuple[float, ...] = ()
    bucket_counts: tuple[int, ...] = ()  # per bucket, not cumulative; one more than bounds
    quantiles: tuple[tuple[float, float], ...] = ()


@dataclass
class Family:
    """A metric name's type, help and series."""

    name: str
    kind: Kind
    help: str
    series: dict[Labels, Series] = field(default_factory=dict)


@dataclass(frozen=True)
class Naming:
    """How names and labels are made (the exporter's settings)."""

    namespace: str = ""
    add_metric_suffixes: bool = True
    const_labels: Mapping[str, str] = field(default_factory=dict)
    resource_to_telemetry: bool = False


class MetricStore:
    """The series the exporter shows; ``on_dropped(metric)`` hears of each point of a series beyond ``max_series``."""

    def __init__(
        self,
        naming: Naming,
        max_series: int,
        expiration: float,
        on_dropped: Callable[[str], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._naming = naming
        self._max_series = max_series
        self._expiration = expiration
        self._on_dropped = on_dropped
        self._clock = clock
        self.families: dict[str, Family] = {}
        # target_info per job and instance: its labels and when a metric of that resource last came.
        self.targets: dict[Labels, tuple[Labels, float]] = {}
        self._expired_at = clock()

    def add(self, data: MetricsData) -> None:
        now = self._clock()
        if now - self._expired_at >= EXPIRE_EVERY_SECONDS:  # not only when scraped: a store nobody scrapes
            self.expire()
        for resource_metrics in data.resource_metrics:
            resource = {pair.key: any_value(pair.value) for pair in resource_metrics.resource.attributes}
            target = _target_labels(resource)
            key = _job_instance(target)
            if target and (key in self.targets or len(self.targets) < MAX_TARGETS):
                self.targets[key] = (target, now)
            target_keys = key
            extra = self._resource_labels(resource) if self._naming.resource_to_telemetry else ()
            for scope_metrics in resource_metrics.scope_metrics:
                scope = scope_metrics.scope
                scope_labels: Labels = (
                    *((label_name("otel_scope_" + p.key), label_value(any_value(p.value))) for p in scope.attributes),
                    ("otel_scope_name", scope.name),
                    ("otel_scope_version", scope.version),
                    ("otel_scope_schema_url", scope_metrics.schema_url),
                )
                for metric in scope_metrics.metrics:
                    self._add_metric(metric, (*extra, *scope_labels, *target_keys), now)

    def expire(self) -> None:
        """Forget the series (and target_info) not updated within the expiration."""
        self._expired_at = self._clock()
        oldest = self._expired_at - self._expiration
        for name in list(self.families):
            family = self.families[name]
            family.series = {labels: s for labels, s in family.series.items() if s.updated >= oldest}
            if not family.series:
                del self.families[name]
        self.targets = {key: value for key, value in self.targets.items() if value[1] >= oldest}

    def _resource_labels(self, resource: Mapping[str, object]) -> Labels:
        return tuple(
            (label_name(key), label_value(value)) for key, value in sorted(resource.items()) if label_name(key)
        )

    def _add_metric(self, metric: Metric, context: Labels, now: float) -> None:
        kind, points, temporality = _kind_and_points(metric)
        if kind is None:
            return
        if kind is Kind.NON_MONOTONIC_SUM and temporality == DELTA:
            return  # a delta of an up-down counter has nothing to add up to
        if kind in (Kind.COUNTER, Kind.NON_MONOTONIC_SUM) and temporality not in (DELTA, CUMULATIVE):
            return
        name = metric_name(metric.name, metric.unit, kind, self._naming.namespace, self._naming.add_metric_suffixes)
        if not name:
            return
        family = self.families.get(name)
        if family is None:
            if len(self.families) >= MAX_METRIC_NAMES:
                for _ in points:
                    self._on_dropped(OVER_MAX_METRIC_NAMES)
                return
            family = self.families[name] = Family(name, kind, metric.description)
        elif family.kind.type_name != kind.type_name:
            for _ in points:
                self._on_dropped(name)  # two types under one name: the first one seen keeps it
            return
        for point in points:
            labels = self._labels(point.attributes, context)
            if point.flags & NO_RECORDED_VALUE:
                family.series.pop(labels, None)
                continue
            old = family.series.get(labels)
            if old is None and len(family.series) >= self._max_series:
                self._on_dropped(name)
                continue
            new = _merged(kind, point, temporality, old, labels, now)
            if new is not None:
                family.series[labels] = new

    def _labels(self, attributes: Iterable[KeyValue], context: Labels) -> Labels:
        """The series' labels, sorted by name; values of attributes that name one label are joined with ``;``."""
        by_name: dict[str, list[tuple[str, str]]] = {}
        for pair in attributes:
            name = label_name(pair.key)
            if name:
                by_name.setdefault(name, []).append((pair.key, label_value(any_value(pair.value))))
        labels = {name: ";".join(value for _, value in sorted(values)) for name, values in by_name.items()}
        for name, value in (*context, *self._naming.const_labels.items()):
            labels.setdefault(name, value)
        return tuple(sorted(labels.items()))


def _kind_and_points(metric: Metric) -> tuple[Kind | None, list[Point], int]:
    data = metric.WhichOneof("data")
    if data == "gauge":
        return Kind.GAUGE, list(metric.gauge.data_points), CUMULATIVE
    if data == "sum":
        kind = Kind.COUNTER if metric.sum.is_monotonic else Kind.NON_MONOTONIC_SUM
        return kind, list(metric.sum.data_points), metric.sum.aggregation_temporality
    if data == "histogram":
        return Kind.HISTOGRAM, list(metric.histogram.data_points), metric.histogram.aggregation_temporality
    if data == "exponential_histogram":
        histogram = metric.exponential_histogram
        return Kind.EXPONENTIAL_HISTOGRAM, list(histogram.data_points), histogram.aggregation_temporality
    if data == "summary":
        return Kind.SUMMARY, list(metric.summary.data_points), CUMULATIVE
    return None, [], 0


def _merged(
    kind: Kind, point: Point, temporality: int, old: Series | None, labels: Labels, now: float
) -> Series | None:
    """The series after ``point``: None when the point is dropped (older than the series, or misaligned)."""
    new = _series_of(kind, point, labels, now)
    if old is None:
        return new
    if temporality != DELTA or kind in (Kind.GAUGE, Kind.SUMMARY):
        return new if point.time_unix_nano >= old.time else None
    if point.start_time_unix_nano != old.time:
        # Not where the last delta ended: a later start is a restart of the sender, an earlier one a stray.
        return new if point.start_time_unix_nano > old.time else None
    new.start = old.start
    if kind is Kind.COUNTER:
        new.value += old.value
        return new
    new.count += old.count
    new.total += old.total
    if kind is Kind.HISTOGRAM and new.bounds == old.bounds:
        new.bucket_counts = tuple(a + b for a, b in zip(new.bucket_counts, old.bucket_counts, strict=True))
    return new


def _series_of(kind: Kind, point: Point, labels: Labels, now: float) -> Series:
    series = Series(labels, point.start_time_unix_nano, point.time_unix_nano, now)
    if isinstance(point, NumberDataPoint):
        series.value = float(point.as_int) if point.WhichOneof("value") == "as_int" else point.as_double
    elif isinstance(point, HistogramDataPoint):
        series.count, series.total = point.count, point.sum
        series.bounds = tuple(point.explicit_bounds)
        counts = list(point.bucket_counts)
        # A point without buckets (or with too few) counts everything above the bounds it has.
        counts += [0] * (len(series.bounds) + 1 - len(counts))
        series.bucket_counts = tuple(counts[: len(series.bounds)]) + (point.count - sum(counts[: len(series.bounds)]),)
    elif isinstance(point, ExponentialHistogramDataPoint):
        series.count, series.total = point.count, point.sum
    else:
        series.count, series.total = point.count, point.sum
        series.quantiles = tuple((q.quantile, q.value) for q in point.quantile_values)
    return series


def _target_labels(resource: Mapping[str, object]) -> Labels:
    """target_info's labels for a resource: none without a job or instance (as the Collector's exporter)."""
    job_instance = _job_instance_of(resource)
    if not job_instance:
        return ()
    labels: dict[str, str] = {}
    for key, value in resource.items():
        if key in (SERVICE_NAME, SERVICE_NAMESPACE, SERVICE_INSTANCE_ID):
            continue
        name = label_name(key)
        if name:
            text = label_value(value)
            labels[name] = f"{labels[name]};{text}" if name in labels else text
    labels.update(job_instance)
    return tuple(sorted(labels.items()))


def _job_instance_of(resource: Mapping[str, object]) -> dict[str, str]:
    labels = {}
    service = resource.get(SERVICE_NAME)
    if isinstance(service, str) and service:
        namespace = resource.get(SERVICE_NAMESPACE)
        labels[JOB] = f"{namespace}/{service}" if isinstance(namespace, str) and namespace else service
    instance = resource.get(SERVICE_INSTANCE_ID)
    if isinstance(instance, str) and instance:
        labels[INSTANCE] = instance
    return labels


def _job_instance(target: Labels) -> Labels:
    return tuple((name, value) for name, value in target if name in (JOB, INSTANCE))
