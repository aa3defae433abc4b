"""JSON read from and written back to attribute strings: what the fast parser refuses still round-trips."""

from __future__ import annotations

import math

from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from collector.jsonvalues import dump_json, parse_json


def test_parse_json_reads_what_json_accepts_and_nothing_else() -> None:
    assert parse_json('[{"a": "é"}]') == [{"a": "é"}]
    assert math.isnan(parse_json("[NaN]")[0])  # not JSON, but Python's json writes it
    assert parse_json('["\\ud800"]') == ["\ud800"]  # a lone surrogate, escaped: valid JSON
    for not_json in ("", "[", "x", "[" * 100_000, None, 3):
        assert parse_json(not_json) is None


def test_dump_json_writes_text_a_protobuf_string_accepts() -> None:
    assert dump_json([{"x": "é", "n": 1}]) == '[{"x":"é","n":1}]'
    for value in (["\ud800"], [1 << 70]):
        text = dump_json(value)
        AnyValue(string_value=text)  # valid UTF-8, or protobuf refuses it
        assert parse_json(text) == value
