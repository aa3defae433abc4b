"""Fuzz the OTLP body decoders (protobuf and JSON) of every signal: any input decodes or is refused with BadRequest.

Inputs the fuzzers found once have their own regression tests at the end.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from opentelemetry.proto.trace.v1.trace_pb2 import TracesData

from collector.receivers.otlp.codec import JSON, PROTOBUF, BadRequest, decode, decode_traces
from collector.signals import SIGNAL_KINDS, Signal
from tests.fuzz.otlp_inputs import (
    ID_KEYS,
    SIGNAL_DATA,
    json_documents,
    mutated_bytes,
    mutated_json,
    to_otlp_json,
    traces_data,
)
from tests.fuzz.profiles import fuzz_settings

NESTING_DEPTHS = (10, 200, 5_000, 100_000)
# Inputs the fuzzers found that the receiver once answered with a 500 (see the regression tests below).
HUGE_INTEGER_BODY = b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"startTimeUnixNano":' + b"9" * 5000 + b"}]}]}]}"
LONE_SURROGATE_KEY_BODY = b'{"\\ud800":1}'


def decodes_or_refuses(body: bytes, content_type: str) -> TracesData | None:
    """The decoded request, or None when it was refused with BadRequest (any other exception fails the test)."""
    try:
        return decode_traces(body, content_type)
    except BadRequest as exc:
        assert str(exc), "a rejection must say why"
        return None


@fuzz_settings(300)
@given(st.binary(max_size=512))
def test_protobuf_decoder_random_bytes(body: bytes) -> None:
    decodes_or_refuses(body, PROTOBUF)


@fuzz_settings(150)
@given(st.data())
def test_protobuf_decoder_mutated_valid_messages(data: st.DataObject) -> None:
    original = data.draw(traces_data()).SerializeToString()
    decodes_or_refuses(data.draw(mutated_bytes(original)), PROTOBUF)


@fuzz_settings(50)
@given(traces_data())
def test_protobuf_round_trip(traces: TracesData) -> None:
    assert decode_traces(traces.SerializeToString(), PROTOBUF) == traces


@pytest.mark.parametrize("depth", NESTING_DEPTHS)
def test_protobuf_deeply_nested_any_values_are_refused_or_decoded(depth: int) -> None:
    # An AnyValue holding an ArrayValue holding an AnyValue... built on the wire, outside-in.
    inner = b""
    for _ in range(min(depth, 2_000)):
        array_value = b"\x0a" + _varint(len(inner)) + inner  # ArrayValue.values (field 1)
        inner = b"\x2a" + _varint(len(array_value)) + array_value  # AnyValue.array_value (field 5)
    pair = b"\x0a\x01k" + b"\x12" + _varint(len(inner)) + inner  # KeyValue: key, value
    resource = b"\x0a" + _varint(len(pair)) + pair  # Resource.attributes
    resource_spans = b"\x0a" + _varint(len(resource)) + resource  # ResourceSpans.resource
    body = b"\x0a" + _varint(len(resource_spans)) + resource_spans  # TracesData.resource_spans
    decodes_or_refuses(body, PROTOBUF)


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


@fuzz_settings(300)
@given(st.binary(max_size=256))
@example(b"\xef\xbb\xbf{}")  # a UTF-8 byte order mark
@example(b"\xff\xfe{\x00}\x00")  # UTF-16
@example(b"[]")
@example(b"null")
@example(b'{"resourceSpans": 1e999}')
def test_json_decoder_random_bytes(body: bytes) -> None:
    decodes_or_refuses(body, JSON)


@fuzz_settings(300)
@given(json_documents)
def test_json_decoder_random_json(document: Any) -> None:
    decodes_or_refuses(json.dumps(document).encode(), JSON)


@fuzz_settings(300)
@given(st.dictionaries(st.sampled_from(["resourceSpans", "resource_spans", "x"]), json_documents, max_size=2))
def test_json_decoder_random_json_under_otlp_keys(document: dict[str, Any]) -> None:
    decodes_or_refuses(json.dumps(document).encode(), JSON)


@fuzz_settings(150)
@given(st.data())
def test_json_decoder_mutated_valid_documents(data: st.DataObject) -> None:
    document = to_otlp_json(data.draw(traces_data()))
    decodes_or_refuses(json.dumps(data.draw(mutated_json(document))).encode(), JSON)


@fuzz_settings(40)
@given(traces_data())
def test_json_round_trip(traces: TracesData) -> None:
    assert decode_traces(json.dumps(to_otlp_json(traces)).encode(), JSON) == traces


@fuzz_settings(200)
@given(
    key=st.sampled_from(ID_KEYS),
    value=st.one_of(
        st.text(alphabet="0123456789abcdefABCDEF", max_size=70),
        st.text(max_size=40),
        st.integers(),
        st.none(),
        st.lists(st.integers(), max_size=3),
    ),
)
def test_json_ids_of_any_length_and_type(key: str, value: Any) -> None:
    span = {"traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174", "name": "s", key: value}
    document = {"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}
    decoded = decodes_or_refuses(json.dumps(document).encode(), JSON)
    expected_hex_digits = 32 if key == "traceId" else 16
    if decoded is not None and isinstance(value, str) and value:
        assert len(value) == expected_hex_digits


@pytest.mark.parametrize("depth", NESTING_DEPTHS)
@pytest.mark.parametrize("container", ["list", "object", "any_value"])
def test_json_deep_nesting_is_refused_or_decoded(depth: int, container: str) -> None:
    if container == "list":
        body = b'{"resourceSpans":' + b"[" * depth + b"]" * depth + b"}"
    elif container == "object":
        body = b'{"resourceSpans":[' + b'{"a":' * depth + b"1" + b"}" * depth + b"]}"
    else:
        value = '{"arrayValue":{"values":[' * depth + "{}" + "]}}" * depth
        body = ('{"resourceSpans":[{"resource":{"attributes":[{"key":"k","value":' + value + "}]}}]}").encode()
    decodes_or_refuses(body, JSON)


@pytest.mark.parametrize("body", [HUGE_INTEGER_BODY, LONE_SURROGATE_KEY_BODY], ids=["huge_integer", "lone_surrogate"])
def test_inputs_the_fuzzers_found_are_refused(body: bytes) -> None:
    # Once a 500: an integer over Python's 4,300-digit limit (json.loads raises a plain ValueError)
    # and a lone surrogate in a key (protobuf's ParseDict raises SystemError).
    assert decodes_or_refuses(body, JSON) is None


# Logs and metrics: the same decoders with their own message types; mutations of valid bodies of each signal.
OTHER_SIGNALS: tuple[Signal, ...] = ("logs", "metrics")


def signal_decodes_or_refuses(body: bytes, content_type: str, signal: Signal) -> object | None:
    try:
        return decode(body, content_type, SIGNAL_KINDS[signal].data_type)
    except BadRequest as exc:
        assert str(exc), "a rejection must say why"
        return None


@pytest.mark.parametrize("signal", OTHER_SIGNALS)
@fuzz_settings(100)
@given(data=st.data())
def test_logs_and_metrics_protobuf_mutated_valid_messages(signal: Signal, data: st.DataObject) -> None:
    original = data.draw(SIGNAL_DATA[signal]).SerializeToString()
    signal_decodes_or_refuses(data.draw(mutated_bytes(original)), PROTOBUF, signal)


@pytest.mark.parametrize("signal", OTHER_SIGNALS)
@fuzz_settings(100)
@given(data=st.data())
def test_logs_and_metrics_json_mutated_valid_documents(signal: Signal, data: st.DataObject) -> None:
    document = to_otlp_json(data.draw(SIGNAL_DATA[signal]))
    signal_decodes_or_refuses(json.dumps(data.draw(mutated_json(document))).encode(), JSON, signal)


@pytest.mark.parametrize("signal", OTHER_SIGNALS)
@fuzz_settings(40)
@given(data=st.data())
def test_logs_and_metrics_round_trip_in_both_encodings(signal: Signal, data: st.DataObject) -> None:
    message = data.draw(SIGNAL_DATA[signal])
    assert signal_decodes_or_refuses(message.SerializeToString(), PROTOBUF, signal) == message
    assert signal_decodes_or_refuses(json.dumps(to_otlp_json(message)).encode(), JSON, signal) == message


@pytest.mark.parametrize("signal", OTHER_SIGNALS)
@fuzz_settings(150)
@given(data=st.data())
def test_logs_and_metrics_random_json_under_their_keys(signal: Signal, data: st.DataObject) -> None:
    key = "resourceLogs" if signal == "logs" else "resourceMetrics"
    document = data.draw(st.dictionaries(st.sampled_from([key, "x"]), json_documents, max_size=2))
    signal_decodes_or_refuses(json.dumps(document).encode(), JSON, signal)
