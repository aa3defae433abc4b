"""Errors a consumer raises, and the one table that maps them to OTLP status codes.

Every component in a pipeline either accepts a batch or raises one of these. The
receiver turns the error into the protocol's answer: a retryable error tells the
client to send again later, a permanent one tells it not to bother.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import grpc


class ConsumeError(Exception):
    """Base of every error a consumer may raise for a batch it did not accept.

    ``retry_after`` (seconds), when known, is passed on to the client as
    HTTP ``Retry-After`` or gRPC ``RetryInfo``; only retryable errors set it.
    """

    retryable: bool = False
    retry_after: float | None = None


class RetryableError(ConsumeError):
    """The batch was not accepted, but the same batch may succeed later."""

    retryable = True

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentError(ConsumeError):
    """The batch can never be accepted as it is (malformed, rejected by policy)."""

    retryable = False


class QueueFullError(RetryableError):
    """An exporter's sending queue has no room for the batch right now."""


class MemoryLimitError(RetryableError):
    """The process is above the ``memory_limiter``'s limit: the client should slow down and retry.

    Always carries ``retry_after``, because RESOURCE_EXHAUSTED is retryable for
    OTLP clients only when RetryInfo comes with it.
    """

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message, retry_after)


@dataclass(frozen=True)
class StatusMapping:
    """How one kind of failure is answered over OTLP/HTTP and OTLP/gRPC."""

    http_status: int
    grpc_code: grpc.StatusCode


# The OTLP specification lists 429, 502, 503 and 504 (HTTP) and UNAVAILABLE,
# RESOURCE_EXHAUSTED (with RetryInfo) and friends (gRPC) as retryable; 400 and
# INVALID_ARGUMENT tell the client to drop the data.
RETRYABLE_STATUS = StatusMapping(503, grpc.StatusCode.UNAVAILABLE)
PERMANENT_STATUS = StatusMapping(400, grpc.StatusCode.INVALID_ARGUMENT)
# The server is overloaded and asks the client to throttle itself, as the OTLP
# specification words it: 429 Too Many Requests, RESOURCE_EXHAUSTED with RetryInfo.
THROTTLED_STATUS = StatusMapping(429, grpc.StatusCode.RESOURCE_EXHAUSTED)

# Specific errors first; anything else falls back on retryable or permanent.
_STATUS_BY_ERROR: tuple[tuple[type[ConsumeError], StatusMapping], ...] = ((MemoryLimitError, THROTTLED_STATUS),)


def status_for(error: ConsumeError) -> StatusMapping:
    """The OTLP status that answers ``error``."""
    for error_type, mapping in _STATUS_BY_ERROR:
        if isinstance(error, error_type):
            return mapping
    return RETRYABLE_STATUS if error.retryable else PERMANENT_STATUS


def retry_after_header(seconds: float) -> str:
    """An HTTP Retry-After value: whole seconds, rounded up so that a client never retries early."""
    return str(max(1, math.ceil(seconds)))


class StartError(Exception):
    """A component cannot start for a reason the user can fix; the message says which."""


def raise_fan_out_errors(results: Sequence[object]) -> None:
    """Raise what a fan-out answers when some branches failed (``asyncio.gather(..., return_exceptions=True)``).

    A retryable error wins: the client should send again, even if one branch also refused permanently.
    """
    errors = [result for result in results if isinstance(result, BaseException)]
    for error in errors:
        if isinstance(error, ConsumeError) and error.retryable:
            raise error
    if errors:
        raise errors[0]
