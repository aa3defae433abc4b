"""Settings of the ``clickhouse`` exporter, named as the contrib clickhouseexporter names them.

What only a server can use (credentials, TLS, a cluster) is only
accepted with an ``http(s)://`` endpoint: chDB runs in this process, so a
setting that could not apply is a mistake worth one line, not a silent no-op.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from collector.config.types import Duration, Secret
from collector.exporterhelper import QueueSettings, RetrySettings
from collector.query.limits import QueryLimits, memory_problems
from exporters.clickhouse.signal_schema import (
    DEFAULT_LOGS_TABLE,
    DEFAULT_METRIC_TABLES,
    METRIC_KINDS,
    MetricKind,
    SignalTables,
)

CHDB_SCHEME = "chdb://"
DEFAULT_ENDPOINT = "chdb://./data/clickhouse"
DEFAULT_DATABASE = "default"
DEFAULT_TRACES_TABLE = "otel_traces"
DEFAULT_TIMEOUT = Duration(5.0)
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_USERINFO_PASSWORD = re.compile(r"(://[^:/@]*):.*@")
# Cluster names are quoted in DDL, but the server's config names them: keep to what it accepts.
_CLUSTER_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
# MergeTree families the schema can be built with; aggregating tables use the matching variant.
TABLE_ENGINES = ("MergeTree", "ReplicatedMergeTree", "SharedMergeTree")

# What clickhouse-connect can compress request bodies (inserts) with.
Compression = Literal["lz4", "zstd", "gzip", "none"]
DEFAULT_COMPRESSION: Compression = "lz4"


@dataclass(frozen=True)
class TlsSettings:
    """How an https:// endpoint's certificate is checked."""

    insecure_skip_verify: bool = False
    ca_file: str = ""

    def validate(self) -> Iterable[tuple[str, str]]:
        if self.insecure_skip_verify and self.ca_file:
            yield "insecure_skip_verify", "true skips certificate checks, so ca_file would go unused; drop one"
        if self.ca_file and not Path(self.ca_file).expanduser().is_file():
            yield "ca_file", f'no such file: "{self.ca_file}"'

    @property
    def configured(self) -> bool:
        return self.insecure_skip_verify or bool(self.ca_file)


@dataclass(frozen=True)
class TableEngine:
    """The engine of the tables (``name``) and its arguments (``params``, SQL as written in ENGINE = name(params)).

    An empty name means MergeTree on one server and ReplicatedMergeTree with ``cluster_name``.
    """

    name: str = ""
    params: str = ""

    def validate(self) -> Iterable[tuple[str, str]]:
        if self.name and self.name not in TABLE_ENGINES:
            yield "name", f'expected one of {", ".join(TABLE_ENGINES)}, got "{self.name}"'
        if ";" in self.params:
            yield "params", "engine arguments cannot contain ;"


@dataclass(frozen=True)
class MetricTable:
    """One metric type's table."""

    name: str


def _metric_table(kind: MetricKind) -> MetricTable:
    return MetricTable(DEFAULT_METRIC_TABLES[kind])


@dataclass(frozen=True)
class MetricsTables:
    """The table of each metric point type, as the contrib exporter's ``metrics_tables`` names them."""

    gauge: MetricTable = field(default_factory=lambda: _metric_table("gauge"))
    sum: MetricTable = field(default_factory=lambda: _metric_table("sum"))
    histogram: MetricTable = field(default_factory=lambda: _metric_table("histogram"))
    exponential_histogram: MetricTable = field(default_factory=lambda: _metric_table("exponential_histogram"))
    summary: MetricTable = field(default_factory=lambda: _metric_table("summary"))

    def name(self, kind: MetricKind) -> str:
        table: MetricTable = getattr(self, kind)
        return table.name


@dataclass(frozen=True)
class ClickHouseConfig:
    """Where spans are stored and how the tables are made.

    ``endpoint`` is ``chdb://PATH`` for the embedded engine (a relative PATH is
    relative to the working directory) or ``http(s)://host:port`` for a server.
    """

    endpoint: str = DEFAULT_ENDPOINT
    username: str = ""
    password: Secret = field(default_factory=lambda: Secret(""))
    # A separate, restricted server user for queries (docs/security.md); empty: queries use username.
    query_username: str = ""
    query_password: Secret = field(default_factory=lambda: Secret(""))
    database: str = DEFAULT_DATABASE
    traces_table_name: str = DEFAULT_TRACES_TABLE
    logs_table_name: str = DEFAULT_LOGS_TABLE
    metrics_tables: MetricsTables = field(default_factory=MetricsTables)
    ttl: Duration = Duration(0.0)
    create_schema: bool = True
    timeout: Duration = DEFAULT_TIMEOUT
    compression: Compression = DEFAULT_COMPRESSION
    tls: TlsSettings = field(default_factory=TlsSettings)
    cluster_name: str = ""
    table_engine: TableEngine = field(default_factory=TableEngine)
    sending_queue: QueueSettings = field(default_factory=QueueSettings)
    retry_on_failure: RetrySettings = field(default_factory=RetrySettings)
    query_limits: QueryLimits = field(default_factory=QueryLimits)

    @property
    def signal_tables(self) -> SignalTables:
        """The log and metric table names the schema is made with."""
        metrics = self.metrics_tables
        return SignalTables(self.logs_table_name, *(metrics.name(kind) for kind in METRIC_KINDS))

    @property
    def is_embedded(self) -> bool:
        return self.endpoint.startswith(CHDB_SCHEME)

    def chdb_path(self) -> Path:
        """The absolute data directory of an embedded endpoint."""
        return Path(self.endpoint[len(CHDB_SCHEME) :]).expanduser().resolve()

    def validate(self) -> Iterable[tuple[str, str]]:
        if self.is_embedded:
            if not self.endpoint[len(CHDB_SCHEME) :]:
                yield "endpoint", "chdb:// needs a data directory, e.g. chdb://./data/clickhouse"
        else:
            try:
                parts = urlsplit(self.endpoint)
                port_ok = parts.port is None or parts.port > 0  # .port raises on a non-numeric port
            except ValueError:
                parts, port_ok = None, False
            if parts is None or not port_ok or parts.scheme not in ("http", "https") or not parts.hostname:
                yield (
                    "endpoint",
                    f'expected chdb://PATH or http(s)://host:port, got "{redact_url(self.endpoint)}"',
                )
        if not _IDENTIFIER.match(self.database):
            yield "database", f'expected a plain identifier (letters, digits, _), got "{self.database}"'
        yield from self._table_name_problems()
        if self.ttl < 0:
            yield "ttl", "must not be negative"
        if self.timeout <= 0:
            yield "timeout", "must be more than 0"
        if self.cluster_name and not _CLUSTER_NAME.match(self.cluster_name):
            yield "cluster_name", f'expected a cluster name from the server\'s config, got "{self.cluster_name}"'
        if self.is_embedded:
            yield from self._server_only_problems()
        elif self.tls.configured and not self.endpoint.startswith("https://"):
            yield "tls", "applies to https:// endpoints only"
        if self.query_password and not self.query_username:
            yield "query_password", "needs query_username"

    def _table_name_problems(self) -> Iterable[tuple[str, str]]:
        """Each table name a plain identifier, and no two tables under one name."""
        names = {
            "traces_table_name": self.traces_table_name,
            "logs_table_name": self.logs_table_name,
            **{f"metrics_tables.{kind}.name": self.metrics_tables.name(kind) for kind in METRIC_KINDS},
        }
        seen: dict[str, str] = {}
        for key, name in names.items():
            if not _IDENTIFIER.match(name):
                yield key, f'expected a plain identifier (letters, digits, _), got "{name}"'
            elif name in seen:
                yield key, f'"{name}" is already the table of {seen[name]}; each signal needs its own table'
            else:
                seen[name] = key

    def memory_problems(self, memory_limit: int, total_bytes: int) -> Iterable[tuple[str, str]]:
        """Query limits the embedded engine's memory cannot hold (``memory_limit``: the memory_limiter's soft limit)."""
        if self.is_embedded:
            for key, message in memory_problems(self.query_limits, memory_limit, total_bytes):
                yield f"query_limits.{key}", message

    def _server_only_problems(self) -> Iterable[tuple[str, str]]:
        server_only = {
            "username": bool(self.username),
            "password": bool(self.password),
            "query_username": bool(self.query_username),
            "query_password": bool(self.query_password),
            "tls": self.tls.configured,
            "cluster_name": bool(self.cluster_name),
        }
        for key, set_ in server_only.items():
            if set_:
                yield key, "applies to a ClickHouse server (an http(s):// endpoint), not to chdb://"


def redact_url(url: str) -> str:
    """A URL as it may be shown: any password it carries replaced by ***."""
    try:
        parts = urlsplit(url)
    except ValueError:
        # Unparseable (a broken IPv6 literal...): hide everything between "user:" and the last "@".
        return _USERINFO_PASSWORD.sub(r"\1:***@", url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()
