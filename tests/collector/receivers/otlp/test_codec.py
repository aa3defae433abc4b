"""The otlp receiver's codec: OTLP/JSON and protobuf request bodies, hex IDs, Content-Encoding, and its errors."""

from __future__ import annotations

import gzip
import json
from typing import Any

import pytest
from google.protobuf import json_format
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status, TracesData

from collector.receivers.otlp.codec import (
    JSON,
    PROTOBUF,
    BadRequest,
    BodyTooLarge,
    decode_traces,
    decompress,
    encode_message,
)
from tests.collector.receivers.otlp.support import SAMPLE_JSON
from tests.conftest import make_traces

TRACE_ID = "5b8efff798038103d269b633813fc60c"
ROOT_SPAN_ID = "eee19b7ec3c1b174"
CHAT_SPAN_ID = "b7ad6b7169203331"
TOOL_SPAN_ID = "5fb397be34d26b51"
LINKED_TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
LINKED_SPAN_ID = "00f067aa0ba902b7"
SCHEMA_URL = "https://opentelemetry.io/schemas/1.28.0"
LIMIT = 1024 * 1024


def _json_request(span: dict[str, Any]) -> bytes:
    """An OTLP/JSON body holding ``span`` alone."""
    return json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}).encode()


def _only_span(traces: TracesData) -> Span:
    spans = [s for rs in traces.resource_spans for ss in rs.scope_spans for s in ss.spans]
    assert len(spans) == 1
    return spans[0]


def _attributes(attributes: Any) -> dict[str, AnyValue]:
    return {kv.key: kv.value for kv in attributes}


def _kv(key: str, **value: Any) -> KeyValue:
    return KeyValue(key=key, value=AnyValue(**value))


# --- the sample an instrumented GenAI app sends ---------------------------------------------------------------


def test_sample_json_decodes_with_every_field_intact() -> None:
    traces = decode_traces(SAMPLE_JSON.read_bytes(), JSON)

    assert len(traces.resource_spans) == 1
    resource_spans = traces.resource_spans[0]
    assert resource_spans.schema_url == SCHEMA_URL
    assert list(resource_spans.resource.attributes) == [
        _kv("service.name", string_value="support-bot"),
        _kv("service.version", string_value="1.4.2"),
        _kv("deployment.environment.name", string_value="staging"),
        _kv("telemetry.sdk.language", string_value="python"),
    ]
    assert resource_spans.resource.dropped_attributes_count == 0

    assert len(resource_spans.scope_spans) == 1
    scope_spans = resource_spans.scope_spans[0]
    assert scope_spans.schema_url == SCHEMA_URL
    assert scope_spans.scope.name == "opentelemetry.instrumentation.openai_v2"
    assert scope_spans.scope.version == "2.1b0"
    [capture] = scope_spans.scope.attributes
    assert capture.key == "instrumentation.capture_content"
    assert capture.value.WhichOneof("value") == "bool_value"
    assert capture.value.bool_value is False

    root, chat, tool = scope_spans.spans
    trace_id = bytes.fromhex(TRACE_ID)

    assert root.trace_id == trace_id
    assert root.span_id == bytes.fromhex(ROOT_SPAN_ID)
    assert root.parent_span_id == b""
    assert root.trace_state == ""
    assert root.flags == 257
    assert root.name == "invoke_agent support"
    assert root.kind == Span.SPAN_KIND_INTERNAL
    assert root.start_time_unix_nano == 1_700_000_000_000_000_000
    assert root.end_time_unix_nano == 1_700_000_003_250_000_000
    assert list(root.attributes) == [
        _kv("gen_ai.operation.name", string_value="invoke_agent"),
        _kv("gen_ai.agent.name", string_value="support"),
    ]
    assert root.status == Status(code=Status.STATUS_CODE_OK)
    assert (len(root.events), len(root.links)) == (0, 0)

    assert chat.trace_id == trace_id
    assert chat.span_id == bytes.fromhex(CHAT_SPAN_ID)
    assert chat.parent_span_id == bytes.fromhex(ROOT_SPAN_ID)
    assert chat.trace_state == "vendor=acme"
    assert chat.flags == 257
    assert chat.name == "chat gpt-4o-mini"
    assert chat.kind == Span.SPAN_KIND_CLIENT
    assert chat.start_time_unix_nano == 1_700_000_000_100_000_000
    assert chat.end_time_unix_nano == 1_700_000_001_600_000_000
    assert chat.dropped_attributes_count == 1
    assert chat.status == Status(code=Status.STATUS_CODE_ERROR, message="rate limited upstream")
    attributes = _attributes(chat.attributes)
    assert list(attributes) == [
        "gen_ai.operation.name",
        "gen_ai.request.model",
        "gen_ai.request.stream",
        "gen_ai.usage.input_tokens",
        "gen_ai.usage.output_tokens",
        "gen_ai.request.temperature",
        "gen_ai.response.finish_reasons",
        "gen_ai.request.metadata",
        "gen_ai.request.prompt_hash",
    ]
    assert attributes["gen_ai.operation.name"] == AnyValue(string_value="chat")
    assert attributes["gen_ai.request.model"] == AnyValue(string_value="gpt-4o-mini")
    assert attributes["gen_ai.request.stream"].WhichOneof("value") == "bool_value"
    assert attributes["gen_ai.request.stream"].bool_value is True
    # intValue as a JSON string (the spec's int64 form) and as a plain number.
    assert attributes["gen_ai.usage.input_tokens"].WhichOneof("value") == "int_value"
    assert attributes["gen_ai.usage.input_tokens"].int_value == 120
    assert attributes["gen_ai.usage.output_tokens"].WhichOneof("value") == "int_value"
    assert attributes["gen_ai.usage.output_tokens"].int_value == 42
    assert attributes["gen_ai.request.temperature"].WhichOneof("value") == "double_value"
    assert attributes["gen_ai.request.temperature"].double_value == 0.25
    finish_reasons = attributes["gen_ai.response.finish_reasons"]
    assert finish_reasons.WhichOneof("value") == "array_value"
    assert list(finish_reasons.array_value.values) == [AnyValue(string_value="stop"), AnyValue(string_value="length")]
    metadata = attributes["gen_ai.request.metadata"]
    assert metadata.WhichOneof("value") == "kvlist_value"
    assert list(metadata.kvlist_value.values) == [
        _kv("tenant", string_value="acme"),
        _kv("priority", int_value=2),
        _kv("cached", bool_value=False),
    ]
    assert metadata.kvlist_value.values[2].value.WhichOneof("value") == "bool_value"
    assert attributes["gen_ai.request.prompt_hash"].WhichOneof("value") == "bytes_value"
    assert attributes["gen_ai.request.prompt_hash"].bytes_value == b"\xde\xad\xbe\xef"

    [event] = chat.events
    assert event.name == "gen_ai.choice"
    assert event.time_unix_nano == 1_700_000_001_500_000_000
    assert list(event.attributes) == [_kv("index", int_value=0), _kv("finish_reason", string_value="stop")]
    assert event.attributes[0].value.WhichOneof("value") == "int_value"

    [link] = chat.links
    assert link.trace_id == bytes.fromhex(LINKED_TRACE_ID)
    assert link.span_id == bytes.fromhex(LINKED_SPAN_ID)
    assert link.trace_state == "rojo=00f067aa0ba902b7"
    assert link.flags == 769
    assert list(link.attributes) == [_kv("link.kind", string_value="retry-of")]

    assert tool.trace_id == trace_id
    assert tool.span_id == bytes.fromhex(TOOL_SPAN_ID)
    assert tool.parent_span_id == bytes.fromhex(ROOT_SPAN_ID)
    assert tool.name == "execute_tool get_weather"
    assert tool.kind == Span.SPAN_KIND_INTERNAL
    assert tool.start_time_unix_nano == 1_700_000_001_700_000_000
    assert tool.end_time_unix_nano == 1_700_000_001_900_000_000
    assert list(tool.attributes) == [
        _kv("gen_ai.tool.name", string_value="get_weather"),
        _kv("gen_ai.tool.call.id", string_value="call_9f2a"),
    ]
    assert tool.status == Status()
    assert tool.flags == 0


def test_sample_json_and_its_protobuf_form_decode_to_the_same_traces() -> None:
    from_json = decode_traces(SAMPLE_JSON.read_bytes(), JSON)

    from_protobuf = decode_traces(from_json.SerializeToString(), PROTOBUF)

    assert from_protobuf == from_json


# --- protobuf ----------------------------------------------------------------------------------------------------


def test_protobuf_body_decodes_to_the_same_traces() -> None:
    traces = make_traces(3)

    assert decode_traces(traces.SerializeToString(), PROTOBUF) == traces


def test_export_trace_service_request_bytes_decode_as_traces_data() -> None:
    traces = make_traces(2)
    request = ExportTraceServiceRequest(resource_spans=traces.resource_spans)

    assert decode_traces(request.SerializeToString(), PROTOBUF) == traces


def test_empty_protobuf_body_is_an_empty_request() -> None:
    assert decode_traces(b"", PROTOBUF) == TracesData()


@pytest.mark.parametrize("body", [b"\xff", b"\x0a\x05ab", b"not a protobuf message at all"])
def test_invalid_protobuf_is_a_bad_request(body: bytes) -> None:
    with pytest.raises(BadRequest, match="^invalid protobuf body: "):
        decode_traces(body, PROTOBUF)


# --- OTLP/JSON ---------------------------------------------------------------------------------------------------


def test_json_hex_ids_become_raw_bytes() -> None:
    body = _json_request(
        {
            "traceId": TRACE_ID,
            "spanId": CHAT_SPAN_ID,
            "parentSpanId": ROOT_SPAN_ID,
            "links": [{"traceId": LINKED_TRACE_ID, "spanId": LINKED_SPAN_ID}],
        }
    )

    span = _only_span(decode_traces(body, JSON))

    assert span.trace_id == bytes.fromhex(TRACE_ID)
    assert span.span_id == bytes.fromhex(CHAT_SPAN_ID)
    assert span.parent_span_id == bytes.fromhex(ROOT_SPAN_ID)
    assert span.links[0].trace_id == bytes.fromhex(LINKED_TRACE_ID)
    assert span.links[0].span_id == bytes.fromhex(LINKED_SPAN_ID)


def test_json_hex_ids_are_case_insensitive() -> None:
    body = _json_request({"traceId": TRACE_ID.upper(), "spanId": CHAT_SPAN_ID.upper()})

    span = _only_span(decode_traces(body, JSON))

    assert span.trace_id == bytes.fromhex(TRACE_ID)
    assert span.span_id == bytes.fromhex(CHAT_SPAN_ID)


def test_json_original_field_names_take_hex_ids_too() -> None:
    body = _json_request({"trace_id": TRACE_ID, "span_id": CHAT_SPAN_ID, "parent_span_id": ROOT_SPAN_ID})

    span = _only_span(decode_traces(body, JSON))

    assert (span.trace_id, span.span_id, span.parent_span_id) == (
        bytes.fromhex(TRACE_ID),
        bytes.fromhex(CHAT_SPAN_ID),
        bytes.fromhex(ROOT_SPAN_ID),
    )


def test_json_empty_parent_span_id_means_a_root_span() -> None:
    span = _only_span(decode_traces(_json_request({"traceId": TRACE_ID, "parentSpanId": ""}), JSON))

    assert span.parent_span_id == b""


@pytest.mark.parametrize(
    ("span", "message"),
    [
        ({"traceId": "zz" * 16}, f'traceId "{"zz" * 16}" is not hex'),
        ({"traceId": TRACE_ID[:16]}, f'traceId "{TRACE_ID[:16]}" must be 32 hex digits'),
        ({"traceId": TRACE_ID + "00"}, f'traceId "{TRACE_ID}00" must be 32 hex digits'),
        ({"spanId": TRACE_ID}, f'spanId "{TRACE_ID}" must be 16 hex digits'),
        ({"spanId": "abc"}, 'spanId "abc" must be 16 hex digits'),
        ({"parentSpanId": "12345678"}, 'parentSpanId "12345678" must be 16 hex digits'),
        # The protobuf JSON mapping's base64 form is not OTLP/JSON.
        ({"traceId": "W47/95gDgQPSabYzgT/GDA=="}, 'traceId "W47/95gDgQPSabYzgT/GDA==" is not hex'),
        ({"links": [{"traceId": TRACE_ID, "spanId": "0011"}]}, 'spanId "0011" must be 16 hex digits'),
    ],
)
def test_json_bad_hex_ids_are_bad_requests(span: dict[str, Any], message: str) -> None:
    with pytest.raises(BadRequest) as refused:
        decode_traces(_json_request(span), JSON)

    assert str(refused.value) == message
    assert not isinstance(refused.value, BodyTooLarge)


def test_json_hex_ids_with_whitespace_are_bad_requests() -> None:
    spaced = " ".join(TRACE_ID[i : i + 2] for i in range(0, len(TRACE_ID), 2))

    with pytest.raises(BadRequest):
        decode_traces(_json_request({"traceId": spaced}), JSON)


def test_json_enums_are_integers() -> None:
    body = _json_request({"kind": 5, "status": {"code": 2, "message": "boom"}})

    span = _only_span(decode_traces(body, JSON))

    assert span.kind == Span.SPAN_KIND_CONSUMER
    assert span.status.code == Status.STATUS_CODE_ERROR
    assert span.status.message == "boom"


def test_json_unknown_fields_are_ignored_at_every_level() -> None:
    document = {
        "resourceSpans": [
            {
                "resource": {"attributes": [], "entityHints": {"x": 1}},
                "futureResourceField": [1, 2, 3],
                "scopeSpans": [
                    {
                        "scope": {"name": "s", "newScopeField": True},
                        "spans": [
                            {
                                "traceId": TRACE_ID,
                                "spanId": CHAT_SPAN_ID,
                                "name": "chat",
                                "futureSpanField": {"note": "ignored"},
                                "attributes": [{"key": "k", "value": {"stringValue": "v"}, "unknownKeyValueField": 1}],
                            }
                        ],
                    }
                ],
            }
        ],
        "unknownTopLevel": "ignored",
    }
    span = _only_span(decode_traces(json.dumps(document).encode(), JSON))

    assert span.name == "chat"
    assert span.trace_id == bytes.fromhex(TRACE_ID)
    assert list(span.attributes) == [_kv("k", string_value="v")]


def test_json_int_value_may_be_a_string_or_a_number() -> None:
    body = _json_request(
        {
            "attributes": [
                {"key": "as_string", "value": {"intValue": "9007199254740993"}},
                {"key": "as_number", "value": {"intValue": 7}},
                {"key": "negative", "value": {"intValue": "-3"}},
            ],
            "startTimeUnixNano": "1700000000000000001",
            "endTimeUnixNano": 1700000000,
        }
    )

    span = _only_span(decode_traces(body, JSON))

    values = _attributes(span.attributes)
    assert values["as_string"].int_value == 9_007_199_254_740_993  # beyond a double's exact range
    assert values["as_number"].int_value == 7
    assert values["negative"].int_value == -3
    assert span.start_time_unix_nano == 1_700_000_000_000_000_001
    assert span.end_time_unix_nano == 1_700_000_000


def test_empty_json_object_is_an_empty_request() -> None:
    assert decode_traces(b"{}", JSON) == TracesData()


@pytest.mark.parametrize(
    ("body", "prefix"),
    [
        (b"{not json", "invalid JSON body: "),
        (b'{"resourceSpans": [', "invalid JSON body: "),
        (b"\xff\xfe{}", "invalid JSON body: "),
        (b"", "invalid JSON body: "),
        (b"[]", "invalid JSON body: expected an object with resourceSpans"),
        (b'"resourceSpans"', "invalid JSON body: expected an object with resourceSpans"),
        (b'{"resourceSpans": 5}', "invalid OTLP/JSON: "),
        (b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"name": 12}]}]}]}', "invalid OTLP/JSON: "),
        (b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"startTimeUnixNano": "soon"}]}]}]}', "invalid OTLP/JSON: "),
        (b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": 5}]}]}]}', "invalid OTLP/JSON: "),
        (b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"flags": -1}]}]}]}', "invalid OTLP/JSON: "),
    ],
)
def test_undecodable_json_is_a_bad_request(body: bytes, prefix: str) -> None:
    with pytest.raises(BadRequest) as refused:
        decode_traces(body, JSON)

    assert str(refused.value).startswith(prefix)


def test_deeply_nested_json_is_a_bad_request() -> None:
    depth = 100_000
    body = b'{"resourceSpans": ' + b"[" * depth + b"]" * depth + b"}"

    with pytest.raises(BadRequest):
        decode_traces(body, JSON)


# --- responses ---------------------------------------------------------------------------------------------------


def test_responses_are_encoded_like_the_request() -> None:
    status = status_pb2.Status(code=3, message="bad")

    assert encode_message(ExportTraceServiceResponse(), PROTOBUF) == b""
    assert json.loads(encode_message(ExportTraceServiceResponse(), JSON)) == {}
    assert status_pb2.Status.FromString(encode_message(status, PROTOBUF)) == status
    assert json.loads(encode_message(status, JSON)) == {"code": 3, "message": "bad"}
    assert json_format.Parse(encode_message(status, JSON), status_pb2.Status()) == status


# --- Content-Encoding --------------------------------------------------------------------------------------------


def test_every_member_of_a_multi_member_gzip_body_is_inflated() -> None:
    first, second = make_traces(2, service="first"), make_traces(3, service="second")
    # Concatenated protobuf messages merge, so each member alone is a valid request: losing one goes unnoticed.
    body = gzip.compress(first.SerializeToString()) + gzip.compress(second.SerializeToString())

    traces = decode_traces(decompress(body, "gzip", LIMIT), PROTOBUF)

    assert [len(rs.scope_spans[0].spans) for rs in traces.resource_spans] == [2, 3]
