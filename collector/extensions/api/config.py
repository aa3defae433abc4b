"""The ``api`` extension's settings, in the Collector's shape, every default a named constant."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from collector.config.types import Duration, HostPort
from collector.extensions import admin
from collector.listeners.settings import HttpServerSettings

# The Jaeger query port, where Jaeger-speaking tools look.
DEFAULT_API_ENDPOINT = HostPort("127.0.0.1", 16686)
# Jaeger's remote-storage port: the gRPC Remote Storage API v2 (jaeger.storage.v2) a Jaeger v2 reads.
DEFAULT_GRPC_ENDPOINT = HostPort("127.0.0.1", 17271)
# Rows per page of a search or listing when the caller names no limit, and the most a caller may ask for.
DEFAULT_PAGE_LIMIT = 20
MAX_PAGE_LIMIT = 1_000
# Spans read for one trace; a trace with more is answered with the first ones and marked truncated.
MAX_TRACE_SPANS = 10_000
# Groups (or group × bucket rows) one stats answer may hold.
MAX_STATS_ROWS = 10_000
# The window a query covers when the caller gives no start, and the widest one a caller may ask for.
DEFAULT_TIME_WINDOW = Duration(3600.0)
MAX_TIME_WINDOW = Duration(31 * 86400.0)
# Live stream: clients at once, events buffered per client before it is cut, batches the hub holds
# between the pipeline and the clients (beyond that a batch is skipped and counted: the pipeline never waits),
# and how often an idle stream says it is alive.
MAX_STREAM_CLIENTS = 64
STREAM_CLIENT_BUFFER = 1_000
STREAM_HUB_BATCHES = 256
STREAM_KEEPALIVE = Duration(15.0)
# Seconds browsers may cache a CORS preflight answer.
DEFAULT_CORS_MAX_AGE = 7200


@dataclass(frozen=True)
class CorsConfig:
    """Cross-origin access for browsers (off unless origins are listed), as the Collector's confighttp.cors."""

    # Exact origins, e.g. https://grafana.example.com; each is also accepted by the Origin check.
    allowed_origins: tuple[str, ...] = ()
    # Request headers besides Authorization and Content-Type that browsers may send.
    allowed_headers: tuple[str, ...] = ()
    max_age: int = DEFAULT_CORS_MAX_AGE

    def validate(self) -> Iterable[tuple[str, str]]:
        for index, origin in enumerate(self.allowed_origins):
            if "*" in origin:
                yield f"allowed_origins[{index}]", "wildcards are not accepted; list each origin"
            elif not origin.startswith(("http://", "https://")):
                yield (
                    f"allowed_origins[{index}]",
                    f'expected an origin like https://grafana.example.com, got "{origin}"',
                )
        if self.max_age < 0:
            yield "max_age", "must not be negative"


@dataclass(frozen=True)
class StreamConfig:
    """The live stream's bounds (GET /api/v1/stream and /api/v1/ws)."""

    max_clients: int = MAX_STREAM_CLIENTS
    client_buffer: int = STREAM_CLIENT_BUFFER
    hub_batches: int = STREAM_HUB_BATCHES
    keepalive: Duration = STREAM_KEEPALIVE

    def validate(self) -> Iterable[tuple[str, str]]:
        for name in ("max_clients", "client_buffer", "hub_batches"):
            if getattr(self, name) < 1:
                yield name, "must be at least 1"
        if self.keepalive <= 0:
            yield "keepalive", "must be more than 0"


@dataclass(frozen=True)
class LimitsConfig:
    """Rows and time every query of the API is bounded by."""

    default_page_limit: int = DEFAULT_PAGE_LIMIT
    max_page_limit: int = MAX_PAGE_LIMIT
    max_trace_spans: int = MAX_TRACE_SPANS
    max_stats_rows: int = MAX_STATS_ROWS
    default_time_window: Duration = DEFAULT_TIME_WINDOW
    max_time_window: Duration = MAX_TIME_WINDOW

    def validate(self) -> Iterable[tuple[str, str]]:
        for name in ("default_page_limit", "max_page_limit", "max_trace_spans", "max_stats_rows"):
            if getattr(self, name) < 1:
                yield name, "must be at least 1"
        if self.default_page_limit > self.max_page_limit:
            yield "default_page_limit", "must not exceed max_page_limit"
        if self.default_time_window <= 0:
            yield "default_time_window", "must be more than 0"
        if self.max_time_window < self.default_time_window:
            yield "max_time_window", "must be at least default_time_window"


@dataclass(frozen=True)
class ApiConfig(HttpServerSettings):
    """The listener's settings (HttpServerSettings: timeouts, connections, admission) and the API's own."""

    endpoint: HostPort = DEFAULT_API_ENDPOINT
    # Jaeger's Remote Storage API v2 over gRPC (a Jaeger v2 with grpc storage reads the store here).
    grpc_endpoint: HostPort = DEFAULT_GRPC_ENDPOINT
    # The clickhouse exporter whose store the API reads; empty: the only one configured.
    exporter: str = ""
    # API keys (genai-collector keys create --role viewer [--tenant T]); empty: the admin's ./data/api-keys.json.
    keys_file: str = ""
    # On: a key is needed even on loopback with no key created (otherwise such a listener is open to read).
    require_keys: bool = False
    # Host names besides localhost and IP literals that requests may name (the name a proxy in front uses).
    allowed_hosts: tuple[str, ...] = ()
    # Web origins besides the endpoint's own allowed to call it (browsers only; see cors for cross-origin reads).
    allowed_origins: tuple[str, ...] = ()
    cors: CorsConfig = field(default_factory=CorsConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    stream: StreamConfig = field(default_factory=StreamConfig)

    def listeners(self) -> Iterable[tuple[str, HostPort]]:
        yield "endpoint", self.endpoint
        yield "grpc_endpoint", self.grpc_endpoint

    def keys_path(self) -> Path:
        return (
            Path(self.keys_file).expanduser() if self.keys_file else admin.DEFAULT_DATA_ROOT / admin.API_KEYS_FILE_NAME
        )

    def web_origins(self) -> tuple[str, ...]:
        """Every origin the Origin check accepts besides the endpoint's own."""
        return (*self.allowed_origins, *self.cors.allowed_origins)
