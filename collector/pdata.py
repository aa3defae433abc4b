"""Small helpers over the OTLP protobuf that flows through pipelines."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, KeysView, Mapping
from typing import Any

from google.protobuf.message import Message
from google.protobuf.unknown_fields import UnknownFieldSet
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogsData
from opentelemetry.proto.metrics.v1.metrics_pb2 import Metric, MetricsData
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import Span, TracesData


def span_count(traces: TracesData) -> int:
    """How many spans ``traces`` holds."""
    return sum(len(scope_spans.spans) for rs in traces.resource_spans for scope_spans in rs.scope_spans)


def log_record_count(logs: LogsData) -> int:
    """How many log records ``logs`` holds."""
    return sum(len(scope_logs.log_records) for rl in logs.resource_logs for scope_logs in rl.scope_logs)


def data_point_count(metrics: MetricsData) -> int:
    """How many data points ``metrics`` holds, over every kind of metric (as the Collector counts metric points)."""
    return sum(_points(metric) for rm in metrics.resource_metrics for sm in rm.scope_metrics for metric in sm.metrics)


def _points(metric: Metric) -> int:
    kind = metric.WhichOneof("data")
    return 0 if kind is None else len(getattr(metric, kind).data_points)


def encode(traces: Message) -> bytes:
    """``traces`` (or a LogsData, a MetricsData) as bytes: the deterministic protobuf encoding, the one the
    workers answer with, the queue log stores and the clickhouse exporter's deduplication token hashes.

    It is canonical: known fields in field-number order, then the unknown ones as parsed, so encoding a
    message parsed from an encoding gives those bytes back, in any process. Two encodings joined parse
    as the merge of their messages (repeated fields concatenate) and are that merge's encoding, unless
    the first message carries fields unknown at its top level, which an encoding puts last
    (``joins_exactly``).
    """
    return traces.SerializeToString(deterministic=True)


def joins_exactly(traces: Message) -> bool:
    """Whether ``encode(traces)`` followed by another batch's encoding is the encoding of their merge: true
    unless ``traces`` has top-level fields this version of OTLP does not know (see ``encode``)."""
    return len(UnknownFieldSet(traces)) == 0


def iter_spans(batches: Iterable[TracesData]) -> Iterator[tuple[Resource, InstrumentationScope, Span]]:
    """Every span of every batch, with the resource and scope it belongs to."""
    for traces in batches:
        for resource_spans in traces.resource_spans:
            resource = resource_spans.resource
            for scope_spans in resource_spans.scope_spans:
                scope = scope_spans.scope
                for span in scope_spans.spans:
                    yield resource, scope, span


def any_value(value: AnyValue) -> Any:
    """An OTLP AnyValue as a Python value (str, bool, int, float, bytes, list, dict or None)."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [any_value(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return {pair.key: any_value(pair.value) for pair in value.kvlist_value.values}
    return getattr(value, kind)


def resource_attribute(resource: Resource, key: str) -> Any:
    """The value of the resource attribute ``key`` (``service.name``, say), None when it has none."""
    for pair in resource.attributes:
        if pair.key == key:
            return any_value(pair.value)
    return None


def set_any_value(out: AnyValue, value: Any) -> str | None:
    """Store a Python value (str, bool, int, float, bytes, None, or a sequence or mapping of them) in ``out``.

    Returns the kind of value written (the AnyValue oneof's name: ``string_value``, ``int_value``...; None for an
    empty sequence, which leaves ``out`` empty).
    """
    # bool before int: a bool is an int in Python, not in OTLP.
    if isinstance(value, str):
        out.string_value = value
        return "string_value"
    if isinstance(value, bool):
        out.bool_value = value
        return "bool_value"
    if isinstance(value, int):
        out.int_value = value
        return "int_value"
    if isinstance(value, float):
        out.double_value = value
        return "double_value"
    if isinstance(value, bytes):
        out.bytes_value = value
        return "bytes_value"
    if isinstance(value, list | tuple):
        items = out.array_value.values
        for item in value:
            set_any_value(items.add(), item)
        return "array_value" if value else None
    if isinstance(value, Mapping):  # structured content (messages, tool arguments) as OTLP's own key-value list
        out.kvlist_value.SetInParent()  # an empty mapping is still a (empty) key-value list
        pairs = out.kvlist_value.values
        for key, item in value.items():
            pair = pairs.add()
            pair.key = str(key)
            set_any_value(pair.value, item)
        return "kvlist_value"
    if value is None:  # JSON's null inside structured content: an AnyValue with no value
        return None
    out.string_value = str(value)
    return "string_value"


class SpanAttributes:
    """A span's attributes by key, for reading and editing in place without rescanning the list.

    The index holds each key's position in the span's list (the last, should a key be listed twice), not the
    pair itself: a pair read out of the protobuf is an object of its own, and held for every span of a batch
    they would be many, all for the garbage collector to walk.
    """

    __slots__ = ("span", "_positions")

    def __init__(self, span: Span) -> None:
        self.span = span
        self._positions: dict[str, int] = {pair.key: index for index, pair in enumerate(span.attributes)}

    def __contains__(self, key: str) -> bool:
        return key in self._positions

    def __iter__(self) -> Iterator[str]:
        """The keys, in the span's order."""
        return iter(self._positions)

    def keys(self) -> KeysView[str]:
        """The keys, in the span's order."""
        return self._positions.keys()

    @property
    def by_key(self) -> dict[str, KeyValue]:
        """The pairs by key, in the span's order."""
        attributes = self.span.attributes
        return {key: attributes[index] for key, index in self._positions.items()}

    def pair(self, key: str) -> KeyValue | None:
        """The attribute ``key`` as it is in the span; None when it has none."""
        index = self._positions.get(key)
        return self.span.attributes[index] if index is not None else None

    def get(self, key: str) -> Any:
        pair = self.pair(key)
        return any_value(pair.value) if pair is not None else None

    def set(self, key: str, value: Any) -> str | None:
        """Set ``key`` (replacing its value if present); the kind of value written (as ``set_any_value``)."""
        return set_any_value(self._pair_to_write(key).value, value)

    def _pair_to_write(self, key: str) -> KeyValue:
        """The pair of ``key`` with its value cleared, or a new one at the end when the span has none."""
        attributes = self.span.attributes
        index = self._positions.get(key)
        if index is None:
            self._positions[key] = len(attributes)
            pair = attributes.add()
            pair.key = key
        else:
            pair = attributes[index]
            pair.ClearField("value")
        return pair

    def rename(self, old: str, new: str) -> None:
        """Give the ``old`` attribute the key ``new`` (which must not exist), in place."""
        self.span.attributes[self._positions[old]].key = new
        # Rebuilt rather than popped and added: the index keeps the attributes' order (readers rely on it).
        rename_key(self._positions, old, new)

    def remove(self, keys: Iterable[str]) -> None:
        doomed = {key for key in keys if key in self._positions}
        if not doomed:
            return
        attributes = self.span.attributes
        for index in range(len(attributes) - 1, -1, -1):
            if attributes[index].key in doomed:
                del attributes[index]
        self._positions.clear()
        self._positions.update((pair.key, index) for index, pair in enumerate(attributes))


def rename_key(mapping: dict[str, Any], old: str, new: str) -> None:
    """``mapping``'s key ``old`` renamed ``new`` where it stands, in place."""
    items = [(new if key == old else key, value) for key, value in mapping.items()]
    mapping.clear()
    mapping.update(items)
