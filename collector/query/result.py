"""The answer to one query: column names, ClickHouse type names and rows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class QueryResult:
    """Column names, ClickHouse type names and rows of one query."""

    columns: list[str]
    types: list[str]
    rows: list[list[Any]]
