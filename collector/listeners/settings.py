"""Listener settings in the OpenTelemetry Collector's shape (confighttp, configgrpc), with their defaults.

``HttpServerSettings`` is squashed into each HTTP listener's own config, as
confighttp's ServerConfig is in the Go collector: ``read_header_timeout``,
``read_timeout`` and ``idle_timeout`` keep their Go names and meaning;
``write_timeout`` bounds how long a response may wait on a client that reads
nothing, rather than the whole response, so that streams can last. The
gRPC settings follow configgrpc (``max_concurrent_streams``, ``keepalive``).
``admission`` is named after the OTel Arrow receiver's block of the same name.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from collector.config.types import Duration, HostPort

BYTES_PER_MIB = 1024 * 1024

# A client sends its request head in one write; ten seconds is ample on any
# link and bounds how long a connection that never finishes one holds a slot.
DEFAULT_READ_HEADER_TIMEOUT = Duration(10.0)
# The whole request, head and body: 20 MiB at 350 KiB/s. The SDKs' own export
# timeout (10 s by default) gives up long before.
DEFAULT_READ_TIMEOUT = Duration(60.0)
# As confighttp's default: long enough that a client exporting every few
# seconds keeps its connection.
DEFAULT_IDLE_TIMEOUT = Duration(60.0)
# A client that reads nothing of a response for a minute has gone or is holding it open on purpose.
DEFAULT_WRITE_TIMEOUT = Duration(60.0)
DEFAULT_MAX_CONNECTIONS = 1024
# Scraped or called by a few local clients at a time.
DEFAULT_LOCAL_MAX_CONNECTIONS = 64
# Request line and headers together. SDK requests carry under 2 KiB; large
# cookies or tokens fit well within.
DEFAULT_MAX_REQUEST_HEADER_SIZE = 64 * 1024
# Apache's LimitRequestFields default.
DEFAULT_MAX_REQUEST_HEADERS = 100
# Request bytes held at once per listener: three requests of the OTLP maximum
# (20 MiB), or hundreds of ordinary ones.
DEFAULT_REQUEST_LIMIT_MIB = 64

# HTTP/2's recommended minimum, and what most servers allow.
DEFAULT_MAX_CONCURRENT_STREAMS = 100
DEFAULT_HANDSHAKE_TIMEOUT = Duration(10.0)
# A connection with no call for this long is closed (GOAWAY); the client reconnects on its next export.
DEFAULT_MAX_CONNECTION_IDLE = Duration(300.0)
# Every connection is recycled this often, so none holds resources forever; calls get the grace to finish.
DEFAULT_MAX_CONNECTION_AGE = Duration(3600.0)
DEFAULT_MAX_CONNECTION_AGE_GRACE = Duration(30.0)
# grpc's own keepalive defaults, as configgrpc leaves them.
DEFAULT_KEEPALIVE_TIME = Duration(7200.0)
DEFAULT_KEEPALIVE_TIMEOUT = Duration(20.0)
DEFAULT_KEEPALIVE_MIN_TIME = Duration(300.0)


@dataclass(frozen=True)
class AdmissionSettings:
    """Bytes of request data (uncompressed) a listener holds at once, across its concurrent requests.

    A request that would take it past ``request_limit_mib`` is refused at once
    with a retryable answer (HTTP 503 with Retry-After, gRPC UNAVAILABLE with
    RetryInfo); nothing waits.
    """

    request_limit_mib: int = DEFAULT_REQUEST_LIMIT_MIB

    @property
    def request_limit_bytes(self) -> int:
        return self.request_limit_mib * BYTES_PER_MIB

    def validate(self) -> Iterable[tuple[str, str]]:
        if self.request_limit_mib < 1:
            yield "request_limit_mib", "must be at least 1"


@dataclass(frozen=True)
class HttpServerSettings:
    """What every HTTP listener takes: where it listens, how long it waits, how much it accepts."""

    endpoint: HostPort = HostPort("127.0.0.1", 0)
    # Connect (or the first byte of a request on a kept-alive connection) to the end of the request head.
    read_header_timeout: Duration = DEFAULT_READ_HEADER_TIMEOUT
    # Start of the request to the end of its body.
    read_timeout: Duration = DEFAULT_READ_TIMEOUT
    # A kept-alive connection waiting for its next request.
    idle_timeout: Duration = DEFAULT_IDLE_TIMEOUT
    # A response waiting this long for the client to read any of it (not the whole response:
    # a stream may last longer).
    write_timeout: Duration = DEFAULT_WRITE_TIMEOUT
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    max_request_header_size: int = DEFAULT_MAX_REQUEST_HEADER_SIZE
    max_request_headers: int = DEFAULT_MAX_REQUEST_HEADERS
    admission: AdmissionSettings = field(default_factory=AdmissionSettings)

    def validate(self) -> Iterable[tuple[str, str]]:
        for name in ("read_header_timeout", "read_timeout", "idle_timeout", "write_timeout"):
            if getattr(self, name) <= 0:
                yield name, "must be more than 0"
        for name in ("max_connections", "max_request_header_size", "max_request_headers"):
            if getattr(self, name) < 1:
                yield name, "must be at least 1"


@dataclass(frozen=True)
class KeepaliveServerParameters:
    max_connection_idle: Duration = DEFAULT_MAX_CONNECTION_IDLE
    max_connection_age: Duration = DEFAULT_MAX_CONNECTION_AGE
    max_connection_age_grace: Duration = DEFAULT_MAX_CONNECTION_AGE_GRACE
    # Ping a client after this long without activity; close if it does not answer within ``timeout``.
    time: Duration = DEFAULT_KEEPALIVE_TIME
    timeout: Duration = DEFAULT_KEEPALIVE_TIMEOUT


@dataclass(frozen=True)
class KeepaliveEnforcementPolicy:
    """Clients that ping more often than ``min_time`` are disconnected (GOAWAY too_many_pings)."""

    min_time: Duration = DEFAULT_KEEPALIVE_MIN_TIME
    permit_without_stream: bool = False


@dataclass(frozen=True)
class KeepaliveSettings:
    server_parameters: KeepaliveServerParameters = field(default_factory=KeepaliveServerParameters)
    enforcement_policy: KeepaliveEnforcementPolicy = field(default_factory=KeepaliveEnforcementPolicy)

    def validate(self) -> Iterable[tuple[str, str]]:
        params = self.server_parameters
        for name in ("max_connection_idle", "max_connection_age", "time", "timeout"):
            if getattr(params, name) <= 0:
                yield f"server_parameters.{name}", "must be more than 0"
        if params.max_connection_age_grace < 0:
            yield "server_parameters.max_connection_age_grace", "must not be negative"
        if self.enforcement_policy.min_time < 0:
            yield "enforcement_policy.min_time", "must not be negative"
