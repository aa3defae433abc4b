"""The receiver's bounds, from real clients on loopback: body size after decompression, messages per request,
attributes, events and links per span (an OTLP partial success), and the config mistakes around them."""

from __future__ import annotations

import asyncio
import gzip
import tracemalloc
import zlib

import grpc
import httpx
import pytest
from google.protobuf import json_format
from google.rpc import code_pb2, status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.proto.trace.v1.trace_pb2 import TracesData
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from collector.config.decode import decode
from collector.config.problems import ConfigError
from collector.httpserver import HttpServer
from collector.httpserver.body import Admission
from collector.listeners.inflight import InFlightBudget
from collector.receivers.otlp.codec import JSON, PROTOBUF, BodyTooLarge, decompress, encode_otlp_json
from collector.receivers.otlp.config import (
    DEFAULT_MAX_REQUEST_BODY_BYTES,
    GrpcSettings,
    HttpSettings,
    OtlpReceiverConfig,
    RequestLimits,
)
from collector.receivers.otlp.grpc import GrpcReceiver
from collector.receivers.otlp.http import create_app
from collector.receivers.otlp.ingest import Ingest
from collector.receivers.otlp.wire import CountExceeded, check_counts
from collector.telemetry import Telemetry
from tests.collector.receivers.otlp.support import (
    ANY_LOOPBACK_PORT,
    CLIENT_TIMEOUT_SECONDS,
    RECEIVER,
    accepted,
    raw_export,
    refused,
    run,
)
from tests.conftest import RecordingConsumer, make_traces

PATH = "/v1/traces"
MIB = 1024 * 1024
SMALL_LIMITS = RequestLimits(
    max_resource_spans_per_request=3,
    max_scope_spans_per_request=4,
    max_spans_per_request=10,
    max_attributes_per_span=5,
    max_events_per_span=2,
    max_links_per_span=2,
)


@pytest.fixture
def telemetry() -> Telemetry:
    return Telemetry()


def _gzip_bomb(expanded_bytes: int) -> bytes:
    """A gzip body of zeros that inflates to ``expanded_bytes``, built without holding them all."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = b"\0" * MIB
    parts = [compressor.compress(block) for _ in range(expanded_bytes // MIB)]
    parts.append(compressor.flush())
    return b"".join(parts)


async def _serve_http(
    consumer: RecordingConsumer, telemetry: Telemetry, limits: RequestLimits, settings: HttpSettings | None = None
) -> HttpServer:
    settings = settings or HttpSettings(endpoint=ANY_LOOPBACK_PORT)
    server = HttpServer(create_app(settings, Ingest(consumer, telemetry, RECEIVER, "http", limits=limits)), settings)
    await server.start()
    return server


def _post(
    recorder: RecordingConsumer,
    telemetry: Telemetry,
    body: bytes,
    content_type: str = PROTOBUF,
    limits: RequestLimits = SMALL_LIMITS,
    settings: HttpSettings | None = None,
    **headers: str,
) -> httpx.Response:
    async def scenario() -> httpx.Response:
        server = await _serve_http(recorder, telemetry, limits, settings)
        try:
            async with httpx.AsyncClient(timeout=CLIENT_TIMEOUT_SECONDS) as client:
                return await client.post(
                    f"http://127.0.0.1:{server.port}{PATH}",
                    content=body,
                    headers={"Content-Type": content_type, **headers},
                )
        finally:
            await server.stop()

    return run(scenario())


def _export(
    recorder: RecordingConsumer,
    telemetry: Telemetry,
    body: bytes,
    limits: RequestLimits = SMALL_LIMITS,
    settings: GrpcSettings | None = None,
    compression: grpc.Compression | None = None,
) -> ExportTraceServiceResponse | grpc.aio.AioRpcError:
    async def scenario() -> ExportTraceServiceResponse | grpc.aio.AioRpcError:
        receiver = GrpcReceiver(
            settings or GrpcSettings(endpoint=ANY_LOOPBACK_PORT),
            Ingest(recorder, telemetry, RECEIVER, "grpc", limits=limits),
        )
        await receiver.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{receiver.port}", compression=compression) as channel:
                response: ExportTraceServiceResponse = await raw_export(channel)(body, timeout=CLIENT_TIMEOUT_SECONDS)
                return response
        except grpc.aio.AioRpcError as error:
            return error
        finally:
            await receiver.stop()

    return run(scenario())


def _protobuf_status(response: httpx.Response) -> status_pb2.Status:
    return status_pb2.Status.FromString(response.content)


def _traces(resources: int, scopes_per_resource: int, spans_per_scope: int) -> TracesData:
    traces = TracesData()
    for _ in range(resources):
        resource_spans = traces.resource_spans.add()
        for _ in range(scopes_per_resource):
            resource_spans.scope_spans.add().spans.extend(
                make_traces(spans_per_scope).resource_spans[0].scope_spans[0].spans
            )
    return traces


def _with_oversized_spans(valid: int) -> tuple[TracesData, list[str]]:
    """``valid`` good spans plus one span over each per-span limit of SMALL_LIMITS; the good spans' names."""
    traces = make_traces(valid)
    spans = traces.resource_spans[0].scope_spans[0].spans
    for index, span in enumerate(spans):
        span.name = f"good {index}"
    too_many_attributes, too_many_events, too_many_links = (spans.add() for _ in range(3))
    for number in range(SMALL_LIMITS.max_attributes_per_span + 1):
        attribute = too_many_attributes.attributes.add()
        attribute.key, attribute.value.int_value = f"k{number}", number
    for _ in range(SMALL_LIMITS.max_events_per_span + 1):
        too_many_events.events.add().name = "event"
    for _ in range(SMALL_LIMITS.max_links_per_span + 1):
        too_many_links.links.add().trace_id = b"\1" * 16
    return traces, [f"good {index}" for index in range(valid)]


# --- body size after decompression -------------------------------------------------------------------------------


def test_a_small_gzip_bomb_is_answered_413_under_the_default_limit(
    recorder: RecordingConsumer, telemetry: Telemetry
) -> None:
    bomb = _gzip_bomb(DEFAULT_MAX_REQUEST_BODY_BYTES + 8 * MIB)
    assert len(bomb) < 64 * 1024  # tens of kilobytes on the wire

    response = _post(recorder, telemetry, bomb, limits=RequestLimits(), **{"Content-Encoding": "gzip"})

    assert response.status_code == 413
    status = _protobuf_status(response)
    assert status.message == f"decompressed request body exceeds {DEFAULT_MAX_REQUEST_BODY_BYTES} bytes"
    assert recorder.received == []


def test_inflating_a_bomb_holds_no_more_than_the_limit() -> None:
    limit = 2 * MIB
    bomb = _gzip_bomb(64 * MIB)

    tracemalloc.start()
    try:
        with pytest.raises(BodyTooLarge):
            decompress(bomb, "gzip", limit)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    # The inflater's output is capped at the limit (plus one byte to see it passed); its buffer may
    # briefly be twice that while it grows, but nothing near the 64 MiB the bomb holds.
    assert peak < 3 * limit


def test_an_endless_raw_body_is_read_no_further_than_the_limit(recorder: RecordingConsumer) -> None:
    limit = 64 * 1024
    chunk = b"\0" * 4096
    settings = HttpSettings(max_request_body_size=limit)
    # As HttpServer serves it: each request with its share of the listener's bytes in flight.
    app = Admission(
        create_app(settings, Ingest(recorder, Telemetry(), RECEIVER, "http")),
        InFlightBudget(settings.admission.request_limit_bytes),
    )
    received = 0
    sent: list[dict[str, object]] = []

    async def receive() -> dict[str, object]:
        nonlocal received
        received += len(chunk)
        return {"type": "http.request", "body": chunk, "more_body": True}  # never ends

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "path": PATH,
        "raw_path": PATH.encode(),
        "query_string": b"",
        "headers": [(b"content-type", PROTOBUF.encode())],  # no Content-Length: streamed
        "scheme": "http",
        "server": ("127.0.0.1", 4318),
    }

    run(app(scope, receive, send))  # type: ignore[arg-type]

    assert sent[0]["status"] == 413
    assert received <= limit + len(chunk)
    assert recorder.received == []


def test_a_declared_length_over_the_limit_is_refused_before_reading(
    recorder: RecordingConsumer, telemetry: Telemetry
) -> None:
    body = make_traces(50).SerializeToString()
    settings = HttpSettings(endpoint=ANY_LOOPBACK_PORT, max_request_body_size=len(body) - 1)

    response = _post(recorder, telemetry, body, settings=settings)

    assert response.status_code == 413
    assert recorder.received == []


def test_an_oversized_grpc_message_is_answered_resource_exhausted(
    recorder: RecordingConsumer, telemetry: Telemetry
) -> None:
    settings = GrpcSettings(endpoint=ANY_LOOPBACK_PORT, max_recv_msg_size_mib=1)
    body = make_traces(1, name="x" * (2 * MIB)).SerializeToString()

    outcome = _export(recorder, telemetry, body, RequestLimits(), settings)

    assert isinstance(outcome, grpc.aio.AioRpcError)
    assert outcome.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert recorder.received == []


def test_a_compressed_grpc_message_over_the_limit_once_inflated_is_answered_resource_exhausted(
    recorder: RecordingConsumer, telemetry: Telemetry
) -> None:
    settings = GrpcSettings(endpoint=ANY_LOOPBACK_PORT, max_recv_msg_size_mib=1)
    body = make_traces(1, name="x" * (2 * MIB)).SerializeToString()
    assert len(gzip.compress(body)) < MIB  # only the inflated message is over

    outcome = _export(recorder, telemetry, body, RequestLimits(), settings, compression=grpc.Compression.Gzip)

    assert isinstance(outcome, grpc.aio.AioRpcError)
    assert outcome.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert recorder.received == []


# --- messages per request ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shape", "message"),
    [
        ((4, 1, 1), "request holds more than 3 resource spans (max_resource_spans_per_request)"),
        ((1, 5, 1), "request holds more than 4 scope spans (max_scope_spans_per_request)"),
        ((1, 1, 11), "request holds more than 10 spans (max_spans_per_request)"),
    ],
)
def test_too_many_messages_over_http_is_answered_413(
    recorder: RecordingConsumer, telemetry: Telemetry, shape: tuple[int, int, int], message: str
) -> None:
    body = _traces(*shape).SerializeToString()

    response = _post(recorder, telemetry, body)

    assert response.status_code == 413
    status = _protobuf_status(response)
    assert (status.code, status.message) == (code_pb2.INVALID_ARGUMENT, message)
    assert recorder.received == []


def test_too_many_spans_in_json_is_answered_413(recorder: RecordingConsumer, telemetry: Telemetry) -> None:
    response = _post(recorder, telemetry, encode_otlp_json(_traces(1, 1, 11)), JSON)

    assert response.status_code == 413
    status = json_format.Parse(response.content, status_pb2.Status())
    assert status.message == "request holds more than 10 spans (max_spans_per_request)"


def test_too_many_spans_over_grpc_is_answered_invalid_argument(
    recorder: RecordingConsumer, telemetry: Telemetry
) -> None:
    outcome = _export(recorder, telemetry, _traces(1, 2, 6).SerializeToString())

    assert isinstance(outcome, grpc.aio.AioRpcError)
    assert outcome.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert outcome.details() == "request holds more than 10 spans (max_spans_per_request)"
    assert recorder.received == []


def test_requests_at_every_message_limit_are_accepted(recorder: RecordingConsumer, telemetry: Telemetry) -> None:
    # 2 resources x 2 scopes x 2 spans = 8 spans; then one more span in the last scope: 9 of 10 allowed.
    traces = _traces(2, 2, 2)
    traces.resource_spans[0].scope_spans[0].spans.extend(make_traces(1).resource_spans[0].scope_spans[0].spans)

    response = _post(recorder, telemetry, traces.SerializeToString())

    assert response.status_code == 200
    assert len(recorder.spans()) == 9


def test_empty_messages_are_counted_on_the_wire_before_decoding() -> None:
    # Two bytes per empty span on the wire; decoded, each would be a whole object.
    empty = TracesData()
    scope_spans = empty.resource_spans.add().scope_spans.add()
    for _ in range(1000):
        scope_spans.spans.add()
    encoded = empty.SerializeToString()

    with pytest.raises(CountExceeded) as raised:
        check_counts(encoded, 10, 10, 999)
    assert (raised.value.kind, raised.value.limit) == ("spans", 999)
    check_counts(encoded, 10, 10, 1000)


@pytest.mark.parametrize("body", [b"\xff" * 64, b"\x0a\x7f\x12", b"\x0b\x0c", b"\x0a\x02\x12\x05"])
def test_the_wire_count_leaves_malformed_bodies_to_the_decoder(body: bytes) -> None:
    check_counts(body, 1, 1, 1)  # no exception: the decoder says what is wrong


# --- attributes, events and links per span: partial success ------------------------------------------------------


def test_spans_over_per_span_limits_are_rejected_and_the_rest_accepted_over_http(
    recorder: RecordingConsumer, telemetry: Telemetry
) -> None:
    traces, good = _with_oversized_spans(4)

    response = _post(recorder, telemetry, traces.SerializeToString())

    assert response.status_code == 200
    answer = ExportTraceServiceResponse.FromString(response.content)
    assert answer.partial_success.rejected_spans == 3
    assert answer.partial_success.error_message == (
        "3 span(s) rejected as invalid: 1 over max_attributes_per_span (5), "
        "1 over max_events_per_span (2), 1 over max_links_per_span (2)"
    )
    assert [span.name for span in recorder.spans()] == good
    assert accepted(telemetry, "http") == 4
    for limit in ("max_attributes_per_span", "max_events_per_span", "max_links_per_span"):
        assert telemetry.value("otelcol_receiver_refused_spans", receiver=RECEIVER, transport="http", reason=limit) == 1
    assert refused(telemetry, "http") == 0  # the pipeline refused nothing


def test_partial_success_in_json(recorder: RecordingConsumer, telemetry: Telemetry) -> None:
    traces, good = _with_oversized_spans(2)

    response = _post(recorder, telemetry, encode_otlp_json(traces), JSON)

    assert response.status_code == 200
    answer = json_format.Parse(response.content, ExportTraceServiceResponse())
    assert answer.partial_success.rejected_spans == 3
    assert [span.name for span in recorder.spans()] == good


def test_spans_over_per_span_limits_are_rejected_and_the_rest_accepted_over_grpc(
    recorder: RecordingConsumer, telemetry: Telemetry
) -> None:
    traces, good = _with_oversized_spans(3)

    outcome = _export(recorder, telemetry, traces.SerializeToString())

    assert isinstance(outcome, ExportTraceServiceResponse)
    assert outcome.partial_success.rejected_spans == 3
    assert "max_attributes_per_span (5)" in outcome.partial_success.error_message
    assert [span.name for span in recorder.spans()] == good
    assert accepted(telemetry, "grpc") == 3


def test_a_request_whose_every_span_is_rejected_is_still_answered_200(
    recorder: RecordingConsumer, telemetry: Telemetry
) -> None:
    traces, _ = _with_oversized_spans(0)

    response = _post(recorder, telemetry, traces.SerializeToString())

    assert response.status_code == 200
    assert ExportTraceServiceResponse.FromString(response.content).partial_success.rejected_spans == 3
    assert recorder.received == []


def test_the_sdk_exporter_gets_its_valid_spans_through_past_an_oversized_one(recorder: RecordingConsumer) -> None:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    limits = RequestLimits(max_attributes_per_span=8)

    async def scenario() -> None:
        server = await _serve_http(recorder, Telemetry(), limits)
        try:
            exporter = OTLPSpanExporter(endpoint=f"http://127.0.0.1:{server.port}{PATH}", timeout=5)
            provider = TracerProvider(
                resource=Resource.create({"service.name": "limits"}), span_limits=SpanLimits(max_attributes=64)
            )
            provider.add_span_processor(SimpleSpanProcessor(exporter))
            tracer = provider.get_tracer("tests")

            def emit() -> None:
                with tracer.start_as_current_span("fine") as span:
                    span.set_attribute("a", 1)
                with tracer.start_as_current_span("bloated") as span:
                    for number in range(20):
                        span.set_attribute(f"k{number}", number)
                with tracer.start_as_current_span("fine too"):
                    pass
                provider.shutdown()

            await asyncio.to_thread(emit)
        finally:
            await server.stop()

    run(scenario())

    assert [span.name for span in recorder.spans()] == ["fine", "fine too"]


# --- config mistakes ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ({"limits": {"max_spans_per_request": 0}}, "receivers.otlp.limits.max_spans_per_request: must be at least 1"),
        (
            {"limits": {"max_attributes_per_span": -1}},
            "receivers.otlp.limits.max_attributes_per_span: must be at least 1",
        ),
        (
            {"limits": {"max_events": 10}},
            "receivers.otlp.limits.max_events: unknown key; expected one of max_attributes_per_span, "
            "max_events_per_span, max_links_per_span, max_resource_spans_per_request, "
            "max_scope_spans_per_request, max_spans_per_request",
        ),
        (
            {"protocols": {"http": {"max_request_body_size": 0}}},
            "receivers.otlp.protocols.http.max_request_body_size: must be at least 1",
        ),
        (
            {"protocols": {"grpc": {"max_recv_msg_size_mib": 0}}},
            "receivers.otlp.protocols.grpc.max_recv_msg_size_mib: must be at least 1",
        ),
    ],
)
def test_each_limit_mistake_is_one_line(raw: dict[str, object], problem: str) -> None:
    with pytest.raises(ConfigError) as raised:
        decode(OtlpReceiverConfig, raw, "receivers.otlp")
    assert [str(p) for p in raised.value.problems] == [problem]


def test_limits_default_to_the_named_constants() -> None:
    config = decode(OtlpReceiverConfig, {"protocols": {"http": None}}, "receivers.otlp")
    assert config.limits == RequestLimits()
    assert config.limits.max_spans_per_request == 100_000
    assert config.limits.max_attributes_per_span == 1024


def test_a_protobuf_group_does_not_hide_spans_from_the_count() -> None:
    from collector.receivers.otlp import wire

    def field(number: int, payload: bytes) -> bytes:
        length, encoded = len(payload), bytearray()
        while True:
            encoded.append((length & 0x7F) | (0x80 if length > 0x7F else 0))
            length >>= 7
            if not length:
                break
        return bytes([(number << 3) | 2]) + bytes(encoded) + payload

    # An empty group (field 15) in front of 3,000 empty spans: the decoder reads past it, so must the count.
    body = field(1, field(2, b"\x7b\x7c" + b"\x12\x00" * 3000))
    assert len(TracesData.FromString(body).resource_spans[0].scope_spans[0].spans) == 3000
    with pytest.raises(wire.CountExceeded):
        wire.check_counts(body, 10, 10, 1000)
