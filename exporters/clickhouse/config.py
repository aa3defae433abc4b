"""Settings of the ``clickhouse`` exporter, named as the contrib clickhouseexporter names them."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from collector.config.types import Duration, Secret
from collector.exporterhelper import QueueSettings, RetrySettings

CHDB_SCHEME = "chdb://"
DEFAULT_ENDPOINT = "chdb://./data/clickhouse"
DEFAULT_DATABASE = "default"
DEFAULT_TRACES_TABLE = "otel_traces"
DEFAULT_TIMEOUT = Duration(5.0)
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_USERINFO_PASSWORD = re.compile(r"(://[^:/@]*):.*@")


@dataclass(frozen=True)
class ClickHouseConfig:
    """Where spans are stored and how the tables are made.

    ``endpoint`` is ``chdb://PATH`` for the embedded engine (a relative PATH is
    relative to the working directory) or ``http(s)://host:port`` for a server.
    """

    endpoint: str = DEFAULT_ENDPOINT
    username: str = ""
    password: Secret = field(default_factory=lambda: Secret(""))
    database: str = DEFAULT_DATABASE
    traces_table_name: str = DEFAULT_TRACES_TABLE
    ttl: Duration = Duration(0.0)
    create_schema: bool = True
    timeout: Duration = DEFAULT_TIMEOUT
    sending_queue: QueueSettings = field(default_factory=QueueSettings)
    retry_on_failure: RetrySettings = field(default_factory=RetrySettings)

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
        if not _IDENTIFIER.match(self.traces_table_name):
            yield (
                "traces_table_name",
                f'expected a plain identifier (letters, digits, _), got "{self.traces_table_name}"',
            )
        if self.ttl < 0:
            yield "ttl", "must not be negative"


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
