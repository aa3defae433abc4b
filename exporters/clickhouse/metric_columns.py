"""Walk OTLP metrics into the columns of the ``otel_metrics_*`` tables, one table per point type.

As the contrib exporter fills them: one row per data point; a number point's
value (integer or double) as a Float64; times in whole seconds (the columns are
``DateTime``); absent optional fields (a histogram's sum, min, max) as 0;
exemplars as the Nested ``Exemplars`` columns with their filtered attributes
and their trace and span IDs in hex (all zeros when absent, as pdata prints
them). Attribute values are rendered by exporters.clickhouse.rendering.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import pyarrow as pa
from opentelemetry.proto.metrics.v1.metrics_pb2 import (
    Exemplar,
    ExponentialHistogram,
    ExponentialHistogramDataPoint,
    Gauge,
    Histogram,
    HistogramDataPoint,
    Metric,
    MetricsData,
    NumberDataPoint,
    Sum,
    Summary,
    SummaryDataPoint,
)

from exporters.clickhouse.rendering import (
    SPAN_ID_BYTES,
    TRACE_ID_BYTES,
    ListBuilder,
    MapBuilder,
    id_hex_fixed,
    resource_columns,
)
from exporters.clickhouse.signal_schema import METRIC_KINDS, MetricKind

AnyPoint = NumberDataPoint | HistogramDataPoint | ExponentialHistogramDataPoint | SummaryDataPoint
MetricData = Gauge | Sum | Histogram | ExponentialHistogram | Summary


def data_point_count(metrics: MetricsData) -> int:
    """How many data points ``metrics`` holds, over every metric type."""
    total = 0
    for resource_metrics in metrics.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                kind = metric.WhichOneof("data")
                if kind is not None:
                    total += len(getattr(metric, kind).data_points)
    return total


def _number(point: NumberDataPoint | Exemplar) -> float:
    """An integer or double value as the Float64 the tables store; an empty one is 0."""
    return float(point.as_int) if point.WhichOneof("value") == "as_int" else point.as_double


def _seconds(nanos: list[int]) -> pa.Array:
    """Unix nanoseconds as a ``DateTime`` column's whole seconds (truncated, as the Go client does)."""
    return pa.array(nanos, pa.timestamp("ns")).cast(pa.timestamp("s"), safe=False)


class _Scope:
    """What every row of one resource and scope repeats."""

    __slots__ = (
        "resource_keys",
        "resource_values",
        "service",
        "resource_url",
        "scope_keys",
        "scope_values",
        "scope_name",
        "scope_version",
        "dropped",
        "scope_url",
    )

    def __init__(self, resource_keys: list[str], resource_values: list[str], service: str, resource_url: str) -> None:
        self.resource_keys, self.resource_values, self.service = resource_keys, resource_values, service
        self.resource_url = resource_url
        self.scope_keys: list[str] = []
        self.scope_values: list[str] = []
        self.scope_name = self.scope_version = self.scope_url = ""
        self.dropped = 0


class _PointTable:
    """The columns every metric table has (resource, scope, metric, point attributes and times, flags).

    Point types add their own columns in subclasses through ``point`` and ``point_columns``.
    """

    def __init__(self, rendered: dict[bytes, str]) -> None:
        self.rendered = rendered
        self.resource_attributes = MapBuilder(rendered)
        self.resource_schema_url: list[str] = []
        self.scope_name: list[str] = []
        self.scope_version: list[str] = []
        self.scope_attributes = MapBuilder(rendered)
        self.scope_dropped: list[int] = []
        self.scope_schema_url: list[str] = []
        self.service_name: list[str] = []
        self.metric_name: list[str] = []
        self.metric_description: list[str] = []
        self.metric_unit: list[str] = []
        self.attributes = MapBuilder(rendered)
        self.start_time: list[int] = []
        self.time: list[int] = []
        self.flags: list[int] = []

    @property
    def rows(self) -> int:
        return len(self.time)

    def add(self, scope: _Scope, metric: Metric, data: MetricData, points: Sequence[AnyPoint]) -> None:
        """One row per point of ``metric`` (whose ``data`` is its gauge, sum, histogram... message)."""
        name, description, unit = metric.name, metric.description, metric.unit
        for point in points:
            self.resource_attributes.add_flat(scope.resource_keys, scope.resource_values)
            self.resource_schema_url.append(scope.resource_url)
            self.scope_name.append(scope.scope_name)
            self.scope_version.append(scope.scope_version)
            self.scope_attributes.add_flat(scope.scope_keys, scope.scope_values)
            self.scope_dropped.append(scope.dropped)
            self.scope_schema_url.append(scope.scope_url)
            self.service_name.append(scope.service)
            self.metric_name.append(name)
            self.metric_description.append(description)
            self.metric_unit.append(unit)
            self.attributes.add(point.attributes)
            self.start_time.append(point.start_time_unix_nano)
            self.time.append(point.time_unix_nano)
            self.flags.append(point.flags)
            self.point(data, point)

    def point(self, data: MetricData, point: AnyPoint) -> None:
        """Append the point type's own columns."""
        raise NotImplementedError

    def point_columns(self) -> dict[str, pa.Array]:
        """The point type's own columns, by name."""
        raise NotImplementedError

    def build(self) -> pa.Table:
        text = pa.string()
        columns = {
            "ResourceAttributes": self.resource_attributes.build(),
            "ResourceSchemaUrl": pa.array(self.resource_schema_url, text),
            "ScopeName": pa.array(self.scope_name, text),
            "ScopeVersion": pa.array(self.scope_version, text),
            "ScopeAttributes": self.scope_attributes.build(),
            "ScopeDroppedAttrCount": pa.array(self.scope_dropped, pa.uint32()),
            "ScopeSchemaUrl": pa.array(self.scope_schema_url, text),
            "ServiceName": pa.array(self.service_name, text),
            "MetricName": pa.array(self.metric_name, text),
            "MetricDescription": pa.array(self.metric_description, text),
            "MetricUnit": pa.array(self.metric_unit, text),
            "Attributes": self.attributes.build(),
            "StartTimeUnix": _seconds(self.start_time),
            "TimeUnix": _seconds(self.time),
            "Flags": pa.array(self.flags, pa.uint32()),
            **self.point_columns(),
        }
        return pa.Table.from_arrays(list(columns.values()), names=list(columns))


class _WithExemplars(_PointTable):
    """A point table with the Nested ``Exemplars`` columns (every type but the summary)."""

    def __init__(self, rendered: dict[bytes, str]) -> None:
        super().__init__(rendered)
        self.exemplars = ListBuilder()
        self.exemplar_attributes = MapBuilder(rendered)
        self.exemplar_time: list[int] = []
        self.exemplar_value: list[float] = []
        self.exemplar_span_id: list[str] = []
        self.exemplar_trace_id: list[str] = []

    def add_exemplars(self, exemplars: Iterable[Exemplar]) -> None:
        for exemplar in exemplars:
            self.exemplar_attributes.add(exemplar.filtered_attributes)
            self.exemplar_time.append(exemplar.time_unix_nano)
            self.exemplar_value.append(_number(exemplar))
            self.exemplar_span_id.append(id_hex_fixed(exemplar.span_id, SPAN_ID_BYTES))
            self.exemplar_trace_id.append(id_hex_fixed(exemplar.trace_id, TRACE_ID_BYTES))
        self.exemplars.offsets.append(len(self.exemplar_time))

    def exemplar_columns(self) -> dict[str, pa.Array]:
        wrap, text = self.exemplars.wrap, pa.string()
        return {
            "Exemplars.FilteredAttributes": wrap(self.exemplar_attributes.build()),
            "Exemplars.TimeUnix": wrap(_seconds(self.exemplar_time)),
            "Exemplars.Value": wrap(pa.array(self.exemplar_value, pa.float64())),
            "Exemplars.SpanId": wrap(pa.array(self.exemplar_span_id, text)),
            "Exemplars.TraceId": wrap(pa.array(self.exemplar_trace_id, text)),
        }


class _GaugeTable(_WithExemplars):
    def __init__(self, rendered: dict[bytes, str]) -> None:
        super().__init__(rendered)
        self.value: list[float] = []

    def point(self, data: MetricData, point: AnyPoint) -> None:
        assert isinstance(point, NumberDataPoint)
        self.value.append(_number(point))
        self.add_exemplars(point.exemplars)

    def point_columns(self) -> dict[str, pa.Array]:
        return {"Value": pa.array(self.value, pa.float64()), **self.exemplar_columns()}


class _SumTable(_GaugeTable):
    def __init__(self, rendered: dict[bytes, str]) -> None:
        super().__init__(rendered)
        self.temporality: list[int] = []
        self.monotonic: list[bool] = []

    def point(self, data: MetricData, point: AnyPoint) -> None:
        assert isinstance(data, Sum)
        super().point(data, point)
        self.temporality.append(data.aggregation_temporality)
        self.monotonic.append(data.is_monotonic)

    def point_columns(self) -> dict[str, pa.Array]:
        return {
            **super().point_columns(),
            "AggregationTemporality": pa.array(self.temporality, pa.int32()),
            "IsMonotonic": pa.array(self.monotonic, pa.bool_()),
        }


class _DistributionTable(_WithExemplars):
    """What histograms of both kinds share: count, sum, min, max, temporality."""

    def __init__(self, rendered: dict[bytes, str]) -> None:
        super().__init__(rendered)
        self.count: list[int] = []
        self.sum: list[float] = []
        self.min: list[float] = []
        self.max: list[float] = []
        self.temporality: list[int] = []

    def distribution(
        self, data: Histogram | ExponentialHistogram, point: HistogramDataPoint | ExponentialHistogramDataPoint
    ) -> None:
        self.count.append(point.count)
        self.sum.append(point.sum)
        self.min.append(point.min)
        self.max.append(point.max)
        self.temporality.append(data.aggregation_temporality)
        self.add_exemplars(point.exemplars)

    def distribution_columns(self) -> dict[str, pa.Array]:
        return {
            "Count": pa.array(self.count, pa.uint64()),
            "Sum": pa.array(self.sum, pa.float64()),
            **self.exemplar_columns(),
            "Min": pa.array(self.min, pa.float64()),
            "Max": pa.array(self.max, pa.float64()),
            "AggregationTemporality": pa.array(self.temporality, pa.int32()),
        }


def _uint64_lists(offsets: ListBuilder, values: list[int]) -> pa.ListArray:
    return offsets.wrap(pa.array(values, pa.uint64()))


class _HistogramTable(_DistributionTable):
    def __init__(self, rendered: dict[bytes, str]) -> None:
        super().__init__(rendered)
        self.buckets = ListBuilder()
        self.bucket_counts: list[int] = []
        self.bounds = ListBuilder()
        self.explicit_bounds: list[float] = []

    def point(self, data: MetricData, point: AnyPoint) -> None:
        assert isinstance(data, Histogram) and isinstance(point, HistogramDataPoint)
        self.bucket_counts.extend(point.bucket_counts)
        self.buckets.offsets.append(len(self.bucket_counts))
        self.explicit_bounds.extend(point.explicit_bounds)
        self.bounds.offsets.append(len(self.explicit_bounds))
        self.distribution(data, point)

    def point_columns(self) -> dict[str, pa.Array]:
        return {
            "BucketCounts": _uint64_lists(self.buckets, self.bucket_counts),
            "ExplicitBounds": self.bounds.wrap(pa.array(self.explicit_bounds, pa.float64())),
            **self.distribution_columns(),
        }


class _ExponentialHistogramTable(_DistributionTable):
    def __init__(self, rendered: dict[bytes, str]) -> None:
        super().__init__(rendered)
        self.scale: list[int] = []
        self.zero_count: list[int] = []
        self.positive_offset: list[int] = []
        self.negative_offset: list[int] = []
        self.positive = ListBuilder()
        self.positive_counts: list[int] = []
        self.negative = ListBuilder()
        self.negative_counts: list[int] = []

    def point(self, data: MetricData, point: AnyPoint) -> None:
        assert isinstance(data, ExponentialHistogram) and isinstance(point, ExponentialHistogramDataPoint)
        self.scale.append(point.scale)
        self.zero_count.append(point.zero_count)
        self.positive_offset.append(point.positive.offset)
        self.positive_counts.extend(point.positive.bucket_counts)
        self.positive.offsets.append(len(self.positive_counts))
        self.negative_offset.append(point.negative.offset)
        self.negative_counts.extend(point.negative.bucket_counts)
        self.negative.offsets.append(len(self.negative_counts))
        self.distribution(data, point)

    def point_columns(self) -> dict[str, pa.Array]:
        return {
            "Scale": pa.array(self.scale, pa.int32()),
            "ZeroCount": pa.array(self.zero_count, pa.uint64()),
            "PositiveOffset": pa.array(self.positive_offset, pa.int32()),
            "PositiveBucketCounts": _uint64_lists(self.positive, self.positive_counts),
            "NegativeOffset": pa.array(self.negative_offset, pa.int32()),
            "NegativeBucketCounts": _uint64_lists(self.negative, self.negative_counts),
            **self.distribution_columns(),
        }


class _SummaryTable(_PointTable):
    def __init__(self, rendered: dict[bytes, str]) -> None:
        super().__init__(rendered)
        self.count: list[int] = []
        self.sum: list[float] = []
        self.quantiles = ListBuilder()
        self.quantile: list[float] = []
        self.quantile_value: list[float] = []

    def point(self, data: MetricData, point: AnyPoint) -> None:
        assert isinstance(point, SummaryDataPoint)
        self.count.append(point.count)
        self.sum.append(point.sum)
        for value_at_quantile in point.quantile_values:
            self.quantile.append(value_at_quantile.quantile)
            self.quantile_value.append(value_at_quantile.value)
        self.quantiles.offsets.append(len(self.quantile))

    def point_columns(self) -> dict[str, pa.Array]:
        return {
            "Count": pa.array(self.count, pa.uint64()),
            "Sum": pa.array(self.sum, pa.float64()),
            "ValueAtQuantiles.Quantile": self.quantiles.wrap(pa.array(self.quantile, pa.float64())),
            "ValueAtQuantiles.Value": self.quantiles.wrap(pa.array(self.quantile_value, pa.float64())),
        }


_TABLE_TYPES: dict[MetricKind, type[_PointTable]] = {
    "gauge": _GaugeTable,
    "sum": _SumTable,
    "histogram": _HistogramTable,
    "exponential_histogram": _ExponentialHistogramTable,
    "summary": _SummaryTable,
}


def metrics_to_tables(batches: Iterable[MetricsData]) -> dict[MetricKind, pa.Table]:
    """Every data point of ``batches`` as Arrow tables, one per metric type that has points, in METRIC_KINDS order."""
    rendered: dict[bytes, str] = {}
    tables: dict[str, _PointTable] = {kind: _TABLE_TYPES[kind](rendered) for kind in METRIC_KINDS}
    for metrics in batches:
        for resource_metrics in metrics.resource_metrics:
            keys, values, service = resource_columns(resource_metrics.resource.attributes)
            for scope_metrics in resource_metrics.scope_metrics:
                scope = _Scope(keys, values, service, resource_metrics.schema_url)
                instrumentation = scope_metrics.scope
                scope.scope_keys, scope.scope_values, _ = resource_columns(instrumentation.attributes)
                scope.scope_name, scope.scope_version = instrumentation.name, instrumentation.version
                scope.dropped, scope.scope_url = instrumentation.dropped_attributes_count, scope_metrics.schema_url
                for metric in scope_metrics.metrics:
                    kind = metric.WhichOneof("data")
                    if kind is None:  # a metric without data has no rows
                        continue
                    data = getattr(metric, kind)
                    tables[kind].add(scope, metric, data, data.data_points)
    return {kind: tables[kind].build() for kind in METRIC_KINDS if tables[kind].rows}
