"""Settings of the ``otlp`` exporter, named as in the OpenTelemetry Collector's otlp exporter.

``OtlpSettings`` holds everything but the address, so the ``loadbalancing``
exporter can take the same block (``protocol.otlp``) and add one address per
backend; ``OtlpExporterConfig`` is that block plus ``endpoint``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from collector.config.types import Duration, HostPort, Secret
from collector.exporterhelper import QueueSettings, RetrySettings

DEFAULT_TIMEOUT = Duration(5.0)
# gRPC metadata keys: lowercase letters, digits and "-_." (HTTP/2 forbids uppercase).
_HEADER_NAME = re.compile(r"[0-9a-z_.-]+")
# Values of non-binary metadata must be printable ASCII; grpc refuses the call otherwise.
_HEADER_VALUE = re.compile(r"[\x20-\x7e]*")
_RESERVED_HEADER_PREFIX = "grpc-"
_BINARY_HEADER_SUFFIX = "-bin"

Compression = Literal["gzip", "none"]


@dataclass(frozen=True)
class TlsFiles:
    """The PEM files of a TLS client, shared by the gRPC and HTTP exporters: CAs, client certificate, its key."""

    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""

    @property
    def any_file(self) -> bool:
        return bool(self.ca_file or self.cert_file or self.key_file)

    def validate(self) -> Iterable[tuple[str, str]]:
        if self.cert_file and not self.key_file:
            yield "key_file", "is required with cert_file (the client certificate's private key)"
        if self.key_file and not self.cert_file:
            yield "cert_file", "is required with key_file (the client certificate)"


@dataclass(frozen=True)
class TlsSettings(TlsFiles):
    """Transport security: TLS with the system roots (or ``ca_file``) unless ``insecure``."""

    insecure: bool = False

    def validate(self) -> Iterable[tuple[str, str]]:
        if self.insecure and self.any_file:
            yield "insecure", "true sends in plaintext, so ca_file, cert_file and key_file would go unused; drop them"
        yield from super().validate()


@dataclass(frozen=True)
class OtlpSettings:
    """How to talk to an OTLP/gRPC receiver, whichever one it is."""

    tls: TlsSettings = field(default_factory=TlsSettings)
    headers: dict[str, Secret] = field(default_factory=dict)  # e.g. an authorization header: never shown
    compression: Compression = "gzip"
    timeout: Duration = DEFAULT_TIMEOUT
    sending_queue: QueueSettings = field(default_factory=QueueSettings)
    retry_on_failure: RetrySettings = field(default_factory=RetrySettings)

    def validate(self) -> Iterable[tuple[str, str]]:
        if self.timeout <= 0:
            yield "timeout", "must be more than 0"
        for name, value in self.headers.items():
            yield from _header_problems(name, value)

    def metadata(self) -> tuple[tuple[str, str], ...]:
        """The headers as gRPC metadata (lowercase keys), secrets revealed: only for the call itself."""
        return tuple((name.lower(), value.reveal()) for name, value in self.headers.items())


def _header_problems(name: str, value: Secret) -> Iterable[tuple[str, str]]:
    # HTTP header names are case-insensitive; gRPC sends them lowercase.
    key = name.lower()
    path = f"headers.{name}"
    if not _HEADER_NAME.fullmatch(key):
        yield path, "a header name may hold only letters, digits and - _ ."
    elif key.startswith(_RESERVED_HEADER_PREFIX):
        yield path, "headers starting with grpc- are reserved for gRPC itself"
    elif key.endswith(_BINARY_HEADER_SUFFIX):
        yield path, "binary (-bin) headers are not supported; send the value as text"
    problem = header_value_problem(value)
    if problem is not None:
        yield path, problem


def header_value_problem(value: Secret) -> str | None:
    """Why a header value cannot be sent (over gRPC or HTTP), or None; never quotes the value, a secret."""
    if not _HEADER_VALUE.fullmatch(value.reveal()):
        return "the value must be printable ASCII (no line breaks, no other characters)"
    return None


@dataclass(frozen=True)
class OtlpExporterConfig(OtlpSettings):
    """Sends spans over OTLP/gRPC to ``endpoint`` (``host:port``, no scheme)."""

    endpoint: HostPort | None = None

    def validate(self) -> Iterable[tuple[str, str]]:
        yield from super().validate()
        problem = endpoint_problem(self.endpoint)
        if problem is not None:
            yield "endpoint", problem


def endpoint_problem(endpoint: HostPort | None) -> str | None:
    """Why ``endpoint`` cannot be sent to, or None when it can."""
    if endpoint is None:
        return "is required (host:port of an OTLP/gRPC receiver, e.g. tempo:4317)"
    if "/" in endpoint.host:
        # As written: str(endpoint) would bracket a host holding ":" as if it were IPv6.
        return f'expected host:port without a scheme or path, got "{endpoint.host}:{endpoint.port}"'
    if endpoint.port == 0:
        return f"{endpoint}: port 0 picks a port when listening; give the receiver's port"
    return None
