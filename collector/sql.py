"""Read-only SQL: the guard for statements users send to the store, and the result they get back.

The admin endpoint and the ``query`` command accept one read-only statement
(SELECT, WITH ... SELECT, SHOW, DESCRIBE, EXPLAIN, EXISTS). Anything else is
refused with a message saying so; the store also runs queries with ClickHouse's
``readonly`` setting, so this guard is the friendly first line, not the only one.

Read-only in ClickHouse still lets a query reach outside the database: ``INTO
OUTFILE`` and ``file()`` touch the files of the process running the engine
(the collector itself, with chDB), ``url()``, ``s3()``, ``remote()`` and their
kin open connections. None of that belongs in a query over telemetry, so the
guard refuses them too.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

READ_ONLY_KEYWORDS = frozenset({"SELECT", "WITH", "SHOW", "DESCRIBE", "DESC", "EXPLAIN", "EXISTS"})
_COMMENT = re.compile(r"--[^\n]*|/\*.*?\*/", re.DOTALL)
_STRING = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|`(?:[^`\\]|\\.)*`", re.DOTALL)
_FIRST_WORD = re.compile(r"\s*\(*\s*([A-Za-z]+)")
_INTO_OUTFILE = re.compile(r"\bINTO\s+OUTFILE\b", re.IGNORECASE)
# Functions (scalar or table) that read files, run programs or open connections.
OUTSIDE_FUNCTIONS = frozenset(
    name.lower()
    for name in (
        "file", "fileCluster", "url", "urlCluster", "s3", "s3Cluster", "gcs", "oss", "cosn",
        "hdfs", "hdfsCluster", "azureBlobStorage", "azureBlobStorageCluster", "iceberg", "deltaLake", "hudi",
        "remote", "remoteSecure", "cluster", "clusterAllReplicas", "mysql", "postgresql", "mongodb",
        "redis", "sqlite", "jdbc", "odbc", "executable", "input", "python",
    )
)  # fmt: skip
_FUNCTION_CALL = re.compile(r"\b([A-Za-z_][A-Za-z0-9_]*)\s*\(")


class NotReadOnlyError(ValueError):
    """The statement would change something, or is more than one statement."""


class QueryError(Exception):
    """The store could not run the query (bad SQL, unknown table...); the message is for the user."""


def check_read_only(sql: str) -> str:
    """Return ``sql`` without a trailing semicolon if it is one read-only statement; else raise."""
    without_comments = _COMMENT.sub(" ", sql)
    skeleton = _STRING.sub("''", without_comments).strip().rstrip(";").strip()
    if not skeleton:
        raise NotReadOnlyError("the query is empty")
    if ";" in skeleton:
        raise NotReadOnlyError("only one statement at a time is accepted")
    match = _FIRST_WORD.match(skeleton)
    keyword = match.group(1).upper() if match else ""
    if keyword not in READ_ONLY_KEYWORDS:
        allowed = ", ".join(sorted(READ_ONLY_KEYWORDS))
        raise NotReadOnlyError(f"only read-only statements are accepted ({allowed}); got {keyword or 'nothing'}")
    if _INTO_OUTFILE.search(skeleton):
        raise NotReadOnlyError("INTO OUTFILE is not accepted; the result is returned to you")
    for call in _FUNCTION_CALL.finditer(skeleton):
        if call.group(1).lower() in OUTSIDE_FUNCTIONS:
            raise NotReadOnlyError(
                f"{call.group(1)}() reaches outside the store (files, programs or the network) and is not accepted"
            )
    return sql.strip().rstrip(";").rstrip()


@dataclass(frozen=True)
class QueryResult:
    """Column names, ClickHouse type names and rows of one query."""

    columns: list[str]
    types: list[str]
    rows: list[list[Any]]


@runtime_checkable
class QueryableStore(Protocol):
    """A store that answers read-only SQL (the clickhouse exporter's store is one)."""

    def query(self, sql: str) -> QueryResult:
        """Run one read-only statement; blocking."""
        ...

    def describe(self) -> str:
        """Where the store lives, for messages (never includes a password)."""
        ...


class StoreChoiceError(Exception):
    """No store, or no single store, answers a query; ``not_found`` when the named one does not exist."""

    def __init__(self, message: str, not_found: bool) -> None:
        super().__init__(message)
        self.not_found = not_found


def queryable_stores(exporters: Mapping[Any, Any]) -> dict[str, QueryableStore]:
    """The exporters (by id) whose sender answers SQL: the clickhouse exporter's store."""
    return {
        str(cid): sender
        for cid, exporter in exporters.items()
        if isinstance(sender := getattr(exporter, "sender", None), QueryableStore)
    }


def choose_store(stores: Mapping[str, QueryableStore], exporter: str | None, how_to_name: str) -> QueryableStore:
    """The store of ``exporter``, or the only store when none is named; ``how_to_name`` completes the message."""
    if exporter is not None:
        if exporter not in stores:
            known = ", ".join(sorted(stores)) or "none"
            raise StoreChoiceError(f'no queryable exporter "{exporter}"; configured: {known}', not_found=True)
        return stores[exporter]
    if not stores:
        raise StoreChoiceError("no exporter with a queryable store (clickhouse) is configured", not_found=True)
    if len(stores) > 1:
        names = ", ".join(sorted(stores))
        raise StoreChoiceError(f"several stores are configured ({names}); {how_to_name}", not_found=False)
    return next(iter(stores.values()))
