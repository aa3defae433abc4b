"""What a ClickHouse failure means to the exporter: the server out of reach, worth a retry, or never going to work."""

from __future__ import annotations

from typing import Any

from clickhouse_connect.driver.exceptions import ClickHouseError, DatabaseError, OperationalError

from collector.errors import PermanentError, RetryableError

# ClickHouse error codes that mean the data itself is wrong; retrying cannot help.
PERMANENT_CODES = frozenset({6, 27, 41, 53, 62, 69, 70, 72, 117, 130, 386})


def is_unreachable(exc: BaseException) -> bool:
    """True when no ClickHouse answered: refused or timed-out connections, and the 429/503/504 that
    clickhouse-connect has already retried (a server starting, or a balancer with no server behind it).

    Anything the server itself answered (wrong password, refused DDL) is not: it
    will not go away by waiting for the network.
    """
    return isinstance(exc, (OperationalError, OSError))


def classify_insert_failure(exc: ClickHouseError) -> PermanentError | RetryableError:
    """Whether an insert failure is worth retrying."""
    code: Any = getattr(exc, "code", None)
    message = first_line(exc)
    if is_unreachable(exc):
        return RetryableError(f"ClickHouse unreachable: {message}")
    if isinstance(exc, DatabaseError) and code in PERMANENT_CODES:
        return PermanentError(f"ClickHouse rejected the batch: {message}")
    return RetryableError(f"ClickHouse insert failed: {message}")


def first_line(exc: BaseException) -> str:
    """The first line of an error's message: ClickHouse appends stack traces after it."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
