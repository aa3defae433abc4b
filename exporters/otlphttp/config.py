"""Settings of the ``otlphttp`` exporter, named as in the OpenTelemetry Collector's otlphttp exporter.

``endpoint`` is a base URL: traces go to ``<endpoint>/v1/traces`` (logs to
``/v1/logs``, metrics to ``/v1/metrics``), unless ``traces_endpoint``
(``logs_endpoint``, ``metrics_endpoint``) gives the full URL. TLS applies to ``https`` URLs; the
scheme, not a setting, decides whether the request is encrypted.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit

from collector.config.types import Duration, Secret
from collector.exporterhelper import QueueSettings, RetrySettings
from collector.signals import Signal
from exporters.otlp.config import TlsFiles, header_value_problem

DEFAULT_TIMEOUT = Duration(5.0)
TRACES_PATH = "/v1/traces"
SIGNAL_PATHS: dict[Signal, str] = {"traces": TRACES_PATH, "logs": "/v1/logs", "metrics": "/v1/metrics"}
# An HTTP header name is an RFC 9110 token.
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
# The exporter sets these itself from encoding and compression; a user value would contradict the body.
_RESERVED_HEADERS = frozenset({"content-type", "content-encoding", "content-length", "host", "transfer-encoding"})

Encoding = Literal["proto", "json"]
Compression = Literal["gzip", "none"]


@dataclass(frozen=True)
class HttpTlsSettings(TlsFiles):
    """TLS of an ``https`` endpoint: the system roots (or ``ca_file``), an optional client certificate."""

    insecure_skip_verify: bool = False  # accept any server certificate: for tests, never for production


@dataclass(frozen=True)
class OtlpHttpExporterConfig:
    """Sends spans (logs, metrics) over OTLP/HTTP (POST, protobuf or JSON) to ``traces_endpoint`` or
    ``endpoint``/v1/traces (and the like)."""

    endpoint: str = ""
    traces_endpoint: str = ""
    logs_endpoint: str = ""
    metrics_endpoint: str = ""
    encoding: Encoding = "proto"
    compression: Compression = "gzip"
    headers: dict[str, Secret] = field(default_factory=dict)  # e.g. an authorization header: never shown
    timeout: Duration = DEFAULT_TIMEOUT
    tls: HttpTlsSettings = field(default_factory=HttpTlsSettings)
    sending_queue: QueueSettings = field(default_factory=QueueSettings)
    retry_on_failure: RetrySettings = field(default_factory=RetrySettings)

    @property
    def traces_url(self) -> str:
        """Where the traces requests go."""
        return self.url("traces")

    def url(self, signal: Signal) -> str:
        """Where ``signal``'s requests go; empty when neither ``endpoint`` nor the signal's own URL is set."""
        own = {"traces": self.traces_endpoint, "logs": self.logs_endpoint, "metrics": self.metrics_endpoint}[signal]
        if own:
            return own
        return self.endpoint.rstrip("/") + SIGNAL_PATHS[signal] if self.endpoint else ""

    @property
    def has_url(self) -> bool:
        """Whether any URL is set: ``endpoint`` or a signal's own."""
        return bool(self.endpoint or self.traces_endpoint or self.logs_endpoint or self.metrics_endpoint)

    def validate(self) -> Iterable[tuple[str, str]]:
        if not self.has_url:
            yield "endpoint", "is required (base URL of an OTLP/HTTP receiver, e.g. http://tempo:4318)"
        urls = (
            ("endpoint", self.endpoint),
            ("traces_endpoint", self.traces_endpoint),
            ("logs_endpoint", self.logs_endpoint),
            ("metrics_endpoint", self.metrics_endpoint),
        )
        for key, url in urls:
            problem = url_problem(url) if url else None
            if problem is not None:
                yield key, problem
        if self.timeout <= 0:
            yield "timeout", "must be more than 0"
        for name, value in self.headers.items():
            yield from _header_problems(name, value)
        if urlsplit(self.traces_url).scheme == "http" and (self.tls.any_file or self.tls.insecure_skip_verify):
            yield "tls", f"applies to https URLs only, and {self.traces_url} is plain http"

    def signal_problems(self, signal: Signal) -> Iterable[tuple[str, str]]:
        """What is missing to send ``signal`` (the exporter is in a pipeline of it)."""
        # With no URL at all, validate has said so already.
        if self.has_url and not self.url(signal):
            yield f"{signal}_endpoint", f"is required for a {signal} pipeline when endpoint is not set"


def url_problem(url: str) -> str | None:
    """Why ``url`` cannot be posted to, or None when it can."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises ValueError for a port that is not a number)
    except ValueError:
        return f'expected an http(s) URL like http://tempo:4318, got "{url}"'
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f'expected an http(s) URL like http://tempo:4318, got "{url}"'
    if parts.username is not None or parts.password is not None:
        # The URL shows up in logs and errors; credentials belong in headers, which never do.
        return "must not hold credentials; send them in headers (e.g. authorization), which are never logged"
    return None


def _header_problems(name: str, value: Secret) -> Iterable[tuple[str, str]]:
    path = f"headers.{name}"
    if not _HEADER_NAME.fullmatch(name):
        yield path, "a header name may hold only letters, digits and !#$%&'*+-.^_`|~"
    elif name.lower() in _RESERVED_HEADERS:
        yield path, "is set by the exporter itself (from encoding and compression); drop it"
    problem = header_value_problem(value)
    if problem is not None:
        yield path, problem
