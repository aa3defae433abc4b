"""Spans into otel_traces columns, with values rendered exactly as the contrib exporter renders them."""

from __future__ import annotations

import math

import pytest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from exporters.clickhouse.columns import TRACE_COLUMNS, format_double, traces_to_table, value_as_string
from tests.conftest import make_traces


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.7, "0.7"),
        (1.0, "1"),
        (-2.5, "-2.5"),
        (1e21, "1000000000000000000000"),
        (1.5e-7, "0.00000015"),
        (math.inf, "+Inf"),
        (-math.inf, "-Inf"),
        (math.nan, "NaN"),
    ],
)
def test_doubles_render_like_go_formatfloat(value: float, text: str) -> None:
    assert format_double(value) == text


def _value(**kwargs: object) -> AnyValue:
    return AnyValue(**kwargs)  # type: ignore[arg-type]


def test_every_value_type_renders_as_pdata_asstring() -> None:
    array = AnyValue()
    array.array_value.values.add().string_value = "a"
    array.array_value.values.add().bool_value = True
    array.array_value.values.add().bytes_value = b"\x01"
    kvlist = AnyValue()
    kvlist.kvlist_value.values.add(key="b").value.int_value = 1
    kvlist.kvlist_value.values.add(key="a").value.array_value.values.add().double_value = 2.5
    assert value_as_string(_value(string_value="x")) == "x"
    assert value_as_string(_value(bool_value=True)) == "true"
    assert value_as_string(_value(int_value=-3)) == "-3"
    assert value_as_string(_value(double_value=0.25)) == "0.25"
    assert value_as_string(_value(bytes_value=b"hi")) == "aGk="
    assert value_as_string(array) == '["a",true,"AQ=="]'
    assert value_as_string(kvlist) == '{"a":[2.5],"b":1}'
    assert value_as_string(AnyValue()) == ""


def test_table_has_the_contrib_columns_one_row_per_span() -> None:
    first, second = make_traces(2, service="a"), make_traces(3, service="b")
    span = first.resource_spans[0].scope_spans[0].spans[0]
    span.events.add(time_unix_nano=5, name="e1").attributes.add(key="k").value.int_value = 1
    span.events.add(time_unix_nano=6, name="e2")
    table = traces_to_table([first, second])
    assert table.column_names == list(TRACE_COLUMNS)
    assert table.num_rows == 5
    rows = table.to_pylist()
    assert [r["ServiceName"] for r in rows] == ["a", "a", "b", "b", "b"]
    assert rows[0]["Events.Name"] == ["e1", "e2"]
    assert rows[0]["Events.Attributes"] == [[("k", "1")], []]
    assert rows[1]["Events.Name"] == [] and rows[1]["Links.TraceId"] == []
    assert rows[0]["SpanAttributes"] == [("gen_ai.request.model", "gpt-4o")]
    assert rows[0]["ResourceAttributes"] == [("service.name", "a")]
    assert rows[0]["Duration"] == 1_500_000_000
    assert rows[0]["SpanKind"] == "Client" and rows[0]["StatusCode"] == "Unset"


def test_a_span_ending_before_it_starts_gets_zero_duration() -> None:
    traces = make_traces(1)
    span = traces.resource_spans[0].scope_spans[0].spans[0]
    span.end_time_unix_nano = span.start_time_unix_nano - 1
    assert traces_to_table([traces]).column("Duration").to_pylist() == [0]
