"""What a query can fail with; every message is one line meant for the person who sent the query."""

from __future__ import annotations


class NotReadOnlyError(ValueError):
    """The guard refused the statement: not a read, or reaching past what queries may touch."""


class QueryError(Exception):
    """The store could not run the query (bad SQL, an unknown table, a limit reached...)."""


class QueryCancelledError(QueryError):
    """The query was stopped before it finished: its caller left, or the store is closing."""


class TooManyQueriesError(Exception):
    """Every query slot is busy and the wait queue is full; try again after ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class QueryTimeoutError(QueryError):
    """The query ran longer than max_execution_time and the engine stopped it."""
