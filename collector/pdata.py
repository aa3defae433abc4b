"""Small helpers over the OTLP protobuf that flows through pipelines."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from google.protobuf.unknown_fields import UnknownFieldSet
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import Span, TracesData


def span_count(traces: TracesData) -> int:
    """How many spans ``traces`` holds."""
    return sum(len(scope_spans.spans) for rs in traces.resource_spans for scope_spans in rs.scope_spans)


def encode(traces: TracesData) -> bytes:
    """``traces`` as bytes: the deterministic protobuf encoding, the one the workers answer with, the queue log
    stores and the clickhouse exporter's deduplication token hashes.

    It is canonical: known fields in field-number order, then the unknown ones as parsed, so encoding a
    message parsed from an encoding gives those bytes back, in any process. Two encodings joined parse
    as the merge of their messages (repeated fields concatenate) and are that merge's encoding, unless
    the first message carries fields unknown at its top level, which an encoding puts last
    (``joins_exactly``).
    """
    return traces.SerializeToString(deterministic=True)


def joins_exactly(traces: TracesData) -> bool:
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


def set_any_value(out: AnyValue, value: Any) -> None:
    """Store a Python attribute value (str, bool, int, float, bytes or a sequence of them) in ``out``."""
    # bool before int: a bool is an int in Python, not in OTLP.
    if isinstance(value, str):
        out.string_value = value
    elif isinstance(value, bool):
        out.bool_value = value
    elif isinstance(value, int):
        out.int_value = value
    elif isinstance(value, float):
        out.double_value = value
    elif isinstance(value, bytes):
        out.bytes_value = value
    elif isinstance(value, list | tuple):
        items = out.array_value.values
        for item in value:
            set_any_value(items.add(), item)
    else:
        out.string_value = str(value)


class SpanAttributes:
    """A span's attributes by key, for reading and editing in place without rescanning the list."""

    def __init__(self, span: Span) -> None:
        self._span = span
        self.by_key: dict[str, KeyValue] = {pair.key: pair for pair in span.attributes}

    def __contains__(self, key: str) -> bool:
        return key in self.by_key

    def get(self, key: str) -> Any:
        pair = self.by_key.get(key)
        return any_value(pair.value) if pair is not None else None

    def set(self, key: str, value: Any) -> None:
        """Set ``key`` (replacing its value if present)."""
        pair = self.by_key.get(key)
        if pair is None:
            pair = self._span.attributes.add()
            pair.key = key
            self.by_key[key] = pair
        else:
            pair.ClearField("value")
        set_any_value(pair.value, value)

    def rename(self, old: str, new: str) -> None:
        """Give the ``old`` attribute the key ``new`` (which must not exist), in place."""
        pair = self.by_key.pop(old)
        pair.key = new
        self.by_key[new] = pair

    def remove(self, keys: Iterable[str]) -> None:
        doomed = {key for key in keys if key in self.by_key}
        if not doomed:
            return
        attributes = self._span.attributes
        for index in range(len(attributes) - 1, -1, -1):
            if attributes[index].key in doomed:
                del attributes[index]
        self.by_key = {pair.key: pair for pair in attributes}
