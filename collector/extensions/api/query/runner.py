"""Running built queries on the store's query pool, and stopping them when the caller leaves.

Every query of the read side goes through ``QueryRunner.run``: the store's
``submit_built`` puts it on the store's own bounded query threads under the
locked query profile (never the event loop, never asyncio's default
executor), and a caller that disconnects cancels it there. Rows come back as
one dict per row, keyed by column name.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from collector.extensions.api.query.sql import BuiltQuery
from collector.extensions.caller import CallerWatch

Record = dict[str, Any]


class Rows(Protocol):
    """A query's answer (collector.query.result.QueryResult)."""

    @property
    def columns(self) -> list[str]: ...

    @property
    def rows(self) -> list[list[Any]]: ...


class Ticket(Protocol):
    """A query on the pool (collector.query.pool.QueryTicket): awaited, or cancelled."""

    async def wait(self) -> Rows: ...

    def cancel(self) -> None: ...


class BuiltQueryStore(Protocol):
    """A store that runs SQL the collector built, with bound parameters, on its query pool."""

    def submit_built(self, sql: str, parameters: Mapping[str, Any] | None = None) -> Ticket: ...


class QueryRunner:
    """Runs the read side's queries on one store."""

    def __init__(self, store: BuiltQueryStore) -> None:
        self._store = store

    async def run(self, query: BuiltQuery, caller: CallerWatch | None = None) -> list[Record]:
        """The rows of ``query``; with ``caller``, cancelled (CallerGone) if that caller leaves first."""
        ticket = self._store.submit_built(query.sql, query.parameters)
        try:
            result = await (caller.outcome(ticket.wait()) if caller is not None else ticket.wait())
        except BaseException:
            ticket.cancel()  # nothing when it has finished; stops it on the pool otherwise
            raise
        columns = result.columns
        return [dict(zip(columns, row, strict=True)) for row in result.rows]
