"""Read-only SQL: the guard for statements users send to the store, and the result they get back.

The admin endpoint and the ``query`` command accept one read-only statement
(SELECT, WITH ... SELECT, SHOW, DESCRIBE, EXPLAIN, EXISTS). Anything else is
refused with a message saying so; the store also runs queries with ClickHouse's
``readonly`` setting, so this guard is the friendly first line, not the only one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

READ_ONLY_KEYWORDS = frozenset({"SELECT", "WITH", "SHOW", "DESCRIBE", "DESC", "EXPLAIN", "EXISTS"})
_COMMENT = re.compile(r"--[^\n]*|/\*.*?\*/", re.DOTALL)
_STRING = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|`(?:[^`\\]|\\.)*`", re.DOTALL)
_FIRST_WORD = re.compile(r"\s*\(*\s*([A-Za-z]+)")


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
