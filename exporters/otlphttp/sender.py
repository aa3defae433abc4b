"""The blocking half of the otlphttp exporter: one batch of a signal in, OTLP/HTTP POSTs out.

It runs in the exporterhelper's worker threads on one httpx client (thread-safe,
so several consumers share its connection pool). An answer becomes a
RetryableError or PermanentError as exporters.otlphttp.status decides; a
transport failure (refused connection, timeout, reset) is retryable. A 200
with a partial success counts the rejected spans as the otlp exporter does.

Header values are secrets: they go into the request and nowhere else, and any
of them a server echoes back is blanked before its text is shown.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import httpx

from collector import __version__
from collector.component import ComponentSettings
from collector.errors import RetryableError, StartError
from collector.queue import Batch
from collector.receivers.otlp.services import SERVICES
from collector.signal_metrics import signal_metrics
from collector.signals import SIGNAL_KINDS, Signal
from exporters.otlp.partial import note_partial_success
from exporters.otlp.redact import Redactor
from exporters.otlp.requests import MAX_REQUEST_BYTES, cut_requests
from exporters.otlphttp.config import HttpTlsSettings, OtlpHttpExporterConfig
from exporters.otlphttp.encoding import CONTENT_TYPES, encode_body
from exporters.otlphttp.status import decode_message, error_for_response

USER_AGENT = f"genai-collector/{__version__}"


class OtlpHttpSender:
    """Posts batches of one signal to its OTLP/HTTP URL."""

    def __init__(
        self,
        settings: ComponentSettings,
        config: OtlpHttpExporterConfig,
        max_request_bytes: int = MAX_REQUEST_BYTES,
        signal: Signal = "traces",
    ) -> None:
        self._config = config
        self._signal = signal
        self._url = config.url(signal)
        self._logger = settings.logger
        self._rejected = signal_metrics(settings.telemetry, signal).exporter_rejected.bind(exporter=str(settings.id))
        self._max_request_bytes = max_request_bytes
        self._redact = Redactor(value.reveal() for value in config.headers.values())
        self._headers = {name: value.reveal() for name, value in config.headers.items()}
        self._headers["user-agent"] = USER_AGENT
        self._headers["content-type"] = CONTENT_TYPES[config.encoding]
        if config.compression == "gzip":
            self._headers["content-encoding"] = "gzip"
        self._client: httpx.Client | None = None

    @property
    def url(self) -> str:
        return self._url

    def start(self) -> None:
        self._client = httpx.Client(
            headers=self._headers,
            timeout=self._config.timeout,
            verify=ssl_context(self._config.tls) if self._url.startswith("https:") else True,
            # Proxy variables and netrc from the environment would make where spans go depend on the shell.
            trust_env=False,
            # A redirect could carry the headers (credentials) to another host: the endpoint must be exact.
            follow_redirects=False,
        )

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def send(self, batch: Batch[Any]) -> None:
        client = self._client
        assert client is not None, "the otlphttp exporter is not started"
        # A batch larger than one request leaves as several; if a later one fails, the retry
        # sends the whole batch again, so the receiver may see the earlier ones twice.
        for request in cut_requests(batch.items, self._max_request_bytes):
            body = encode_body(request, self._config.encoding, self._config.compression, SIGNAL_KINDS[self._signal])
            try:
                response = client.post(self._url, content=body)
            except httpx.TransportError as exc:
                # The transport's text names the URL and the failure, never the headers.
                raise RetryableError(f"{self._url}: {type(exc).__name__}: {self._redact(str(exc))}") from None
            self._handle(response)

    def _handle(self, response: httpx.Response) -> None:
        content_type = response.headers.get("content-type", "")
        if not response.is_success:
            # `from None` is implicit: raised outside an except block, no httpx text travels with it.
            raise error_for_response(
                response.status_code,
                response.headers.get("retry-after"),
                response.content,
                content_type,
                self._url,
                self._redact,
            )
        reply = SERVICES[self._signal].response_type()
        if response.content and decode_message(response.content, content_type, reply):
            note_partial_success(reply, self._url, self._redact, self._rejected, self._logger, self._signal)


def ssl_context(tls: HttpTlsSettings) -> ssl.SSLContext:
    """The client TLS context ``tls`` describes; raises StartError when a file cannot be read."""
    # Without a ca_file, the system's roots verify the server.
    context = ssl.create_default_context(cafile=_readable("tls.ca_file", tls.ca_file))
    if tls.cert_file:
        _readable("tls.cert_file", tls.cert_file)
        _readable("tls.key_file", tls.key_file)
        try:
            context.load_cert_chain(tls.cert_file, tls.key_file)
        except ssl.SSLError as exc:
            raise StartError(f"cannot use tls.cert_file {tls.cert_file} with tls.key_file: {exc.reason}") from None
    if tls.insecure_skip_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _readable(setting: str, path: str) -> str | None:
    if not path:
        return None
    expanded = Path(path).expanduser()
    try:
        with expanded.open("rb"):
            pass
    except OSError as exc:
        raise StartError(f"cannot read {setting} {path}: {exc.strerror or exc}") from None
    return str(expanded)
