"""The otlphttp exporter over real HTTP on loopback: to a second collector, to a scripted trace endpoint.

Covers that spans arrive unchanged (protobuf and JSON, gzip and uncompressed),
the URL and headers of each request, which statuses are retried (and after how
long) and which drop the batch, partial successes, that header secrets never
show, TLS, and the cutting of large batches.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import logging
import ssl
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import TracesData

import exporters.otlphttp
from collector.component import ComponentSettings
from collector.config.decode import decode
from collector.config.problems import ConfigError
from collector.errors import PermanentError, StartError
from collector.queue import Batch
from collector.receivers.otlp.codec import encode_otlp_json
from collector.telemetry import Telemetry
from exporters.otlp.requests import cut_requests
from exporters.otlphttp.config import OtlpHttpExporterConfig
from exporters.otlphttp.sender import OtlpHttpSender
from exporters.otlphttp.status import RETRYABLE_STATUSES, retry_after_seconds, status_message
from tests.conftest import RunningService, make_traces
from tests.exporters.http_trace_server import HttpTraceServer, Reply, status_body
from tests.exporters.otlp_fixtures import every_field_traces, logged_traces, make_certificates

SECRET = "Bearer sk-live-7f3a9c2e51d04b8f"
QUICK_QUEUE = {"batch": {"flush_timeout": "10ms", "min_size": 1000}}
FAST_RETRY = {"initial_interval": "10ms", "max_interval": "20ms", "max_elapsed_time": "20s"}
# A backoff this slow would outlast max_elapsed_time: only a server's Retry-After gets the batch retried.
SLOW_RETRY = {"initial_interval": "60s", "max_interval": "60s", "max_elapsed_time": "20s"}
SCENARIO_TIMEOUT = 60.0
PERMANENT_STATUSES = [400, 401, 403, 404, 405, 409, 413, 415, 500, 501, 505]


@pytest.fixture
def server() -> Iterator[HttpTraceServer]:
    running = HttpTraceServer()
    yield running
    running.stop()


def _config(endpoint: str, **raw: Any) -> OtlpHttpExporterConfig:
    settings: dict[str, Any] = {"endpoint": endpoint, "sending_queue": QUICK_QUEUE, "retry_on_failure": FAST_RETRY}
    settings.update(raw)
    return decode(OtlpHttpExporterConfig, settings, "exporters.otlphttp")


def _export(settings: ComponentSettings, config: OtlpHttpExporterConfig, *batches: TracesData) -> None:
    """Start an otlphttp exporter, hand it ``batches``, and shut it down (which sends everything queued)."""
    exporter = exporters.otlphttp.factory.create(settings, config)

    async def scenario() -> None:
        await exporter.start(None)  # type: ignore[arg-type]
        try:
            for batch in batches:
                await exporter.consume(batch)
        finally:
            await exporter.shutdown()

    asyncio.run(asyncio.wait_for(scenario(), SCENARIO_TIMEOUT))


@pytest.mark.parametrize("compression", ["gzip", "none"])
@pytest.mark.parametrize("encoding", ["proto", "json"])
def test_every_field_of_a_span_arrives_unchanged_at_a_second_collector(
    encoding: str, compression: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="genai_collector")
    second = RunningService(
        """
receivers:
  otlp:
    protocols:
      http:
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
  otlphttp:
    endpoint: http://127.0.0.1:{second.port()}
    encoding: {encoding}
    compression: {compression}
    sending_queue:
      batch:
        flush_timeout: 10ms
service:
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [otlphttp]
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
            first.stop()  # drains the otlphttp exporter's queue into the second collector
        telemetry = first.service.telemetry
    finally:
        second.stop()
    assert logged_traces(caplog.records) == sent
    assert telemetry.value("otelcol_exporter_sent_spans", exporter="otlphttp") == 1


def test_otlp_json_has_hex_ids_and_integer_enums() -> None:
    traces = every_field_traces()
    document = json.loads(encode_otlp_json(traces))
    span = document["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    assert span["traceId"] == bytes(range(16)).hex()
    assert (span["spanId"], span["parentSpanId"]) == (bytes(range(8)).hex(), bytes(range(8, 16)).hex())
    assert span["links"][0]["traceId"] == bytes(range(16, 32)).hex()
    assert (span["kind"], span["status"]["code"]) == (3, 2)


@pytest.mark.parametrize("compression", ["gzip", "none"])
@pytest.mark.parametrize("encoding", ["proto", "json"])
def test_each_request_carries_its_url_headers_and_encoding(
    encoding: str, compression: str, server: HttpTraceServer, make_settings: Callable[..., ComponentSettings]
) -> None:
    config = _config(
        server.url() + "/otlp/",
        encoding=encoding,
        compression=compression,
        headers={"Authorization": SECRET, "X-Scope-OrgID": "team-a"},
    )
    batch = make_traces(3)
    _export(make_settings("otlphttp"), config, batch)
    [request] = server.wait_for_requests(1)
    assert request.path == "/otlp/v1/traces"
    assert request.headers["authorization"] == SECRET
    assert request.headers["x-scope-orgid"] == "team-a"
    assert request.headers["user-agent"].startswith("genai-collector/")
    expected_type = {"proto": "application/x-protobuf", "json": "application/json"}[encoding]
    assert request.headers["content-type"] == expected_type
    assert request.headers.get("content-encoding") == ("gzip" if compression == "gzip" else None)
    assert request.traces() == batch


def test_traces_endpoint_is_used_verbatim(
    server: HttpTraceServer, make_settings: Callable[..., ComponentSettings]
) -> None:
    config = _config("http://unused.invalid:4318", traces_endpoint=server.url() + "/tenant-a/traces?x=1")
    _export(make_settings("otlphttp"), config, make_traces(1))
    [request] = server.wait_for_requests(1)
    assert request.path == "/tenant-a/traces?x=1"


@pytest.mark.parametrize("status", sorted(RETRYABLE_STATUSES))
def test_retryable_statuses_are_retried(status: int, make_settings: Callable[..., ComponentSettings]) -> None:
    server = HttpTraceServer([Reply(status, status_body("busy"))])
    telemetry = Telemetry()
    try:
        batch = make_traces(3)
        _export(make_settings("otlphttp", telemetry=telemetry), _config(server.url()), batch)
        requests = server.wait_for_requests(2)
    finally:
        server.stop()
    assert len(requests) == 2 and requests[0].body == requests[1].body
    assert requests[1].traces() == batch
    assert telemetry.value("otelcol_exporter_sent_spans", exporter="otlphttp") == 3


@pytest.mark.parametrize("retry_after", ["1", "date"])
def test_retry_after_wins_over_the_backoff(retry_after: str, make_settings: Callable[..., ComponentSettings]) -> None:
    if retry_after == "date":
        # HTTP dates have whole seconds: two ahead is a wait of one to two seconds.
        when = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=2)
        retry_after = when.strftime("%a, %d %b %Y %H:%M:%S GMT")
    server = HttpTraceServer([Reply(429, headers={"Retry-After": retry_after})])
    telemetry = Telemetry()
    try:
        config = _config(server.url(), retry_on_failure=SLOW_RETRY)
        _export(make_settings("otlphttp", telemetry=telemetry), config, make_traces(2))
    finally:
        server.stop()
    # With the 60 s backoff the batch would have been dropped; the server's shorter wait got it retried.
    assert len(server.requests) == 2
    assert telemetry.value("otelcol_exporter_sent_spans", exporter="otlphttp") == 2


def test_retry_after_values() -> None:
    now = datetime.datetime(2025, 6, 1, 12, 0, 0, tzinfo=datetime.UTC)
    assert retry_after_seconds("7", now) == 7.0
    assert retry_after_seconds("Sun, 01 Jun 2025 12:00:30 GMT", now) == 30.0
    assert retry_after_seconds("Sun, 01 Jun 2025 11:59:00 GMT", now) is None  # already past
    assert retry_after_seconds("0", now) is None
    assert retry_after_seconds("soon", now) is None
    assert retry_after_seconds("-3", now) is None
    assert retry_after_seconds(None, now) is None


@pytest.mark.parametrize("status", PERMANENT_STATUSES)
@pytest.mark.parametrize("json_body", [False, True])
def test_other_statuses_drop_the_batch_and_show_the_servers_message(
    status: int, json_body: bool, make_settings: Callable[..., ComponentSettings], caplog: pytest.LogCaptureFixture
) -> None:
    # Even with a Retry-After: only the statuses the specification lists are worth sending again.
    content_type = "application/json" if json_body else "application/x-protobuf"
    reply = Reply(status, status_body("span 3 has no trace id", json_body), content_type, {"Retry-After": "1"})
    server = HttpTraceServer([reply])
    telemetry = Telemetry()
    try:
        _export(make_settings("otlphttp", telemetry=telemetry), _config(server.url()), make_traces(3))
    finally:
        server.stop()
    assert len(server.requests) == 1
    assert telemetry.value("otelcol_exporter_send_failed_spans", exporter="otlphttp", reason="permanent") == 3
    assert telemetry.value("otelcol_exporter_sent_spans", exporter="otlphttp") == 0
    assert f"answered HTTP {status}: span 3 has no trace id" in caplog.text


def test_a_body_that_is_not_a_status_is_shown_cut_short() -> None:
    page = b"<html><body>" + b"Bad gateway. " * 100 + b"</body></html>"
    shown = status_message(page, "text/html", str)
    assert shown.startswith("<html><body>Bad gateway.") and shown.endswith("...")
    assert len(shown) < 300
    assert status_message(b"", "text/plain", str) == ""


def test_an_unreachable_endpoint_is_retryable(make_settings: Callable[..., ComponentSettings]) -> None:
    from tests.conftest import free_port

    config = _config(f"http://127.0.0.1:{free_port()}", retry_on_failure={"enabled": False})
    telemetry = Telemetry()
    _export(make_settings("otlphttp", telemetry=telemetry), config, make_traces(2))
    # Retryable (so, with retries off, "retries_exhausted"), never "permanent".
    assert telemetry.value("otelcol_exporter_send_failed_spans", exporter="otlphttp", reason="retries_exhausted") == 2


@pytest.mark.parametrize("json_body", [False, True])
def test_a_partial_success_is_counted_and_logged(
    json_body: bool, make_settings: Callable[..., ComponentSettings], caplog: pytest.LogCaptureFixture
) -> None:
    partial = ExportTracePartialSuccess(rejected_spans=2, error_message="2 spans are older than the retention")
    response = ExportTraceServiceResponse(partial_success=partial)
    if json_body:
        reply = Reply(200, json_format.MessageToJson(response).encode(), "application/json")
    else:
        reply = Reply(200, response.SerializeToString())
    server = HttpTraceServer([reply])
    telemetry = Telemetry()
    try:
        _export(make_settings("otlphttp", telemetry=telemetry), _config(server.url()), make_traces(5))
    finally:
        server.stop()
    assert telemetry.value("otelcol_exporter_rejected_spans", exporter="otlphttp") == 2
    assert telemetry.value("otelcol_exporter_sent_spans", exporter="otlphttp") == 5
    [warning] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "rejected 2 spans" in warning.getMessage()
    assert "2 spans are older than the retention" in warning.getMessage()


def test_a_header_secret_never_shows_in_logs_or_errors(
    make_settings: Callable[..., ComponentSettings], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    # A careless server quotes the credential back in every kind of answer.
    echo = f"token {SECRET} is not valid"
    partial = ExportTraceServiceResponse(partial_success=ExportTracePartialSuccess(error_message=echo))
    server = HttpTraceServer(
        [
            Reply(503, status_body(echo)),
            Reply(401, status_body(echo)),
            Reply(200, partial.SerializeToString()),
            Reply(403, echo.encode(), "text/plain"),
        ]
    )
    telemetry = Telemetry()
    try:
        config = _config(server.url(), headers={"authorization": SECRET})
        _export(make_settings("otlphttp", telemetry=telemetry), config, make_traces(1))
        _export(make_settings("otlphttp", telemetry=telemetry), config, make_traces(1))
        sender = OtlpHttpSender(make_settings("otlphttp"), config)
        sender.start()
        try:
            with pytest.raises(PermanentError) as failure:
                sender.send(Batch([make_traces(1)], 1))
        finally:
            sender.close()
    finally:
        server.stop()
    assert [request.headers["authorization"] for request in server.requests] == [SECRET] * 4
    assert caplog.text.count("token *** is not valid") == 3  # retrying, dropping, and the warning
    assert SECRET not in caplog.text
    assert SECRET not in repr(config) and SECRET not in str(config)
    shown = "".join(traceback.format_exception(failure.value))
    assert "token *** is not valid" in shown and SECRET not in shown


def _https_server(files: dict[str, Path], require_client_certificate: bool) -> HttpTraceServer:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(files["server.crt"], files["server.key"])
    if require_client_certificate:
        context.load_verify_locations(files["ca.crt"])
        context.verify_mode = ssl.CERT_REQUIRED
    return HttpTraceServer(context=context)


def test_tls_with_a_private_ca_and_a_client_certificate(
    tmp_path: Path, make_settings: Callable[..., ComponentSettings]
) -> None:
    files = make_certificates(tmp_path)
    server = _https_server(files, require_client_certificate=True)
    telemetry = Telemetry()
    try:
        tls = {
            "ca_file": str(files["ca.crt"]),
            "cert_file": str(files["client.crt"]),
            "key_file": str(files["client.key"]),
        }
        _export(make_settings("otlphttp", telemetry=telemetry), _config(server.url("https"), tls=tls), make_traces(2))
        # Without the private CA the server's certificate is not trusted: nothing is delivered.
        no_ca = {"cert_file": str(files["client.crt"]), "key_file": str(files["client.key"])}
        untrusted = _config(server.url("https"), tls=no_ca, retry_on_failure={"enabled": False})
        _export(make_settings("otlphttp", telemetry=telemetry), untrusted, make_traces(3))
    finally:
        server.stop()
    assert len(server.requests) == 1
    assert telemetry.value("otelcol_exporter_sent_spans", exporter="otlphttp") == 2
    assert telemetry.value("otelcol_exporter_send_failed_spans", exporter="otlphttp", reason="retries_exhausted") == 3


def test_insecure_skip_verify_accepts_an_unknown_certificate(
    tmp_path: Path, make_settings: Callable[..., ComponentSettings]
) -> None:
    files = make_certificates(tmp_path)
    server = _https_server(files, require_client_certificate=False)
    telemetry = Telemetry()
    try:
        config = _config(server.url("https"), tls={"insecure_skip_verify": True})
        _export(make_settings("otlphttp", telemetry=telemetry), config, make_traces(2))
    finally:
        server.stop()
    assert telemetry.value("otelcol_exporter_sent_spans", exporter="otlphttp") == 2


def test_an_unreadable_tls_file_stops_the_start(
    tmp_path: Path, make_settings: Callable[..., ComponentSettings]
) -> None:
    missing = tmp_path / "nowhere" / "ca.pem"
    config = _config("https://127.0.0.1:4318", tls={"ca_file": str(missing)})
    exporter = exporters.otlphttp.factory.create(make_settings("otlphttp"), config)

    async def scenario() -> None:
        with pytest.raises(StartError, match=f"cannot read tls.ca_file {missing}"):
            await exporter.start(None)  # type: ignore[arg-type]
        await exporter.shutdown()

    asyncio.run(asyncio.wait_for(scenario(), SCENARIO_TIMEOUT))


def test_the_sender_posts_each_cut_request(
    server: HttpTraceServer, make_settings: Callable[..., ComponentSettings]
) -> None:
    limit = 1024
    batches = [make_traces(40), make_traces(3)]
    config = _config(server.url(), compression="none")
    sender = OtlpHttpSender(make_settings("otlphttp"), config, max_request_bytes=limit)
    sender.start()
    try:
        sender.send(Batch(batches, 43))
    finally:
        sender.close()
    assert [request.body for request in server.requests] == list(cut_requests(batches, limit))
    assert len(server.requests) > 1


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ({}, "exporters.otlphttp.endpoint: is required"),
        (
            {"endpoint": "tempo:4318"},
            'exporters.otlphttp.endpoint: expected an http(s) URL like http://tempo:4318, got "tempo:4318"',
        ),
        ({"endpoint": "http://tempo:port"}, "exporters.otlphttp.endpoint: expected an http(s) URL"),
        ({"traces_endpoint": "grpc://tempo:4317"}, "exporters.otlphttp.traces_endpoint: expected an http(s) URL"),
        ({"endpoint": "http://u:pw@tempo:4318"}, "exporters.otlphttp.endpoint: must not hold credentials"),
        (
            {"endpoint": "http://tempo:4318", "encoding": "protobuf"},
            "exporters.otlphttp.encoding: expected one of proto, json",
        ),
        (
            {"endpoint": "http://tempo:4318", "compression": "zstd"},
            "exporters.otlphttp.compression: expected one of gzip, none",
        ),
        ({"endpoint": "http://tempo:4318", "timeout": "0s"}, "exporters.otlphttp.timeout: must be more than 0"),
        (
            {"endpoint": "http://tempo:4318", "tls": {"ca_file": "ca.pem"}},
            "exporters.otlphttp.tls: applies to https URLs only",
        ),
        (
            {"endpoint": "https://tempo:4318", "tls": {"cert_file": "c.pem"}},
            "exporters.otlphttp.tls.key_file: is required with",
        ),
        ({"endpoint": "https://tempo:4318", "tls": {"insecure": True}}, "exporters.otlphttp.tls.insecure: unknown key"),
        (
            {"endpoint": "http://tempo:4318", "headers": {"x tenant": "a"}},
            "exporters.otlphttp.headers.x tenant: a header name",
        ),
        (
            {"endpoint": "http://tempo:4318", "headers": {"Content-Type": "a"}},
            "exporters.otlphttp.headers.Content-Type: is set by the exporter",
        ),
        (
            {"endpoint": "http://tempo:4318", "headers": {"auth": f"{SECRET}\n"}},
            "exporters.otlphttp.headers.auth: the value must",
        ),
        (
            {"endpoint": "http://tempo:4318", "sending_queue": {"queue_size": 0}},
            "exporters.otlphttp.sending_queue.queue_size:",
        ),
    ],
)
def test_config_mistakes(raw: dict[str, Any], problem: str) -> None:
    with pytest.raises(ConfigError) as error:
        decode(OtlpHttpExporterConfig, raw, "exporters.otlphttp")
    [line] = [str(p) for p in error.value.problems]
    assert line.startswith(problem), line
    assert SECRET not in line


def test_defaults() -> None:
    config = decode(OtlpHttpExporterConfig, {"endpoint": "http://tempo:4318/"}, "exporters.otlphttp")
    assert config.traces_url == "http://tempo:4318/v1/traces"
    assert (config.encoding, config.compression, config.timeout, config.headers) == ("proto", "gzip", 5.0, {})
    assert not config.tls.insecure_skip_verify
