"""Fuzz the OTLP/HTTP receiver end to end, on loopback: a client's mistake is a 4xx, never a 5xx.

A few dozen hostile requests per signal (random and mutated bodies of traces, logs
and metrics in both encodings, compressed or not, odd content types and encodings)
go to one real receiver serving all three.
Every answer is below 500; every 400 and 413 carries a google.rpc.Status with a
message, in the request's encoding. 405 and 415 answer with the OpenTelemetry
Collector's plain-text messages (the receiver's documented behaviour).
"""

from __future__ import annotations

import asyncio
import gzip
import json
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from google.protobuf import json_format
from google.rpc import status_pb2
from hypothesis import given
from hypothesis import strategies as st

from collector.httpserver import HttpServer
from collector.receivers.otlp.codec import JSON, PROTOBUF
from collector.receivers.otlp.config import HttpSettings
from collector.receivers.otlp.http import create_app
from collector.receivers.otlp.ingest import Ingest
from collector.signals import SIGNALS, Signal
from collector.telemetry import Telemetry
from tests.collector.receivers.otlp.support import ANY_LOOPBACK_PORT
from tests.conftest import RecordingConsumer
from tests.fuzz.otlp_inputs import SIGNAL_DATA, json_documents, mutated_bytes, mutated_json, to_otlp_json
from tests.fuzz.profiles import fuzz_settings
from tests.fuzz.test_otlp_decoders import HUGE_INTEGER_BODY, LONE_SURROGATE_KEY_BODY

BODY_LIMIT = 64 * 1024
CLIENT_TIMEOUT_SECONDS = 10.0
START_TIMEOUT_SECONDS = 30.0
TEXT_ANSWERS = (405, 415)


@dataclass(frozen=True)
class Receiver:
    urls: dict[Signal, str]
    client: httpx.Client

    @property
    def url(self) -> str:
        return self.urls["traces"]


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    """One OTLP/HTTP receiver of every signal on a free loopback port, served from its own event loop thread."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True, name="fuzz-otlp-http")
    thread.start()
    settings = HttpSettings(endpoint=ANY_LOOPBACK_PORT, max_request_body_size=BODY_LIMIT)
    telemetry = Telemetry()
    ingests = [Ingest(RecordingConsumer(), telemetry, "otlp", "http", signal=signal) for signal in SIGNALS]
    server = HttpServer(create_app(settings, *ingests), settings)
    asyncio.run_coroutine_threadsafe(server.start(), loop).result(START_TIMEOUT_SECONDS)
    try:
        with httpx.Client(timeout=CLIENT_TIMEOUT_SECONDS) as client:
            base = f"http://127.0.0.1:{server.port}"
            yield Receiver({signal: base + settings.url_path(signal) for signal in SIGNALS}, client)
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result(START_TIMEOUT_SECONDS)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(START_TIMEOUT_SECONDS)
        loop.close()


def post(
    receiver: Receiver, body: bytes, content_type: str, encoding: str = "", signal: Signal = "traces"
) -> httpx.Response:
    headers = {"content-type": content_type}
    if encoding:
        headers["content-encoding"] = encoding
    return receiver.client.post(receiver.urls[signal], content=body, headers=headers)


def assert_clean_answer(response: httpx.Response, content_type: str) -> None:
    """Below 500; a 4xx other than 405/415 carries a Status with a message in the request's encoding."""
    assert response.status_code < 500, f"{response.status_code} {response.text[:300]}"
    if response.status_code < 400 or response.status_code in TEXT_ANSWERS:
        return
    media_type = content_type.split(";")[0].strip().lower()
    assert response.headers["content-type"].startswith(media_type)
    if media_type == JSON:
        status = json_format.Parse(response.content, status_pb2.Status())
    else:
        status = status_pb2.Status.FromString(response.content)
    assert status.message, "a rejection must say why"


def _encode(body: bytes, encoding: str) -> bytes:
    if encoding == "gzip":
        return gzip.compress(body)
    if encoding == "deflate":
        return zlib.compress(body)
    return body


@st.composite
def hostile_requests(draw: st.DrawFn, signal: Signal = "traces") -> tuple[bytes, str, str]:
    """(body, content type, content encoding) of a ``signal`` request a confused or hostile client might send."""
    valid_data = SIGNAL_DATA[signal]
    content_type = draw(
        st.sampled_from([PROTOBUF, JSON, "application/json; charset=utf-8", "Application/X-Protobuf", "text/plain"])
    )
    kind = draw(st.sampled_from(["random", "mutated_protobuf", "mutated_json", "random_json", "valid"]))
    if kind == "random":
        body = draw(st.binary(max_size=512))
    elif kind == "mutated_protobuf":
        body = draw(mutated_bytes(draw(valid_data).SerializeToString()))
    elif kind == "mutated_json":
        body = json.dumps(draw(mutated_json(to_otlp_json(draw(valid_data))))).encode()
    elif kind == "random_json":
        body = json.dumps(draw(json_documents)).encode()
    else:
        data = draw(valid_data)
        body = json.dumps(to_otlp_json(data)).encode() if "json" in content_type.lower() else data.SerializeToString()
    encoding = draw(st.sampled_from(["", "gzip", "deflate", "identity", "br"]))
    body = _encode(body, encoding)
    if encoding in ("gzip", "deflate") and draw(st.booleans()):
        body = draw(mutated_bytes(body))
    return body, content_type, encoding


@fuzz_settings(100)
@given(hostile_requests())
def test_hostile_requests_get_a_clean_answer(receiver: Receiver, request: tuple[bytes, str, str]) -> None:
    body, content_type, encoding = request
    assert_clean_answer(post(receiver, body, content_type, encoding), content_type)


@pytest.mark.parametrize("signal", ["logs", "metrics"])
@fuzz_settings(60)
@given(data=st.data())
def test_hostile_logs_and_metrics_requests_get_a_clean_answer(
    receiver: Receiver, signal: Signal, data: st.DataObject
) -> None:
    body, content_type, encoding = data.draw(hostile_requests(signal))
    assert_clean_answer(post(receiver, body, content_type, encoding, signal), content_type)


@pytest.mark.parametrize("content_type", [PROTOBUF, JSON])
def test_a_gzip_bomb_is_413_with_a_status(receiver: Receiver, content_type: str) -> None:
    response = post(receiver, gzip.compress(b"\0" * (16 * BODY_LIMIT)), content_type, "gzip")
    assert response.status_code == 413
    assert_clean_answer(response, content_type)


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_other_methods_are_405(receiver: Receiver, method: str) -> None:
    assert receiver.client.request(method, receiver.url).status_code == 405


@pytest.mark.parametrize("body", [HUGE_INTEGER_BODY, LONE_SURROGATE_KEY_BODY], ids=["huge_integer", "lone_surrogate"])
def test_inputs_the_fuzzers_found_get_a_4xx(receiver: Receiver, body: bytes) -> None:
    response = post(receiver, body, JSON)
    assert response.status_code == 400
    assert_clean_answer(response, JSON)


@pytest.mark.parametrize("signal", SIGNALS)
@fuzz_settings(10)
@given(data=st.data())
def test_valid_bodies_of_each_signal_are_accepted_at_its_path(
    receiver: Receiver, signal: Signal, data: st.DataObject
) -> None:
    message = data.draw(SIGNAL_DATA[signal])
    assert post(receiver, message.SerializeToString(), PROTOBUF, signal=signal).status_code == 200
    assert post(receiver, json.dumps(to_otlp_json(message)).encode(), JSON, signal=signal).status_code == 200
