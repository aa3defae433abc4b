"""Hypothesis strategies for OTLP inputs: valid TracesData, LogsData and MetricsData, their two encodings, and
mutations of bytes and JSON."""

from __future__ import annotations

import base64
import json
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import Message
from hypothesis import strategies as st
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogsData, SeverityNumber
from opentelemetry.proto.metrics.v1.metrics_pb2 import AggregationTemporality, Exemplar, MetricsData, NumberDataPoint
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status, TracesData

from collector.signals import Signal

MAX_SPANS = 4
MAX_RECORDS = 4
MAX_METRICS = 3
MAX_POINTS = 3
MAX_BUCKETS = 4
MAX_ATTRIBUTES = 4
ID_KEYS = ("traceId", "spanId", "parentSpanId")

_keys = st.text(min_size=1, max_size=12)
_uint64 = st.integers(min_value=0, max_value=2**64 - 1)
_scalar_values = st.one_of(
    st.builds(lambda v: AnyValue(string_value=v), st.text(max_size=20)),
    st.builds(lambda v: AnyValue(int_value=v), st.integers(min_value=-(2**63), max_value=2**63 - 1)),
    st.builds(lambda v: AnyValue(double_value=v), st.floats(allow_nan=False)),
    st.builds(lambda v: AnyValue(bool_value=v), st.booleans()),
    st.builds(lambda v: AnyValue(bytes_value=v), st.binary(max_size=8)),
)


def _array(values: list[AnyValue]) -> AnyValue:
    value = AnyValue()
    value.array_value.values.extend(values)
    return value


def _kvlist(items: list[tuple[str, AnyValue]]) -> AnyValue:
    value = AnyValue()
    for key, item in items:
        pair = value.kvlist_value.values.add()
        pair.key = key
        pair.value.CopyFrom(item)
    return value


any_values = st.recursive(
    _scalar_values,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3).map(_array),
        st.lists(st.tuples(_keys, inner), max_size=3).map(_kvlist),
    ),
    max_leaves=6,
)


@st.composite
def traces_data(draw: st.DrawFn) -> TracesData:
    """A valid TracesData: one or two resources, spans with attributes, events, links and a status."""
    traces = TracesData()
    for _ in range(draw(st.integers(1, 2))):
        resource_spans = traces.resource_spans.add()
        for key, value in draw(st.lists(st.tuples(_keys, any_values), max_size=MAX_ATTRIBUTES)):
            pair = resource_spans.resource.attributes.add()
            pair.key = key
            pair.value.CopyFrom(value)
        scope_spans = resource_spans.scope_spans.add()
        scope_spans.scope.name = draw(st.text(max_size=10))
        for _ in range(draw(st.integers(0, MAX_SPANS))):
            span = scope_spans.spans.add()
            span.trace_id = draw(st.binary(min_size=16, max_size=16))
            span.span_id = draw(st.binary(min_size=8, max_size=8))
            span.parent_span_id = draw(st.sampled_from([b"", *[bytes([i]) * 8 for i in range(1, 3)]]))
            span.name = draw(st.text(max_size=20))
            span.kind = draw(st.sampled_from(list(Span.SpanKind.values())))
            span.start_time_unix_nano = draw(_uint64)
            span.end_time_unix_nano = draw(_uint64)
            for key, value in draw(st.lists(st.tuples(_keys, any_values), max_size=MAX_ATTRIBUTES)):
                pair = span.attributes.add()
                pair.key = key
                pair.value.CopyFrom(value)
            for name in draw(st.lists(st.text(max_size=8), max_size=2)):
                event = span.events.add()
                event.name = name
                event.time_unix_nano = draw(_uint64)
            if draw(st.booleans()):
                link = span.links.add()
                link.trace_id = draw(st.binary(min_size=16, max_size=16))
                link.span_id = draw(st.binary(min_size=8, max_size=8))
            span.status.code = draw(st.sampled_from(list(Status.StatusCode.values())))
            span.status.message = draw(st.text(max_size=10))
    return traces


def _attributes(draw: st.DrawFn, into: Any) -> None:
    """Up to MAX_ATTRIBUTES key-value pairs of any AnyValue kind, appended to ``into`` (a repeated KeyValue)."""
    for key, value in draw(st.lists(st.tuples(_keys, any_values), max_size=MAX_ATTRIBUTES)):
        into.append(KeyValue(key=key, value=value))


_trace_ids = st.one_of(st.just(b""), st.binary(min_size=16, max_size=16))
_span_ids = st.one_of(st.just(b""), st.binary(min_size=8, max_size=8))


@st.composite
def logs_data(draw: st.DrawFn) -> LogsData:
    """A valid LogsData: one or two resources, records with a body of any AnyValue kind, attributes, trace context."""
    logs = LogsData()
    for _ in range(draw(st.integers(1, 2))):
        resource_logs = logs.resource_logs.add()
        _attributes(draw, resource_logs.resource.attributes)
        scope_logs = resource_logs.scope_logs.add()
        scope_logs.scope.name = draw(st.text(max_size=10))
        for _ in range(draw(st.integers(0, MAX_RECORDS))):
            record = scope_logs.log_records.add()
            record.time_unix_nano = draw(_uint64)
            record.observed_time_unix_nano = draw(_uint64)
            record.severity_number = draw(st.sampled_from(list(SeverityNumber.values())))
            record.severity_text = draw(st.text(max_size=8))
            if draw(st.booleans()):
                record.body.CopyFrom(draw(any_values))
            _attributes(draw, record.attributes)
            record.flags = draw(st.integers(0, 2**32 - 1))
            record.trace_id = draw(_trace_ids)
            record.span_id = draw(_span_ids)
            record.event_name = draw(st.sampled_from(["", "gen_ai.user.message", "gen_ai.choice", "x"]))
    return logs


def _exemplars(draw: st.DrawFn, into: Any) -> None:
    for _ in range(draw(st.integers(0, 2))):
        exemplar = Exemplar(time_unix_nano=draw(_uint64), trace_id=draw(_trace_ids), span_id=draw(_span_ids))
        if draw(st.booleans()):
            exemplar.as_double = draw(st.floats(allow_nan=False))
        else:
            exemplar.as_int = draw(st.integers(min_value=-(2**63), max_value=2**63 - 1))
        into.append(exemplar)


def _number_points(draw: st.DrawFn, into: Any) -> None:
    for _ in range(draw(st.integers(1, MAX_POINTS))):
        point = NumberDataPoint(start_time_unix_nano=draw(_uint64), time_unix_nano=draw(_uint64))
        if draw(st.booleans()):
            point.as_double = draw(st.floats(allow_nan=False))
        else:
            point.as_int = draw(st.integers(min_value=-(2**63), max_value=2**63 - 1))
        _attributes(draw, point.attributes)
        _exemplars(draw, point.exemplars)
        into.append(point)


_counts = st.integers(0, 2**32)
_temporalities = st.sampled_from(list(AggregationTemporality.values()))


@st.composite
def metrics_data(draw: st.DrawFn) -> MetricsData:
    """A valid MetricsData: gauges, sums, explicit and exponential histograms and summaries, with exemplars."""
    metrics = MetricsData()
    for _ in range(draw(st.integers(1, 2))):
        resource_metrics = metrics.resource_metrics.add()
        _attributes(draw, resource_metrics.resource.attributes)
        scope_metrics = resource_metrics.scope_metrics.add()
        scope_metrics.scope.name = draw(st.text(max_size=10))
        for _ in range(draw(st.integers(0, MAX_METRICS))):
            metric = scope_metrics.metrics.add()
            metric.name = draw(st.text(min_size=1, max_size=20))
            metric.unit = draw(st.text(max_size=5))
            kind = draw(st.sampled_from(["gauge", "sum", "histogram", "exponential_histogram", "summary"]))
            if kind == "gauge":
                _number_points(draw, metric.gauge.data_points)
            elif kind == "sum":
                metric.sum.aggregation_temporality = draw(_temporalities)
                metric.sum.is_monotonic = draw(st.booleans())
                _number_points(draw, metric.sum.data_points)
            elif kind == "histogram":
                metric.histogram.aggregation_temporality = draw(_temporalities)
                for _ in range(draw(st.integers(1, MAX_POINTS))):
                    point = metric.histogram.data_points.add(time_unix_nano=draw(_uint64), count=draw(_counts))
                    bounds = sorted(draw(st.lists(st.floats(allow_nan=False), max_size=MAX_BUCKETS)))
                    point.explicit_bounds.extend(bounds)
                    point.bucket_counts.extend(
                        draw(st.lists(_counts, min_size=len(bounds) + 1, max_size=len(bounds) + 1))
                    )
                    point.sum = draw(st.floats(allow_nan=False))
                    _attributes(draw, point.attributes)
                    _exemplars(draw, point.exemplars)
            elif kind == "exponential_histogram":
                metric.exponential_histogram.aggregation_temporality = draw(_temporalities)
                for _ in range(draw(st.integers(1, MAX_POINTS))):
                    point = metric.exponential_histogram.data_points.add(
                        time_unix_nano=draw(_uint64), count=draw(_counts), scale=draw(st.integers(-10, 20))
                    )
                    point.zero_count = draw(_counts)
                    point.positive.offset = draw(st.integers(-(2**31), 2**31 - 1))
                    point.positive.bucket_counts.extend(draw(st.lists(_counts, max_size=MAX_BUCKETS)))
                    point.negative.bucket_counts.extend(draw(st.lists(_counts, max_size=MAX_BUCKETS)))
                    _exemplars(draw, point.exemplars)
            else:
                for _ in range(draw(st.integers(1, MAX_POINTS))):
                    point = metric.summary.data_points.add(
                        time_unix_nano=draw(_uint64), count=draw(_counts), sum=draw(st.floats(allow_nan=False))
                    )
                    for quantile in sorted(draw(st.lists(st.floats(0, 1), max_size=MAX_BUCKETS))):
                        point.quantile_values.add(quantile=quantile, value=draw(st.floats(allow_nan=False)))
    return metrics


SIGNAL_DATA: dict[Signal, st.SearchStrategy[Any]] = {
    "traces": traces_data(),
    "logs": logs_data(),
    "metrics": metrics_data(),
}


def to_otlp_json(data: Message) -> dict[str, Any]:
    """``data`` (traces, logs or metrics) as an OTLP/JSON document: hex trace and span ids, integer enums."""
    document = json_format.MessageToDict(data, use_integers_for_enums=True)
    _ids_to_hex(document)
    return document


def _ids_to_hex(node: Any) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ID_KEYS and isinstance(value, str):
                node[key] = base64.b64decode(value).hex()
            else:
                _ids_to_hex(value)
    elif isinstance(node, list):
        for item in node:
            _ids_to_hex(item)


@st.composite
def mutated_bytes(draw: st.DrawFn, original: bytes) -> bytes:
    """``original`` with a few random edits: flipped, inserted, deleted or overwritten bytes, or a cut."""
    data = bytearray(original)
    for _ in range(draw(st.integers(1, 4))):
        operation = draw(st.sampled_from(["flip", "insert", "delete", "overwrite", "truncate", "duplicate"]))
        position = draw(st.integers(0, len(data)))
        if operation == "flip" and position < len(data):
            data[position] ^= 1 << draw(st.integers(0, 7))
        elif operation == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=8))
        elif operation == "delete":
            del data[position : position + draw(st.integers(1, 8))]
        elif operation == "overwrite":
            chunk = draw(st.binary(min_size=1, max_size=8))
            data[position : position + len(chunk)] = chunk
        elif operation == "truncate":
            del data[position:]
        elif operation == "duplicate":
            end = draw(st.integers(position, len(data)))
            data[end:end] = data[position:end]
    return bytes(data)


# Values that stress the JSON mapping: wrong types, huge and non-finite numbers, odd strings.
hostile_json_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**400), max_value=10**400),
    st.sampled_from([2**63, 2**64, -(2**63) - 1, -1, 10**30]),
    st.floats(),
    st.text(max_size=40),
    st.sampled_from(["", "0x10", "1e999", "NaN", "-Infinity", "18446744073709551616", "AAAA", "=="]),
    st.text(alphabet="0123456789abcdefABCDEF", max_size=40),
)

json_documents = st.recursive(
    hostile_json_values,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)),
    max_leaves=20,
)


@st.composite
def mutated_json(draw: st.DrawFn, document: Any) -> Any:
    """``document`` (an OTLP/JSON dict) with a few values, keys or containers replaced by hostile ones."""
    document = json.loads(json.dumps(document))  # a private copy
    for _ in range(draw(st.integers(1, 4))):
        containers = list(_containers(document))
        parent = draw(st.sampled_from(containers))
        if isinstance(parent, dict):
            if not parent:
                parent[draw(st.sampled_from(["resourceSpans", "traceId", "spans"]))] = draw(json_documents)
                continue
            key = draw(st.sampled_from(sorted(parent)))
            action = draw(st.sampled_from(["replace", "drop", "rename", "id"]))
            if action == "replace":
                parent[key] = draw(json_documents)
            elif action == "drop":
                del parent[key]
            elif action == "rename":
                parent[draw(st.text(max_size=12))] = parent.pop(key)
            else:
                hex_text = draw(st.text(alphabet="0123456789abcdef", max_size=40))
                parent[draw(st.sampled_from(ID_KEYS))] = hex_text
        elif parent:
            index = draw(st.integers(0, len(parent) - 1))
            parent[index] = draw(json_documents)
        else:
            parent.append(draw(json_documents))
    return document


def _containers(node: Any) -> Any:
    if isinstance(node, dict | list):
        yield node
        for child in node.values() if isinstance(node, dict) else node:
            yield from _containers(child)
