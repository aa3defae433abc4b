"""Which store answers a query: the exporters whose sender is a queryable store, and picking one of them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

from collector.query.pool import QueryTicket
from collector.query.result import QueryResult


@runtime_checkable
class QueryableStore(Protocol):
    """A store that answers SQL on its own query pool (the clickhouse exporter's store is one)."""

    def submit_raw(self, sql: str) -> QueryTicket[QueryResult]:
        """Queue a user's statement, checked by the raw-SQL guard; TooManyQueriesError when the pool is full."""
        ...

    def query(self, sql: str) -> QueryResult:
        """Run a user's statement as submit_raw does, and wait for it; blocking."""
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
