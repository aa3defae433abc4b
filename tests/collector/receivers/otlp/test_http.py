"""OTLP/HTTP POST /v1/traces served on loopback: one test per answer the OTLP specification gives."""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import AsyncIterator

import httpx
import pytest
from google.protobuf import json_format
from google.rpc import code_pb2, status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.proto.trace.v1.trace_pb2 import TracesData

from collector.errors import ConsumeError, PermanentError, QueueFullError, RetryableError
from collector.receivers.otlp.codec import JSON, PROTOBUF
from collector.receivers.otlp.http import DECODE_IN_THREAD_BYTES
from collector.telemetry import Telemetry
from tests.collector.receivers.otlp.support import SAMPLE_JSON, accepted, http_receiver, refused, run
from tests.conftest import RecordingConsumer, make_traces

PATH = "/v1/traces"


@pytest.fixture
def telemetry() -> Telemetry:
    return Telemetry()


async def _post(
    recorder: RecordingConsumer,
    telemetry: Telemetry,
    body: bytes,
    headers: dict[str, str],
    max_request_body_size: int | None = None,
) -> httpx.Response:
    async with http_receiver(recorder, telemetry, max_request_body_size) as client:
        return await client.post(PATH, content=body, headers=headers)


def _post_sync(
    recorder: RecordingConsumer,
    telemetry: Telemetry,
    body: bytes,
    content_type: str,
    max_request_body_size: int | None = None,
    **headers: str,
) -> httpx.Response:
    all_headers = {"Content-Type": content_type, **{k.replace("_", "-"): v for k, v in headers.items()}}
    return run(_post(recorder, telemetry, body, all_headers, max_request_body_size))


def _status(response: httpx.Response, content_type: str) -> status_pb2.Status:
    """The google.rpc.Status in an error response, which must be in the request's encoding."""
    assert response.headers["content-type"] == content_type
    if content_type == JSON:
        return json_format.Parse(response.content, status_pb2.Status())
    return status_pb2.Status.FromString(response.content)


# --- 200 ---------------------------------------------------------------------------------------------------------


def test_protobuf_export_is_answered_200_with_a_protobuf_response(
    recorder: RecordingConsumer, telemetry: Telemetry
) -> None:
    traces = make_traces(3)

    response = _post_sync(recorder, telemetry, traces.SerializeToString(), PROTOBUF)

    assert response.status_code == 200
    assert response.headers["content-type"] == PROTOBUF
    assert ExportTraceServiceResponse.FromString(response.content) == ExportTraceServiceResponse()
    assert recorder.received == [traces]
    assert len(recorder.spans()) == 3
    assert accepted(telemetry, "http") == 3
    assert refused(telemetry, "http") == 0


def test_json_export_is_answered_200_with_a_json_response(recorder: RecordingConsumer, telemetry: Telemetry) -> None:
    response = _post_sync(recorder, telemetry, SAMPLE_JSON.read_bytes(), JSON)

    assert response.status_code == 200
    assert response.headers["content-type"] == JSON
    assert response.json() == {}
    assert [(s.name, s.span_id.hex(), s.parent_span_id.hex()) for s in recorder.spans()] == [
        ("invoke_agent support", "eee19b7ec3c1b174", ""),
        ("chat gpt-4o-mini", "b7ad6b7169203331", "eee19b7ec3c1b174"),
        ("execute_tool get_weather", "5fb397be34d26b51", "eee19b7ec3c1b174"),
    ]
    assert {s.trace_id.hex() for s in recorder.spans()} == {"5b8efff798038103d269b633813fc60c"}
    assert accepted(telemetry, "http") == 3


def test_content_type_parameters_and_case_are_ignored(recorder: RecordingConsumer, telemetry: Telemetry) -> None:
    response = _post_sync(recorder, telemetry, SAMPLE_JSON.read_bytes(), "Application/JSON; charset=utf-8")

    assert response.status_code == 200
    assert response.headers["content-type"] == JSON
    assert len(recorder.spans()) == 3


def test_gzip_protobuf_export_is_accepted(recorder: RecordingConsumer, telemetry: Telemetry) -> None:
    traces = make_traces(4)

    response = _post_sync(
        recorder, telemetry, gzip.compress(traces.SerializeToString()), PROTOBUF, content_encoding="gzip"
    )

    assert response.status_code == 200
    assert recorder.received == [traces]
    assert accepted(telemetry, "http") == 4


def test_deflate_json_export_is_accepted(recorder: RecordingConsumer, telemetry: Telemetry) -> None:
    response = _post_sync(
        recorder, telemetry, zlib.compress(SAMPLE_JSON.read_bytes()), JSON, content_encoding="deflate"
    )

    assert response.status_code == 200
    assert response.json() == {}
    assert len(recorder.spans()) == 3


def test_request_without_spans_is_answered_200_without_reaching_the_pipeline(
    recorder: RecordingConsumer, telemetry: Telemetry
) -> None:
    recorder.fail_with = RetryableError("must not be asked")

    response = _post_sync(recorder, telemetry, b"{}", JSON)

    assert response.status_code == 200
    assert response.json() == {}
    assert recorder.received == []
    assert (accepted(telemetry, "http"), refused(telemetry, "http")) == (0, 0)


def test_body_exactly_at_the_limit_is_accepted(recorder: RecordingConsumer, telemetry: Telemetry) -> None:
    body = make_traces(2).SerializeToString()

    response = _post_sync(recorder, telemetry, body, PROTOBUF, max_request_body_size=len(body))

    assert response.status_code == 200
    assert len(recorder.spans()) == 2


# --- 400 ---------------------------------------------------------------------------------------------------------


def test_undecodable_protobuf_is_answered_400_with_a_protobuf_status(
    recorder: RecordingConsumer, telemetry: Telemetry
) -> None:
    response = _post_sync(recorder, telemetry, b"\xff\xff\xff not protobuf", PROTOBUF)

    assert response.status_code == 400
    status = _status(response, PROTOBUF)
    assert status.code == code_pb2.INVALID_ARGUMENT
    assert status.message.startswith("invalid protobuf body: ")
    assert recorder.received == []
    assert (accepted(telemetry, "http"), refused(telemetry, "http")) == (0, 0)


def test_undecodable_json_is_answered_400_with_a_json_status(recorder: RecordingConsumer, telemetry: Telemetry) -> None:
    response = _post_sync(recorder, telemetry, b'{"resourceSpans": [', JSON)

    assert response.status_code == 400
    status = _status(response, JSON)
    assert status.code == code_pb2.INVALID_ARGUMENT
    assert status.message.startswith("invalid JSON body: ")
    assert recorder.received == []


def test_bad_hex_id_is_answered_400(recorder: RecordingConsumer, telemetry: Telemetry) -> None:
    document = json.loads(SAMPLE_JSON.read_bytes())
    document["resourceSpans"][0]["scopeSpans"][0]["spans"][1]["spanId"] = "not-hex-at-all!!"

    response = _post_sync(recorder, telemetry, json.dumps(document).encode(), JSON)

    assert response.status_code == 400
    status = _status(response, JSON)
    assert status.code == code_pb2.INVALID_ARGUMENT
    assert status.message == 'spanId "not-hex-at-all!!" is not hex'
    assert recorder.received == []


def test_unsupported_content_encoding_is_answered_400(recorder: RecordingConsumer, telemetry: Telemetry) -> None:
    response = _post_sync(recorder, telemetry, make_traces(1).SerializeToString(), PROTOBUF, content_encoding="br")

    assert response.status_code == 400
    status = _status(response, PROTOBUF)
    assert status.code == code_pb2.INVALID_ARGUMENT
    assert status.message == 'unsupported Content-Encoding "br"; use gzip, deflate or none'
    assert recorder.received == []


def test_corrupt_gzip_is_answered_400(recorder: RecordingConsumer, telemetry: Telemetry) -> None:
    corrupt = gzip.compress(make_traces(2).SerializeToString())[:-10]

    response = _post_sync(recorder, telemetry, corrupt, PROTOBUF, content_encoding="gzip")

    assert response.status_code == 400
    status = _status(response, PROTOBUF)
    assert status.code == code_pb2.INVALID_ARGUMENT
    assert status.message == "invalid gzip body: truncated"
    assert recorder.received == []


def test_permanent_pipeline_error_is_answered_400(recorder: RecordingConsumer, telemetry: Telemetry) -> None:
    recorder.fail_with = PermanentError("rejected by policy")

    response = _post_sync(recorder, telemetry, make_traces(3).SerializeToString(), PROTOBUF)

    assert response.status_code == 400
    assert "retry-after" not in response.headers
    status = _status(response, PROTOBUF)
    assert status.code == code_pb2.INVALID_ARGUMENT
    assert status.message == "rejected by policy"
    assert accepted(telemetry, "http") == 0
    assert refused(telemetry, "http") == 3


def test_deeply_nested_json_is_answered_400(recorder: RecordingConsumer, telemetry: Telemetry) -> None:
    depth = 100_000
    body = b'{"resourceSpans": ' + b"[" * depth + b"]" * depth + b"}"

    response = _post_sync(recorder, telemetry, body, JSON)

    assert response.status_code == 400
    assert _status(response, JSON).code == code_pb2.INVALID_ARGUMENT


# --- 413 ---------------------------------------------------------------------------------------------------------


def test_body_over_the_limit_is_answered_413(recorder: RecordingConsumer, telemetry: Telemetry) -> None:
    body = make_traces(20).SerializeToString()
    limit = len(body) - 1

    response = _post_sync(recorder, telemetry, body, PROTOBUF, max_request_body_size=limit)

    assert response.status_code == 413
    status = _status(response, PROTOBUF)
    assert status.code == code_pb2.INVALID_ARGUMENT
    assert status.message == f"request body exceeds {limit} bytes"
    assert recorder.received == []


def test_streamed_body_over_the_limit_without_content_length_is_answered_413(
    recorder: RecordingConsumer, telemetry: Telemetry
) -> None:
    chunk = make_traces(20).SerializeToString()
    limit = 4 * len(chunk)

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield chunk

    async def scenario() -> httpx.Response:
        async with http_receiver(recorder, telemetry, limit) as client:
            request = client.build_request("POST", PATH, content=chunks(), headers={"Content-Type": PROTOBUF})
            assert "content-length" not in request.headers
            assert request.headers["transfer-encoding"] == "chunked"
            return await client.send(request)

    response = run(scenario())

    assert response.status_code == 413
    status = _status(response, PROTOBUF)
    assert status.message == f"request body exceeds {limit} bytes"
    assert recorder.received == []


def test_gzip_bomb_is_answered_413(recorder: RecordingConsumer, telemetry: Telemetry) -> None:
    limit = 64 * 1024
    bomb = gzip.compress(b"\x0a" * (16 * 1024 * 1024))
    assert len(bomb) < limit  # only the decompressed size is over

    response = _post_sync(recorder, telemetry, bomb, PROTOBUF, max_request_body_size=limit, content_encoding="gzip")

    assert response.status_code == 413
    status = _status(response, PROTOBUF)
    assert status.code == code_pb2.INVALID_ARGUMENT
    assert status.message == f"decompressed request body exceeds {limit} bytes"
    assert recorder.received == []


def test_json_body_over_the_limit_gets_a_json_413(recorder: RecordingConsumer, telemetry: Telemetry) -> None:
    body = SAMPLE_JSON.read_bytes()

    response = _post_sync(recorder, telemetry, body, JSON, max_request_body_size=100)

    assert response.status_code == 413
    assert _status(response, JSON).message == "request body exceeds 100 bytes"


# --- 415, 405, 404 -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("content_type", ["text/plain", "application/grpc", "application/xml", ""])
def test_unknown_content_type_is_answered_415(
    recorder: RecordingConsumer, telemetry: Telemetry, content_type: str
) -> None:
    async def scenario() -> httpx.Response:
        async with http_receiver(recorder, telemetry) as client:
            request = client.build_request("POST", PATH, content=make_traces(1).SerializeToString())
            if content_type:
                request.headers["Content-Type"] = content_type
            else:
                assert "content-type" not in request.headers
            return await client.send(request)

    response = run(scenario())

    assert response.status_code == 415
    assert response.text == "415 unsupported media type, supported: [application/json, application/x-protobuf]"
    assert recorder.received == []


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
def test_other_methods_are_answered_405(recorder: RecordingConsumer, telemetry: Telemetry, method: str) -> None:
    async def scenario() -> httpx.Response:
        async with http_receiver(recorder, telemetry) as client:
            return await client.request(
                method, PATH, content=make_traces(1).SerializeToString(), headers={"Content-Type": PROTOBUF}
            )

    response = run(scenario())

    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert response.text == "405 method not allowed, supported: [POST]"
    assert recorder.received == []


def test_other_paths_are_answered_404(recorder: RecordingConsumer, telemetry: Telemetry) -> None:
    async def scenario() -> httpx.Response:
        async with http_receiver(recorder, telemetry) as client:
            return await client.post(
                "/v1/metrics", content=make_traces(1).SerializeToString(), headers={"Content-Type": PROTOBUF}
            )

    assert run(scenario()).status_code == 404
    assert recorder.received == []


# --- 503 ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "retry_after"),
    [
        (RetryableError("store restarting", retry_after=7), "7"),
        (RetryableError("store restarting", retry_after=0.2), "1"),
        (QueueFullError("sending queue is full (8 of 10 spans held)", retry_after=1.0), "1"),
    ],
)
def test_retryable_pipeline_error_is_answered_503_with_retry_after(
    recorder: RecordingConsumer, telemetry: Telemetry, error: ConsumeError, retry_after: str
) -> None:
    recorder.fail_with = error

    response = _post_sync(recorder, telemetry, make_traces(3).SerializeToString(), PROTOBUF)

    assert response.status_code == 503
    assert response.headers["retry-after"] == retry_after
    status = _status(response, PROTOBUF)
    assert status.code == code_pb2.UNAVAILABLE
    assert status.message == str(error)
    assert accepted(telemetry, "http") == 0
    assert refused(telemetry, "http") == 3


def test_retryable_error_without_a_delay_is_answered_503_without_retry_after(
    recorder: RecordingConsumer, telemetry: Telemetry
) -> None:
    recorder.fail_with = QueueFullError("the exporter is shutting down")

    response = _post_sync(recorder, telemetry, SAMPLE_JSON.read_bytes(), JSON)

    assert response.status_code == 503
    assert "retry-after" not in response.headers
    status = _status(response, JSON)
    assert status.code == code_pb2.UNAVAILABLE
    assert status.message == "the exporter is shutting down"
    assert refused(telemetry, "http") == 3


def test_retry_after_is_never_shorter_than_the_delay_asked_for(
    recorder: RecordingConsumer, telemetry: Telemetry
) -> None:
    recorder.fail_with = RetryableError("store restarting", retry_after=2.5)

    response = _post_sync(recorder, telemetry, make_traces(1).SerializeToString(), PROTOBUF)

    assert response.status_code == 503
    assert int(response.headers["retry-after"]) >= 2.5


def test_refused_then_accepted_counts_each_outcome(recorder: RecordingConsumer, telemetry: Telemetry) -> None:
    async def scenario() -> tuple[int, int]:
        async with http_receiver(recorder, telemetry) as client:
            headers = {"Content-Type": PROTOBUF}
            recorder.fail_with = RetryableError("busy", retry_after=1)
            first = await client.post(PATH, content=make_traces(2).SerializeToString(), headers=headers)
            recorder.fail_with = None
            second = await client.post(PATH, content=make_traces(5).SerializeToString(), headers=headers)
            return first.status_code, second.status_code

    assert run(scenario()) == (503, 200)
    assert refused(telemetry, "http") == 2
    assert accepted(telemetry, "http") == 5
    assert len(recorder.received) == 1
    assert isinstance(recorder.received[0], TracesData)
    assert len(recorder.spans()) == 5


def test_a_component_bug_is_answered_503_so_the_client_keeps_its_data(
    recorder: RecordingConsumer, telemetry: Telemetry
) -> None:
    recorder.fail_with = KeyError("resource")

    response = _post_sync(recorder, telemetry, make_traces(4).SerializeToString(), PROTOBUF)

    assert response.status_code == 503
    status = _status(response, PROTOBUF)
    assert status.code == code_pb2.UNAVAILABLE
    assert status.message == "internal error in the pipeline: KeyError"
    assert refused(telemetry, "http") == 4


def test_a_large_json_body_decodes_off_the_event_loop(recorder: RecordingConsumer, telemetry: Telemetry) -> None:
    span = json.loads(SAMPLE_JSON.read_text())["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    spans = [{**span, "spanId": f"{i + 1:016x}"} for i in range(3000)]
    body = json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": spans}]}]}).encode()
    assert len(body) > DECODE_IN_THREAD_BYTES

    response = _post_sync(recorder, telemetry, body, JSON)

    assert response.status_code == 200
    assert len(recorder.spans()) == 3000
