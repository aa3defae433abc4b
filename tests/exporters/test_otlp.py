"""The otlp exporter over real gRPC on loopback: to a second collector, to a scripted trace service.

Covers that spans arrive unchanged (gzip and uncompressed), that headers arrive
as metadata and never show anywhere else, which status codes are retried (and
after how long) and which drop the batch, partial successes, TLS, and the
cutting of large batches into requests a receiver accepts.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import TracesData

import exporters.otlp
from collector.component import ComponentSettings
from collector.config.decode import decode
from collector.config.problems import ConfigError
from collector.errors import PermanentError, RetryableError, StartError
from collector.pdata import iter_spans
from collector.queue import Batch
from collector.telemetry import Telemetry
from exporters.otlp.config import OtlpExporterConfig
from exporters.otlp.requests import cut_requests
from exporters.otlp.sender import OtlpSender
from exporters.otlp.status import RETRYABLE_CODES, error_for
from tests.conftest import RunningService, make_traces
from tests.exporters.otlp_fixtures import every_field_traces, logged_traces, make_certificates, set_attributes
from tests.exporters.trace_server import Answer, TraceServer

SECRET = "Bearer sk-live-7f3a9c2e51d04b8f"
QUICK_QUEUE = {"batch": {"flush_timeout": "10ms", "min_size": 1000}}
FAST_RETRY = {"initial_interval": "10ms", "max_interval": "20ms", "max_elapsed_time": "20s"}
# A backoff this slow would outlast max_elapsed_time: only a server's RetryInfo gets the batch retried.
SLOW_RETRY = {"initial_interval": "60s", "max_interval": "60s", "max_elapsed_time": "20s"}
SCENARIO_TIMEOUT = 60.0


@pytest.fixture
def server() -> Iterator[TraceServer]:
    running = TraceServer()
    yield running
    running.stop()


def _config(endpoint: str, **raw: Any) -> OtlpExporterConfig:
    settings: dict[str, Any] = {
        "endpoint": endpoint,
        "tls": {"insecure": True},
        "sending_queue": QUICK_QUEUE,
        "retry_on_failure": FAST_RETRY,
    }
    settings.update(raw)
    return decode(OtlpExporterConfig, settings, "exporters.otlp")


def _export(settings: ComponentSettings, config: OtlpExporterConfig, *batches: TracesData) -> None:
    """Start an otlp exporter, hand it ``batches``, and shut it down (which sends everything queued)."""
    exporter = exporters.otlp.factory.create(settings, config)

    async def scenario() -> None:
        await exporter.start(None)  # type: ignore[arg-type]
        try:
            for batch in batches:
                await exporter.consume(batch)
        finally:
            await exporter.shutdown()

    asyncio.run(asyncio.wait_for(scenario(), SCENARIO_TIMEOUT))


@pytest.mark.parametrize("compression", ["gzip", "none"])
def test_every_field_of_a_span_arrives_unchanged_at_a_second_collector(
    compression: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="genai_collector")
    second = RunningService(
        """
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:0
exporters:
  debug:
    verbosity: detailed
service:
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [debug]
""",
        tmp_path,
    )
    try:
        first = RunningService(
            f"""
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:0
exporters:
  otlp:
    endpoint: 127.0.0.1:{second.port("otlp", "grpc")}
    compression: {compression}
    tls:
      insecure: true
    sending_queue:
      batch:
        flush_timeout: 10ms
service:
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [otlp]
""",
            tmp_path,
        )
        try:
            sent = every_field_traces()
            reply = httpx.post(
                f"http://127.0.0.1:{first.port()}/v1/traces",
                content=sent.SerializeToString(),
                headers={"content-type": "application/x-protobuf"},
            )
            assert reply.status_code == 200
        finally:
            first.stop()  # drains the otlp exporter's queue into the second collector
    finally:
        second.stop()
    assert logged_traces(caplog.records) == sent


class CountingRelay:
    """A TCP relay on loopback that counts the bytes clients send through it."""

    def __init__(self, upstream_port: int) -> None:
        self.bytes_sent = 0
        self._upstream_port = upstream_port
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self._upstream_port))
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket, counted: bool) -> None:
        try:
            while data := source.recv(65536):
                if counted:
                    with self._lock:
                        self.bytes_sent += len(data)
                target.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, target):
                sock.close()

    def close(self) -> None:
        self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()


def test_gzip_shrinks_what_goes_on_the_wire(
    server: TraceServer, make_settings: Callable[..., ComponentSettings]
) -> None:
    # Repetitive GenAI content compresses well: the gzip request must be a fraction of the plain one.
    batch = make_traces(300)
    for span in batch.resource_spans[0].scope_spans[0].spans:
        set_attributes(span.attributes, {"gen_ai.input.messages": "You are a helpful assistant. " * 20})
    wire: dict[str, int] = {}
    for compression in ("gzip", "none"):
        relay = CountingRelay(server.port)
        try:
            _export(make_settings("otlp"), _config(f"127.0.0.1:{relay.port}", compression=compression), batch)
        finally:
            relay.close()
        wire[compression] = relay.bytes_sent
    assert [call.traces() for call in server.calls] == [batch, batch]
    assert wire["gzip"] * 4 < wire["none"], wire


def test_headers_arrive_as_call_metadata(server: TraceServer, make_settings: Callable[..., ComponentSettings]) -> None:
    config = _config(server.endpoint, headers={"Authorization": SECRET, "x-tenant": "team-a"})
    _export(make_settings("otlp"), config, make_traces(2))
    [call] = server.wait_for_calls(1)
    assert call.metadata["authorization"] == SECRET
    assert call.metadata["x-tenant"] == "team-a"
    assert call.metadata["user-agent"].startswith("genai-collector/")


@pytest.mark.parametrize("code", sorted(RETRYABLE_CODES, key=lambda c: c.name))
def test_retryable_codes_are_retried_after_the_servers_retry_delay(
    code: grpc.StatusCode, make_settings: Callable[..., ComponentSettings]
) -> None:
    server = TraceServer([Answer(code, "try again", retry_delay=0.05)])
    telemetry = Telemetry()
    try:
        batch = make_traces(3)
        _export(
            make_settings("otlp", telemetry=telemetry), _config(server.endpoint, retry_on_failure=SLOW_RETRY), batch
        )
        calls = server.wait_for_calls(2)
    finally:
        server.stop()
    assert calls[0].request == calls[1].request
    assert calls[1].traces() == batch
    assert telemetry.value("otelcol_exporter_sent_spans", exporter="otlp") == 3
    assert telemetry.value("otelcol_exporter_send_failed_spans", exporter="otlp", reason="retries_exhausted") == 0


def test_resource_exhausted_is_retried_only_when_the_server_asks_for_it(
    make_settings: Callable[..., ComponentSettings],
) -> None:
    throttled = Answer(grpc.StatusCode.RESOURCE_EXHAUSTED, "slow down", retry_delay=0.05)
    too_large = Answer(grpc.StatusCode.RESOURCE_EXHAUSTED, "message larger than max")
    server = TraceServer([throttled, Answer(), too_large])
    telemetry = Telemetry()
    try:
        config = _config(server.endpoint, retry_on_failure=SLOW_RETRY)
        _export(make_settings("otlp", telemetry=telemetry), config, make_traces(2))
        _export(make_settings("otlp", telemetry=telemetry), config, make_traces(5))
    finally:
        server.stop()
    assert len(server.calls) == 3  # throttled then accepted; too large, dropped at once
    assert telemetry.value("otelcol_exporter_sent_spans", exporter="otlp") == 2
    assert telemetry.value("otelcol_exporter_send_failed_spans", exporter="otlp", reason="permanent") == 5


def test_a_retryable_code_without_retry_info_follows_the_backoff(
    make_settings: Callable[..., ComponentSettings],
) -> None:
    server = TraceServer([Answer(grpc.StatusCode.UNAVAILABLE, "restarting")] * 2)
    telemetry = Telemetry()
    try:
        _export(make_settings("otlp", telemetry=telemetry), _config(server.endpoint), make_traces(4))
    finally:
        server.stop()
    assert len(server.calls) == 3
    assert telemetry.value("otelcol_exporter_sent_spans", exporter="otlp") == 4


@pytest.mark.parametrize(
    "code",
    [
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.UNIMPLEMENTED,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNKNOWN,
    ],
)
def test_other_codes_drop_the_batch_and_count_it(
    code: grpc.StatusCode, make_settings: Callable[..., ComponentSettings], caplog: pytest.LogCaptureFixture
) -> None:
    # Even with a RetryInfo: only the codes the specification lists are worth sending again.
    server = TraceServer([Answer(code, "no", retry_delay=0.01)])
    telemetry = Telemetry()
    try:
        _export(make_settings("otlp", telemetry=telemetry), _config(server.endpoint), make_traces(3))
    finally:
        server.stop()
    assert len(server.calls) == 1
    assert telemetry.value("otelcol_exporter_send_failed_spans", exporter="otlp", reason="permanent") == 3
    assert telemetry.value("otelcol_exporter_sent_spans", exporter="otlp") == 0
    assert f"answered {code.name}: no" in caplog.text


@pytest.mark.parametrize("code", [c for c in grpc.StatusCode if c is not grpc.StatusCode.OK])
def test_status_table(code: grpc.StatusCode) -> None:
    trailers = [("grpc-status-details-bin", _retry_info_bytes(code, 2.5))]
    with_hint = error_for(code, "why", trailers, "backend:4317", str)
    without_hint = error_for(code, "why", (), "backend:4317", str)
    retryable = code in RETRYABLE_CODES
    assert isinstance(without_hint, RetryableError if retryable else PermanentError)
    assert with_hint.retryable == (retryable or code is grpc.StatusCode.RESOURCE_EXHAUSTED)
    assert with_hint.retry_after == (2.5 if with_hint.retryable else None)
    assert without_hint.retry_after is None
    assert str(without_hint) == f"backend:4317 answered {code.name}: why"


def _retry_info_bytes(code: grpc.StatusCode, delay: float) -> bytes:
    from google.protobuf.duration_pb2 import Duration
    from google.rpc import error_details_pb2, status_pb2

    status = status_pb2.Status(code=code.value[0])
    seconds = int(delay)
    info = error_details_pb2.RetryInfo(retry_delay=Duration(seconds=seconds, nanos=int((delay - seconds) * 1e9)))
    status.details.add().Pack(info)
    encoded: bytes = status.SerializeToString()
    return encoded


def test_a_partial_success_is_counted_and_logged(
    make_settings: Callable[..., ComponentSettings], caplog: pytest.LogCaptureFixture
) -> None:
    partial = ExportTracePartialSuccess(rejected_spans=2, error_message="2 spans are older than the retention")
    server = TraceServer([Answer(response=ExportTraceServiceResponse(partial_success=partial))])
    telemetry = Telemetry()
    try:
        _export(make_settings("otlp", telemetry=telemetry), _config(server.endpoint), make_traces(5))
    finally:
        server.stop()
    assert telemetry.value("otelcol_exporter_rejected_spans", exporter="otlp") == 2
    # The request itself was accepted, so the exporterhelper counts it sent.
    assert telemetry.value("otelcol_exporter_sent_spans", exporter="otlp") == 5
    [warning] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "rejected 2 spans" in warning.getMessage()
    assert "2 spans are older than the retention" in warning.getMessage()


def test_a_header_secret_never_shows_in_logs_or_errors(
    make_settings: Callable[..., ComponentSettings], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    # A careless server quotes the credential back in every kind of answer.
    echo = f"token {SECRET} is not valid"
    server = TraceServer(
        [
            Answer(grpc.StatusCode.UNAVAILABLE, echo),
            Answer(grpc.StatusCode.UNAUTHENTICATED, echo),
            Answer(response=ExportTraceServiceResponse(partial_success=ExportTracePartialSuccess(error_message=echo))),
            Answer(grpc.StatusCode.PERMISSION_DENIED, echo),
        ]
    )
    telemetry = Telemetry()
    try:
        config = _config(server.endpoint, headers={"authorization": SECRET})
        _export(make_settings("otlp", telemetry=telemetry), config, make_traces(1))
        _export(make_settings("otlp", telemetry=telemetry), config, make_traces(1))
        assert config.endpoint is not None
        sender = OtlpSender(make_settings("otlp"), config, config.endpoint)
        sender.start()
        try:
            with pytest.raises(PermanentError) as failure:
                sender.send(Batch([make_traces(1)], 1))
        finally:
            sender.close()
    finally:
        server.stop()
    assert [call.metadata["authorization"] for call in server.calls] == [SECRET] * 4
    assert caplog.text.count("token *** is not valid") == 3  # retrying, dropping, and the warning
    assert SECRET not in caplog.text
    assert SECRET not in repr(config) and SECRET not in str(config)
    shown = "".join(traceback.format_exception(failure.value))
    assert "token *** is not valid" in shown and SECRET not in shown


def test_tls_with_a_private_ca_and_a_client_certificate(
    tmp_path: Path, make_settings: Callable[..., ComponentSettings]
) -> None:
    files = make_certificates(tmp_path)
    credentials = grpc.ssl_server_credentials(
        [(files["server.key"].read_bytes(), files["server.crt"].read_bytes())],
        root_certificates=files["ca.crt"].read_bytes(),
        require_client_auth=True,
    )
    server = TraceServer(credentials=credentials)
    telemetry = Telemetry()
    try:
        tls = {
            "ca_file": str(files["ca.crt"]),
            "cert_file": str(files["client.crt"]),
            "key_file": str(files["client.key"]),
        }
        _export(make_settings("otlp", telemetry=telemetry), _config(server.endpoint, tls=tls), make_traces(2))
        # Without the private CA the server's certificate is not trusted: nothing is delivered.
        no_ca = {"cert_file": str(files["client.crt"]), "key_file": str(files["client.key"])}
        untrusted = _config(server.endpoint, tls=no_ca, retry_on_failure={"enabled": False})
        _export(make_settings("otlp", telemetry=telemetry), untrusted, make_traces(3))
    finally:
        server.stop()
    assert [call.traces().ByteSize() > 0 for call in server.calls] == [True]
    assert telemetry.value("otelcol_exporter_sent_spans", exporter="otlp") == 2
    assert telemetry.value("otelcol_exporter_send_failed_spans", exporter="otlp", reason="retries_exhausted") == 3


def test_an_unreadable_tls_file_stops_the_start(
    tmp_path: Path, make_settings: Callable[..., ComponentSettings]
) -> None:
    missing = tmp_path / "nowhere" / "ca.pem"
    config = _config("127.0.0.1:4317", tls={"ca_file": str(missing)})
    exporter = exporters.otlp.factory.create(make_settings("otlp"), config)

    async def scenario() -> None:
        with pytest.raises(StartError, match=f"cannot read tls.ca_file {missing}"):
            await exporter.start(None)  # type: ignore[arg-type]
        await exporter.shutdown()

    asyncio.run(asyncio.wait_for(scenario(), SCENARIO_TIMEOUT))


def test_a_batch_is_cut_into_requests_under_the_limit() -> None:
    limit = 1024
    large = make_traces(40, service="large")  # over the limit: cut into runs of spans
    huge_span = make_traces(1, service="huge")  # one span over the limit: goes alone
    set_attributes(huge_span.resource_spans[0].scope_spans[0].spans[0].attributes, {"blob": "x" * 2 * limit})
    small = make_traces(2, service="small")  # fits: joins the request before it when there is room
    batches = [large, huge_span, small]

    requests = list(cut_requests(batches, limit))

    received = [TracesData.FromString(request) for request in requests]
    # Every span once, in order, under its own resource and scope.
    assert list(iter_spans(received)) == list(iter_spans(batches))
    oversized = [t for t, request in zip(received, requests, strict=True) if len(request) > limit]
    assert oversized == [huge_span]
    assert len(requests) > 3


def test_the_sender_sends_each_cut_request(
    server: TraceServer, make_settings: Callable[..., ComponentSettings]
) -> None:
    limit = 1024
    batches = [make_traces(40), make_traces(3)]
    config = _config(server.endpoint)
    assert config.endpoint is not None
    sender = OtlpSender(make_settings("otlp"), config, config.endpoint, max_request_bytes=limit)
    sender.start()
    try:
        sender.send(Batch(batches, 43))
    finally:
        sender.close()
    assert [call.request for call in server.calls] == list(cut_requests(batches, limit))
    assert len(server.calls) > 1


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ({}, "exporters.otlp.endpoint: is required"),
        (
            {"endpoint": "http://tempo:4317"},
            'exporters.otlp.endpoint: expected host:port without a scheme or path, got "http://tempo:4317"',
        ),
        ({"endpoint": "tempo"}, "exporters.otlp.endpoint: expected host:port"),
        ({"endpoint": "tempo:0"}, "exporters.otlp.endpoint: tempo:0: port 0"),
        ({"endpoint": "tempo:4317", "compression": "zstd"}, "exporters.otlp.compression: expected one of gzip, none"),
        ({"endpoint": "tempo:4317", "timeout": "0s"}, "exporters.otlp.timeout: must be more than 0"),
        ({"endpoint": "tempo:4317", "tls": {"cert_file": "c.pem"}}, "exporters.otlp.tls.key_file: is required with"),
        ({"endpoint": "tempo:4317", "tls": {"insecure": True, "ca_file": "ca.pem"}}, "exporters.otlp.tls.insecure:"),
        ({"endpoint": "tempo:4317", "headers": {"x tenant": "a"}}, "exporters.otlp.headers.x tenant: a header name"),
        ({"endpoint": "tempo:4317", "headers": {"grpc-timeout": "1"}}, "exporters.otlp.headers.grpc-timeout: headers"),
        ({"endpoint": "tempo:4317", "headers": {"auth": f"{SECRET}\n"}}, "exporters.otlp.headers.auth: the value must"),
        ({"endpoint": "tempo:4317", "balancer": "x"}, "exporters.otlp.balancer: unknown key"),
        ({"endpoint": "tempo:4317", "sending_queue": {"queue_size": 0}}, "exporters.otlp.sending_queue.queue_size:"),
    ],
)
def test_config_mistakes(raw: dict[str, Any], problem: str) -> None:
    with pytest.raises(ConfigError) as error:
        decode(OtlpExporterConfig, raw, "exporters.otlp")
    [line] = [str(p) for p in error.value.problems]
    assert line.startswith(problem), line
    assert SECRET not in line


def test_defaults() -> None:
    config = decode(OtlpExporterConfig, {"endpoint": "tempo:4317"}, "exporters.otlp")
    assert (config.compression, config.timeout, config.tls.insecure, config.headers) == ("gzip", 5.0, False, {})


def test_a_server_quoting_only_the_token_of_a_header_is_redacted() -> None:
    from exporters.otlp.redact import Redactor

    redact = Redactor(["Bearer s3cr3t-token-123", "Basic dXNlcjpwYXNz"])
    assert redact("invalid token s3cr3t-token-123 (Bearer s3cr3t-token-123)") == "invalid token *** (***)"
    assert redact("bad credentials dXNlcjpwYXNz") == "bad credentials ***"
    assert redact("Bearer tokens are accepted") == "Bearer tokens are accepted"  # the scheme alone is no secret
