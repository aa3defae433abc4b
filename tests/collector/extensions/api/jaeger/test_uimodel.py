"""OTLP spans as the Jaeger UI's JSON, field by field.

Expected shapes from jaegertracing/jaeger at 8498073f: internal/uimodel/model.go (keys), the fixture
internal/uimodel/converter/v1/json/fixtures/ui_01.json (16-digit trace ids, int64 beyond JavaScript's safe range
as a string, binary as base64, "event" log fields, processes p1/p2, "warnings": null) and from_domain.go; the
tags derived from OTLP fields as opentelemetry-collector-contrib pkg/translator/jaeger/traces_to_jaegerproto.go
(commit ebdf3b1d) writes them.
"""

from __future__ import annotations

from typing import Any

from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status, TracesData

from collector.extensions.api.jaeger.uimodel import trace_id_text, ui_trace

TRACE_ID = bytes(8) + bytes.fromhex("0000000000000001")
START = 1_485_467_191_639_875_123


def _kv(key: str, **value: Any) -> KeyValue:
    return KeyValue(key=key, value=AnyValue(**value))


def _trace() -> TracesData:
    traces = TracesData()
    x = traces.resource_spans.add()
    x.resource.attributes.extend([_kv("service.name", string_value="service-x"), _kv("host", string_value="h1")])
    scope = x.scope_spans.add()
    scope.scope.name, scope.scope.version = "lib", "1.0"
    root = scope.spans.add(
        trace_id=TRACE_ID,
        span_id=bytes.fromhex("0000000000000002"),
        name="some-operation",
        kind=Span.SPAN_KIND_SERVER,
        start_time_unix_nano=START,
        end_time_unix_nano=START + 5_999,
        trace_state="k=v",
    )
    root.attributes.extend(
        [
            _kv("peer.service", string_value="service-y"),
            _kv("peer.ipv4", int_value=23456),
            _kv("temperature", double_value=72.5),
            _kv("javascript_limit", int_value=9223372036854775222),
            _kv("blob", bytes_value=b"\x00\x00\x30\x39"),
            _kv("flag", bool_value=True),
            _kv("list", array_value={"values": [AnyValue(string_value="a"), AnyValue(int_value=1)]}),
        ]
    )
    root.status.code, root.status.message = Status.STATUS_CODE_ERROR, "boom"
    event = root.events.add(time_unix_nano=START, name="some-event")
    event.attributes.append(_kv("x", string_value="y"))
    y = traces.resource_spans.add()
    y.resource.attributes.append(_kv("service.name", string_value="service-y"))
    child = y.scope_spans.add().spans.add(
        trace_id=TRACE_ID,
        span_id=bytes.fromhex("0000000000000003"),
        parent_span_id=bytes.fromhex("0000000000000002"),
        name="child",
        kind=Span.SPAN_KIND_CLIENT,
        start_time_unix_nano=START,
        end_time_unix_nano=START + 4_000,
    )
    child.status.code = Status.STATUS_CODE_OK
    link = child.links.add(trace_id=bytes.fromhex("00" * 15 + "ff"), span_id=bytes.fromhex("00" * 7 + "ff"))
    link.attributes.append(_kv("opentracing.ref_type", string_value="child_of"))
    child.links.add(trace_id=TRACE_ID, span_id=bytes.fromhex("0000000000000004"))
    return traces


def test_a_trace_reads_as_the_jaeger_ui_expects() -> None:
    assert ui_trace(_trace()) == {
        "traceID": "0000000000000001",
        "spans": [
            {
                "traceID": "0000000000000001",
                "spanID": "0000000000000002",
                "operationName": "some-operation",
                "references": [],
                "startTime": 1485467191639875,
                "duration": 5,
                "tags": [
                    {"key": "otel.scope.name", "type": "string", "value": "lib"},
                    {"key": "otel.scope.version", "type": "string", "value": "1.0"},
                    {"key": "peer.service", "type": "string", "value": "service-y"},
                    {"key": "peer.ipv4", "type": "int64", "value": 23456},
                    {"key": "temperature", "type": "float64", "value": 72.5},
                    {"key": "javascript_limit", "type": "int64", "value": "9223372036854775222"},
                    {"key": "blob", "type": "binary", "value": "AAAwOQ=="},
                    {"key": "flag", "type": "bool", "value": True},
                    {"key": "list", "type": "string", "value": '["a",1]'},
                    {"key": "span.kind", "type": "string", "value": "server"},
                    {"key": "otel.status_code", "type": "string", "value": "ERROR"},
                    {"key": "error", "type": "bool", "value": True},
                    {"key": "otel.status_description", "type": "string", "value": "boom"},
                    {"key": "w3c.tracestate", "type": "string", "value": "k=v"},
                ],
                "logs": [
                    {
                        "timestamp": 1485467191639875,
                        "fields": [
                            {"key": "event", "type": "string", "value": "some-event"},
                            {"key": "x", "type": "string", "value": "y"},
                        ],
                    }
                ],
                "processID": "p1",
                "warnings": None,
            },
            {
                "traceID": "0000000000000001",
                "spanID": "0000000000000003",
                "operationName": "child",
                "references": [
                    {"refType": "CHILD_OF", "traceID": "0000000000000001", "spanID": "0000000000000002"},
                    {"refType": "CHILD_OF", "traceID": "00000000000000ff", "spanID": "00000000000000ff"},
                    {"refType": "FOLLOWS_FROM", "traceID": "0000000000000001", "spanID": "0000000000000004"},
                ],
                "startTime": 1485467191639875,
                "duration": 4,
                "tags": [
                    {"key": "span.kind", "type": "string", "value": "client"},
                    {"key": "otel.status_code", "type": "string", "value": "OK"},
                ],
                "logs": [],
                "processID": "p2",
                "warnings": None,
            },
        ],
        "processes": {
            "p1": {"serviceName": "service-x", "tags": [{"key": "host", "type": "string", "value": "h1"}]},
            "p2": {"serviceName": "service-y", "tags": []},
        },
        "warnings": None,
    }


def test_a_link_to_the_parent_only_sets_the_reference_type() -> None:
    traces = _trace()
    child = traces.resource_spans[1].scope_spans[0].spans[0]
    del child.links[:]
    child.links.add(trace_id=TRACE_ID, span_id=bytes.fromhex("0000000000000002"))
    references = ui_trace(traces)["spans"][1]["references"]
    assert references == [{"refType": "FOLLOWS_FROM", "traceID": "0000000000000001", "spanID": "0000000000000002"}]


def test_identical_resources_share_one_process() -> None:
    traces = _trace()
    traces.resource_spans.add().CopyFrom(traces.resource_spans[1])
    trace = ui_trace(traces)
    assert [span["processID"] for span in trace["spans"]] == ["p1", "p2", "p2"]
    assert sorted(trace["processes"]) == ["p1", "p2"]


def test_trace_ids_print_as_jaeger_prints_them() -> None:
    assert trace_id_text(bytes(8) + b"\x00" * 7 + b"\x01") == "0000000000000001"
    assert trace_id_text(b"\x01" + bytes(15)) == "01000000000000000000000000000000"
