"""Log records and metric points of every kind, and what otel_logs and otel_metrics_* must hold for them.

Shared by the store's own tests (batches handed to ClickHouseStore) and the end-to-end ones
(the same records and points sent by the SDK's OTLP exporters to a running collector), so
both check every field the same way. Records and points are made by the OpenTelemetry SDK
(its Logger, its MeterProvider) where it can make them, else built as protobuf.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from opentelemetry import trace
from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.proto.logs.v1.logs_pb2 import LogsData
from opentelemetry.proto.metrics.v1.metrics_pb2 import AggregationTemporality, MetricsData
from opentelemetry.sdk._logs import LoggerProvider, ReadableLogRecord
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import Counter, Histogram, MeterProvider, UpDownCounter
from opentelemetry.sdk.metrics._internal.exemplar import AlwaysOnExemplarFilter
from opentelemetry.sdk.metrics.export import AggregationTemporality as SdkTemporality
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.metrics.export import MetricsData as SdkMetricsData
from opentelemetry.sdk.metrics.view import (
    ExplicitBucketHistogramAggregation,
    ExponentialBucketHistogramAggregation,
    View,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

TRACE_ID = 0x0AF7651916CD43DD8448EB211C80319C
SPAN_ID = 0xB7AD6B7169203331
RESOURCE = Resource.create({"service.name": "checkout", "deployment.environment.name": "test"})
NANOS = 1_700_000_000_123_456_789
# The SDK-made metrics are checkout's; the protobuf-made ones legacy's: both can share one store.
SDK_SERVICE = "checkout"
PROTOBUF_SERVICE = "legacy"
BODIES: list[Any] = ["plain text", 42, 2.5, True, b"\x00\xff", ["a", 1, False], {"b": 1, "a": {"c": "d"}}]
SDK_METRIC_POINTS = 5  # sums 2, gauge 1, histogram 1, exponential histogram 1
PROTOBUF_METRIC_POINTS = 3  # summary, gauge, exponential histogram

# Rows of a query on the store, as dicts by column name.
RowsOf = Callable[[str], list[dict[str, Any]]]


def in_span() -> Any:
    """A context whose current span is TRACE_ID/SPAN_ID, sampled."""
    span_context = SpanContext(TRACE_ID, SPAN_ID, is_remote=False, trace_flags=TraceFlags(TraceFlags.SAMPLED))
    return trace.set_span_in_context(NonRecordingSpan(span_context))


def every_kind_of_log_record() -> list[dict[str, Any]]:
    """Logger.emit arguments: a body of each AnyValue kind in a span, then one with only an observed time."""
    records: list[dict[str, Any]] = [
        {
            "timestamp": NANOS + i,
            "observed_timestamp": NANOS + 1000 + i,
            "severity_number": SeverityNumber.ERROR if i == 0 else SeverityNumber.INFO,
            "severity_text": "ERROR" if i == 0 else "INFO",
            "body": body,
            "attributes": {"index": i, "ratio": 0.1, "tags": ["x", "y"]},
            "event_name": "gen_ai.client.inference.operation.details" if i == 0 else None,
            "context": in_span(),
        }
        for i, body in enumerate(BODIES)
    ]
    # No time of its own: stored at its observed time. No span: empty ids and flags.
    records.append({"observed_timestamp": NANOS + 5000, "body": "observed only"})
    return records


def sdk_log_records(emit: list[dict[str, Any]]) -> list[ReadableLogRecord]:
    """Log records emitted through the SDK's Logger, as its exporters get them."""
    exporter = InMemoryLogRecordExporter()
    provider = LoggerProvider(resource=RESOURCE)
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    logger = provider.get_logger("shop.logs", "1.2.3", attributes={"scope.key": "scope-value"})
    for kwargs in emit:
        logger.emit(**kwargs)
    provider.shutdown()
    return list(exporter.get_finished_logs())


def sdk_logs(emit: list[dict[str, Any]]) -> LogsData:
    """``sdk_log_records`` encoded by the OTLP exporters' encoder."""
    return LogsData.FromString(encode_logs(sdk_log_records(emit)).SerializeToString())


def check_every_kind_of_log_record(rows_of: RowsOf) -> None:
    """otel_logs holds every_kind_of_log_record field by field, as the contrib exporter stores them."""
    rows = rows_of(
        "SELECT toUnixTimestamp64Nano(Timestamp) AS ns, TraceId, SpanId, TraceFlags, SeverityText, SeverityNumber, "
        "ServiceName, Body, ResourceAttributes, ScopeName, ScopeVersion, ScopeAttributes, LogAttributes, EventName, "
        "`__otel_materialized_deployment.environment.name` AS env FROM otel_logs ORDER BY ns",
    )
    assert [row["Body"] for row in rows] == [
        "plain text",
        "42",
        "2.5",
        "true",
        "AP8=",
        '["a",1,false]',
        '{"a":{"c":"d"},"b":1}',
        "observed only",
    ]
    assert [row["ns"] for row in rows] == [NANOS + i for i in range(len(BODIES))] + [NANOS + 5000]
    first, last = rows[0], rows[-1]
    assert first["TraceId"] == f"{TRACE_ID:032x}" and first["SpanId"] == f"{SPAN_ID:016x}"
    assert (first["TraceFlags"], first["SeverityText"], first["SeverityNumber"]) == (1, "ERROR", 17)
    assert (rows[1]["SeverityText"], rows[1]["SeverityNumber"]) == ("INFO", 9)
    assert first["ServiceName"] == "checkout" and first["env"] == "test"
    assert first["ResourceAttributes"]["service.name"] == "checkout"
    assert (first["ScopeName"], first["ScopeVersion"], first["ScopeAttributes"]) == (
        "shop.logs",
        "1.2.3",
        {"scope.key": "scope-value"},
    )
    assert first["LogAttributes"] == {"index": "0", "ratio": "0.1", "tags": '["x","y"]'}
    assert first["EventName"] == "gen_ai.client.inference.operation.details" and rows[1]["EventName"] == ""
    assert (last["TraceId"], last["SpanId"], last["TraceFlags"], last["SeverityNumber"]) == ("", "", 0, 0)


def sdk_metrics_data(temporality: SdkTemporality) -> SdkMetricsData:
    """A counter, an up-down counter, a gauge, an explicit and an exponential histogram, recorded in a span,
    as the SDK's exporters get them."""
    temporalities = {kind: temporality for kind in (Counter, UpDownCounter, Histogram)}
    reader = InMemoryMetricReader(preferred_temporality=temporalities)
    provider = MeterProvider(
        resource=RESOURCE,
        metric_readers=[reader],
        exemplar_filter=AlwaysOnExemplarFilter(),
        views=[
            View(instrument_name="latency", aggregation=ExplicitBucketHistogramAggregation((0.1, 1.0, 10.0))),
            View(instrument_name="sizes", aggregation=ExponentialBucketHistogramAggregation(max_size=20)),
        ],
    )
    meter = provider.get_meter("shop.metrics", "0.9")
    context = in_span()
    meter.create_counter("requests", unit="1", description="served").add(3, {"route": "/a"}, context=context)
    meter.create_up_down_counter("queue.depth").add(-2, {"queue": "q"}, context=context)
    meter.create_gauge("temperature").set(21.5, {"room": "lab"}, context=context)
    latency = meter.create_histogram("latency", unit="s")
    for value in (0.05, 0.5, 5.0, 50.0):
        latency.record(value, {"route": "/a"}, context=context)
    sizes = meter.create_histogram("sizes")
    for value in (1.0, 2.0, 4.0, 0.0):  # the SDK keeps no negative values: see summary_and_int_gauge
        sizes.record(value, context=context)
    data = reader.get_metrics_data()
    assert data is not None
    provider.shutdown()
    return data


def sdk_metrics(temporality: SdkTemporality) -> MetricsData:
    """``sdk_metrics_data`` encoded by the OTLP exporters' encoder."""
    return MetricsData.FromString(encode_metrics(sdk_metrics_data(temporality)).SerializeToString())


def stored_temporality(temporality: SdkTemporality) -> int:
    """The AggregationTemporality column's value for points the SDK made with ``temporality``."""
    if temporality == SdkTemporality.DELTA:
        return AggregationTemporality.AGGREGATION_TEMPORALITY_DELTA
    return AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE


def check_sdk_metrics(rows_of: RowsOf, temporality: SdkTemporality, metrics: MetricsData) -> None:
    """The otel_metrics_* tables hold ``metrics`` (sdk_metrics) point by point, as the contrib exporter stores them."""
    stored = stored_temporality(temporality)
    mine = f"ServiceName = '{SDK_SERVICE}'"
    sums = rows_of(
        "SELECT MetricName, MetricDescription, MetricUnit, ServiceName, ScopeName, ScopeVersion, Attributes, Value, "
        "AggregationTemporality, IsMonotonic, Exemplars.Value, Exemplars.TraceId, Exemplars.SpanId, "
        "Exemplars.FilteredAttributes, toUnixTimestamp(TimeUnix) >= toUnixTimestamp(StartTimeUnix) AS ordered "
        f"FROM otel_metrics_sum WHERE {mine} ORDER BY MetricName",
    )
    assert [(r["MetricName"], r["Value"], r["IsMonotonic"]) for r in sums] == [
        ("queue.depth", -2.0, False),
        ("requests", 3.0, True),
    ]
    requests = sums[1]
    assert (requests["MetricDescription"], requests["MetricUnit"], requests["Attributes"]) == (
        "served",
        "1",
        {"route": "/a"},
    )
    assert (requests["ServiceName"], requests["ScopeName"], requests["ScopeVersion"]) == (
        "checkout",
        "shop.metrics",
        "0.9",
    )
    assert {r["AggregationTemporality"] for r in sums} == {stored} and all(r["ordered"] for r in sums)
    assert requests["Exemplars.Value"] == [3.0]
    assert requests["Exemplars.TraceId"] == [f"{TRACE_ID:032x}"] and requests["Exemplars.SpanId"] == [f"{SPAN_ID:016x}"]
    # The exemplar's own attributes are those the view did not keep: none here.
    assert requests["Exemplars.FilteredAttributes"] == [{}]

    gauge = rows_of(
        f"SELECT MetricName, Value, Attributes, length(Exemplars.Value) AS n FROM otel_metrics_gauge WHERE {mine}"
    )
    assert gauge == [{"MetricName": "temperature", "Value": 21.5, "Attributes": {"room": "lab"}, "n": 1}]

    histogram = rows_of(
        "SELECT Count, Sum, Min, Max, BucketCounts, ExplicitBounds, AggregationTemporality, "
        f"length(Exemplars.Value) AS n FROM otel_metrics_histogram WHERE {mine}",
    )
    assert histogram == [
        {
            "Count": 4,
            "Sum": 55.55,
            "Min": 0.05,
            "Max": 50.0,
            "BucketCounts": [1, 1, 1, 1],
            "ExplicitBounds": [0.1, 1.0, 10.0],
            "AggregationTemporality": stored,
            "n": 4,
        }
    ]

    exponential = rows_of(
        "SELECT Count, Sum, Min, Max, Scale, ZeroCount, PositiveOffset, PositiveBucketCounts, NegativeOffset, "
        f"NegativeBucketCounts FROM otel_metrics_exponential_histogram WHERE {mine}",
    )
    point = metrics.resource_metrics[0].scope_metrics[0].metrics[-1].exponential_histogram.data_points[0]
    assert exponential == [
        {
            "Count": 4,
            "Sum": 7.0,
            "Min": 0.0,
            "Max": 4.0,
            "Scale": point.scale,
            "ZeroCount": 1,
            "PositiveOffset": point.positive.offset,
            "PositiveBucketCounts": list(point.positive.bucket_counts),
            "NegativeOffset": point.negative.offset,
            "NegativeBucketCounts": list(point.negative.bucket_counts),
        }
    ]
    assert sum(point.positive.bucket_counts) == 3  # three positive values over the buckets the SDK chose


def summary_and_int_gauge() -> MetricsData:
    """What the Python SDK cannot make: a summary with quantiles, an integer gauge, flags, exemplars without ids,
    an exponential histogram with negative buckets."""
    metrics = MetricsData()
    resource_metrics = metrics.resource_metrics.add(schema_url="https://opentelemetry.io/schemas/1.30.0")
    resource_metrics.resource.attributes.add(key="service.name").value.string_value = PROTOBUF_SERVICE
    scope_metrics = resource_metrics.scope_metrics.add(schema_url="https://scope/schema")
    scope_metrics.scope.name, scope_metrics.scope.dropped_attributes_count = "proto", 2
    summary = scope_metrics.metrics.add(name="rpc.duration", unit="ms").summary.data_points.add(
        start_time_unix_nano=NANOS - 10_000_000_000, time_unix_nano=NANOS, count=10, sum=123.5, flags=1
    )
    summary.attributes.add(key="method").value.string_value = "Get"
    summary.quantile_values.add(quantile=0.5, value=10.0)
    summary.quantile_values.add(quantile=0.99, value=42.25)
    gauge = scope_metrics.metrics.add(name="threads").gauge.data_points.add(time_unix_nano=NANOS, as_int=7)
    gauge.exemplars.add(time_unix_nano=NANOS - 2_000_000_000, as_int=5).filtered_attributes.add(
        key="thread"
    ).value.int_value = 3
    scope_metrics.metrics.add(name="empty")  # no data: no row
    exponential = scope_metrics.metrics.add(name="signed").exponential_histogram
    exponential.aggregation_temporality = AggregationTemporality.AGGREGATION_TEMPORALITY_DELTA
    point = exponential.data_points.add(time_unix_nano=NANOS, count=6, sum=-1.5, scale=-2, zero_count=1)
    point.positive.offset, point.negative.offset = 3, -4
    point.positive.bucket_counts.extend([2, 0, 1])
    point.negative.bucket_counts.extend([2])
    return metrics


def check_summary_and_int_gauge(rows_of: RowsOf) -> None:
    """The otel_metrics_* tables hold summary_and_int_gauge point by point."""
    mine = f"ServiceName = '{PROTOBUF_SERVICE}'"
    summary = rows_of(
        "SELECT MetricName, MetricUnit, ServiceName, ResourceSchemaUrl, ScopeSchemaUrl, ScopeDroppedAttrCount, "
        "Attributes, toUnixTimestamp(StartTimeUnix) AS start, toUnixTimestamp(TimeUnix) AS time, Count, Sum, Flags, "
        "ValueAtQuantiles.Quantile AS q, ValueAtQuantiles.Value AS v FROM otel_metrics_summary",
    )
    assert summary == [
        {
            "MetricName": "rpc.duration",
            "MetricUnit": "ms",
            "ServiceName": PROTOBUF_SERVICE,
            "ResourceSchemaUrl": "https://opentelemetry.io/schemas/1.30.0",
            "ScopeSchemaUrl": "https://scope/schema",
            "ScopeDroppedAttrCount": 2,
            "Attributes": {"method": "Get"},
            "start": NANOS // 1_000_000_000 - 10,
            "time": NANOS // 1_000_000_000,
            "Count": 10,
            "Sum": 123.5,
            "Flags": 1,
            "q": [0.5, 0.99],
            "v": [10.0, 42.25],
        }
    ]
    gauge = rows_of(
        "SELECT Value, toUnixTimestamp(StartTimeUnix) AS start, Exemplars.Value AS ev, "
        "arrayMap(t -> toUnixTimestamp(t), Exemplars.TimeUnix) AS et, Exemplars.FilteredAttributes AS ea, "
        f"Exemplars.TraceId AS et_id, Exemplars.SpanId AS es_id FROM otel_metrics_gauge WHERE {mine}",
    )
    assert gauge == [
        {
            "Value": 7.0,
            "start": 0,
            "ev": [5.0],
            "et": [NANOS // 1_000_000_000 - 2],
            "ea": [{"thread": "3"}],
            "et_id": ["0" * 32],
            "es_id": ["0" * 16],
        }
    ]
    assert rows_of(f"SELECT count() AS n FROM otel_metrics_sum WHERE {mine}") == [{"n": 0}]
    signed = rows_of(
        "SELECT Count, Sum, Min, Max, Scale, ZeroCount, PositiveOffset, PositiveBucketCounts, NegativeOffset, "
        "NegativeBucketCounts, AggregationTemporality, Exemplars.Value AS ev FROM otel_metrics_exponential_histogram "
        f"WHERE {mine}",
    )
    assert signed == [
        {
            "Count": 6,
            "Sum": -1.5,
            "Min": 0.0,  # absent: 0, as pdata's Min() returns
            "Max": 0.0,
            "Scale": -2,
            "ZeroCount": 1,
            "PositiveOffset": 3,
            "PositiveBucketCounts": [2, 0, 1],
            "NegativeOffset": -4,
            "NegativeBucketCounts": [2],
            "AggregationTemporality": AggregationTemporality.AGGREGATION_TEMPORALITY_DELTA,
            "ev": [],
        }
    ]
