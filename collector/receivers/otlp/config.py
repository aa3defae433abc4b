"""Settings of the ``otlp`` receiver, in the OpenTelemetry Collector's shape."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from collector.config.types import Duration, HostPort
from collector.listeners.settings import (
    BYTES_PER_MIB,
    DEFAULT_HANDSHAKE_TIMEOUT,
    DEFAULT_MAX_CONCURRENT_STREAMS,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_READ_TIMEOUT,
    AdmissionSettings,
    HttpServerSettings,
    KeepaliveSettings,
)
from collector.signals import SIGNALS, Signal

DEFAULT_GRPC_ENDPOINT = HostPort("127.0.0.1", 4317)
DEFAULT_HTTP_ENDPOINT = HostPort("127.0.0.1", 4318)
DEFAULT_TRACES_URL_PATH = "/v1/traces"
DEFAULT_LOGS_URL_PATH = "/v1/logs"
DEFAULT_METRICS_URL_PATH = "/v1/metrics"
DEFAULT_MAX_REQUEST_BODY_BYTES = 20 * 1024 * 1024
DEFAULT_MAX_RECV_MSG_SIZE_MIB = 4
# Well above the largest batch an exporter here or a Go collector sends (32,768
# spans; each span may bring its own resource), well below what would let a
# 20 MiB request of empty messages decode into gigabytes.
DEFAULT_MAX_MESSAGES_PER_REQUEST = 100_000
# The OpenTelemetry SDKs keep 128 attributes, events and links per span by
# default; eight times that is generous and still bounds one span's cost.
DEFAULT_MAX_ITEMS_PER_SPAN = 1024


@dataclass(frozen=True)
class GrpcSettings:
    """configgrpc's server settings that bound what clients can hold: connections, streams, bytes, time."""

    endpoint: HostPort = DEFAULT_GRPC_ENDPOINT
    max_recv_msg_size_mib: int = DEFAULT_MAX_RECV_MSG_SIZE_MIB
    # HTTP/2 streams (calls) one connection may have open at once.
    max_concurrent_streams: int = DEFAULT_MAX_CONCURRENT_STREAMS
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    # Connect to the end of the HTTP/2 handshake; a connection that sends nothing is closed after it.
    handshake_timeout: Duration = DEFAULT_HANDSHAKE_TIMEOUT
    # Start of a call to the whole request message received.
    read_timeout: Duration = DEFAULT_READ_TIMEOUT
    keepalive: KeepaliveSettings = field(default_factory=KeepaliveSettings)
    admission: AdmissionSettings = field(default_factory=AdmissionSettings)

    @property
    def max_recv_msg_size(self) -> int:
        return self.max_recv_msg_size_mib * BYTES_PER_MIB

    def validate(self) -> Iterable[tuple[str, str]]:
        for name in ("max_recv_msg_size_mib", "max_concurrent_streams", "max_connections"):
            if getattr(self, name) < 1:
                yield name, "must be at least 1"
        for name in ("handshake_timeout", "read_timeout"):
            if getattr(self, name) <= 0:
                yield name, "must be more than 0"
        if self.admission.request_limit_mib < self.max_recv_msg_size_mib:
            # A message is given its largest size while it is read.
            yield (
                "admission.request_limit_mib",
                (f"must be at least max_recv_msg_size_mib ({self.max_recv_msg_size_mib}), or no request could be read"),
            )


@dataclass(frozen=True)
class HttpSettings(HttpServerSettings):
    endpoint: HostPort = DEFAULT_HTTP_ENDPOINT
    traces_url_path: str = DEFAULT_TRACES_URL_PATH
    logs_url_path: str = DEFAULT_LOGS_URL_PATH
    metrics_url_path: str = DEFAULT_METRICS_URL_PATH
    max_request_body_size: int = DEFAULT_MAX_REQUEST_BODY_BYTES

    def url_path(self, signal: Signal) -> str:
        """Where ``signal`` is posted."""
        return {"traces": self.traces_url_path, "logs": self.logs_url_path, "metrics": self.metrics_url_path}[signal]

    def validate(self) -> Iterable[tuple[str, str]]:
        yield from super().validate()
        for signal in SIGNALS:
            path = self.url_path(signal)
            if not path.startswith("/"):
                yield f"{signal}_url_path", f'must start with "/", got "{path}"'
        if len({self.url_path(signal) for signal in SIGNALS}) < len(SIGNALS):
            yield "logs_url_path", "traces_url_path, logs_url_path and metrics_url_path must differ"
        if self.max_request_body_size < 1:
            yield "max_request_body_size", "must be at least 1"
        elif self.admission.request_limit_bytes < self.max_request_body_size:
            yield (
                "admission.request_limit_mib",
                (
                    f"must hold at least max_request_body_size ({self.max_request_body_size} bytes), "
                    "or the largest request could never be read"
                ),
            )


@dataclass(frozen=True)
class RequestLimits:
    """How much one request may hold, over both transports.

    A request with too many resource spans, scope spans or spans is refused whole
    (HTTP 413, gRPC INVALID_ARGUMENT); a span with too many attributes, events or
    links is rejected alone, the rest of its request accepted (an OTLP partial success).
    """

    max_resource_spans_per_request: int = DEFAULT_MAX_MESSAGES_PER_REQUEST
    max_scope_spans_per_request: int = DEFAULT_MAX_MESSAGES_PER_REQUEST
    max_spans_per_request: int = DEFAULT_MAX_MESSAGES_PER_REQUEST
    max_attributes_per_span: int = DEFAULT_MAX_ITEMS_PER_SPAN
    max_events_per_span: int = DEFAULT_MAX_ITEMS_PER_SPAN
    max_links_per_span: int = DEFAULT_MAX_ITEMS_PER_SPAN

    def validate(self) -> Iterable[tuple[str, str]]:
        for name, value in vars(self).items():
            if value < 1:
                yield name, "must be at least 1"


@dataclass(frozen=True)
class Protocols:
    """Each protocol is on when its key is present (even with no settings), off when absent."""

    grpc: GrpcSettings | None = None
    http: HttpSettings | None = None


@dataclass(frozen=True)
class OtlpReceiverConfig:
    protocols: Protocols = Protocols(grpc=GrpcSettings(), http=HttpSettings())
    limits: RequestLimits = RequestLimits()

    def validate(self) -> Iterable[tuple[str, str]]:
        if self.protocols.grpc is None and self.protocols.http is None:
            yield "protocols", "enable at least one of grpc, http"

    def listeners(self) -> Iterable[tuple[str, HostPort]]:
        if self.protocols.grpc is not None:
            yield "protocols.grpc.endpoint", self.protocols.grpc.endpoint
        if self.protocols.http is not None:
            yield "protocols.http.endpoint", self.protocols.http.endpoint
