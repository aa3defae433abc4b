"""The encoding every part of the collector agrees on: canonical, and joined encodings are their merge's."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status, TracesData

from collector.pdata import encode, joins_exactly, set_any_value

# A field number no OTLP message uses, as a newer sender's field would arrive: varint 5.
UNKNOWN_FIELD = b"\xf8\x07\x05"

scalars = st.one_of(
    st.text(max_size=20),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([0.0, -0.0, math.nan]),
    st.binary(max_size=12),
)
values = st.one_of(scalars, st.lists(scalars, max_size=4))


@st.composite
def spans(draw: st.DrawFn) -> Span:
    span = Span(
        trace_id=draw(st.binary(min_size=16, max_size=16)),
        span_id=draw(st.binary(min_size=8, max_size=8)),
        name=draw(st.text(max_size=20)),
        kind=draw(st.sampled_from(list(Span.SpanKind.values()))),
        start_time_unix_nano=draw(st.integers(min_value=0, max_value=2**64 - 1)),
        flags=draw(st.integers(min_value=0, max_value=2**32 - 1)),
        dropped_attributes_count=draw(st.integers(min_value=0, max_value=2**32 - 1)),
    )
    for key, value in draw(st.dictionaries(st.text(max_size=10), values, max_size=5)).items():
        set_any_value(span.attributes.add(key=key).value, value)
    for name in draw(st.lists(st.text(max_size=10), max_size=2)):
        event = span.events.add(name=name, time_unix_nano=draw(st.integers(min_value=0, max_value=2**64 - 1)))
        nested = AnyValue()
        set_any_value(nested, draw(values))
        event.attributes.add(key="nested").value.kvlist_value.values.add(key="v").value.CopyFrom(nested)
    if draw(st.booleans()):
        span.status.code = Status.STATUS_CODE_ERROR
        span.status.message = draw(st.text(max_size=10))
    if draw(st.booleans()):
        # A field a newer OTLP version added to Span: kept as unknown, and put last by the encoding.
        span.MergeFromString(UNKNOWN_FIELD)
    return span


@st.composite
def batches(draw: st.DrawFn) -> TracesData:
    traces = TracesData()
    for r in range(draw(st.integers(min_value=0, max_value=3))):
        resource_spans = traces.resource_spans.add(schema_url=draw(st.text(max_size=8)))
        resource_spans.resource.attributes.add(key="service.name").value.string_value = f"service-{r}"
        for _ in range(draw(st.integers(min_value=1, max_value=2))):
            scope_spans = resource_spans.scope_spans.add()
            scope_spans.scope.name = draw(st.text(max_size=8))
            scope_spans.spans.extend(draw(st.lists(spans(), max_size=4)))
    return traces


@settings(max_examples=200, deadline=None)
@given(batches())
def test_the_encoding_of_a_message_parsed_from_an_encoding_is_that_encoding(traces: TracesData) -> None:
    encoded = encode(traces)
    assert encode(TracesData.FromString(encoded)) == encoded
    assert encoded == traces.SerializeToString(deterministic=True)


@settings(max_examples=200, deadline=None)
@given(st.lists(batches(), min_size=1, max_size=4))
def test_joined_encodings_are_the_encoding_of_their_merge(parts: list[TracesData]) -> None:
    assert all(joins_exactly(part) for part in parts)
    joined = b"".join(encode(part) for part in parts)
    merged = TracesData()
    for part in parts:
        merged.resource_spans.extend(part.resource_spans)
    assert TracesData.FromString(joined) == merged
    assert encode(TracesData.FromString(joined)) == joined == encode(merged)


def test_a_field_unknown_at_the_top_level_is_what_keeps_encodings_from_joining() -> None:
    first, second = TracesData(), TracesData()
    first.resource_spans.add().resource.attributes.add(key="service.name").value.string_value = "a"
    second.resource_spans.add().resource.attributes.add(key="service.name").value.string_value = "b"
    first.MergeFromString(UNKNOWN_FIELD)

    assert not joins_exactly(first) and joins_exactly(second)
    joined = encode(first) + encode(second)
    # The merge holds the same data, but its encoding puts the unknown field last: the bytes differ.
    assert encode(TracesData.FromString(joined)) != joined
    assert encode(TracesData.FromString(encode(second) + encode(first))) == encode(second) + encode(first)
