"""What a failed OTLP/gRPC export means: retry (and when), or give the batch up.

The OTLP specification lists the gRPC codes after which the same request may
succeed: CANCELLED, DEADLINE_EXCEEDED, ABORTED, OUT_OF_RANGE, UNAVAILABLE and
DATA_LOSS, plus RESOURCE_EXHAUSTED when the server sent a RetryInfo (a
throttling server, as opposed to a request that is simply too large). Every
other code is permanent. A RetryInfo's ``retry_delay`` is the wait the server
asked for, and wins over the exporter's own backoff.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import grpc
from google.protobuf.message import DecodeError
from google.rpc import error_details_pb2, status_pb2

from collector.errors import ConsumeError, PermanentError, RetryableError

STATUS_DETAILS_KEY = "grpc-status-details-bin"
NANOS_PER_SECOND = 1e9

RETRYABLE_CODES = frozenset(
    {
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.OUT_OF_RANGE,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DATA_LOSS,
    }
)

Metadata = Sequence[tuple[str, str | bytes]]


@dataclass(frozen=True)
class RetryHint:
    """Whether the server sent a RetryInfo, and the delay it asked for (None when it gave none)."""

    sent: bool
    delay: float | None


def retry_hint(trailing_metadata: Metadata | None) -> RetryHint:
    """The RetryInfo in a call's ``grpc-status-details-bin`` trailer, if any."""
    for key, value in trailing_metadata or ():
        if key != STATUS_DETAILS_KEY or not isinstance(value, bytes):
            continue
        try:
            status = status_pb2.Status.FromString(value)
        except DecodeError:
            return RetryHint(False, None)
        for detail in status.details:
            if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
                info = error_details_pb2.RetryInfo()
                detail.Unpack(info)
                delay = info.retry_delay.seconds + info.retry_delay.nanos / NANOS_PER_SECOND
                # A zero (or nonsense negative) delay names no wait: the exporter's backoff decides.
                return RetryHint(True, delay if delay > 0 else None)
    return RetryHint(False, None)


def error_for(
    code: grpc.StatusCode,
    details: str,
    trailing_metadata: Metadata | None,
    endpoint: str,
    redact: Callable[[str], str],
) -> ConsumeError:
    """The ConsumeError for a call that ended with ``code``; ``redact`` cleans the server's text."""
    hint = retry_hint(trailing_metadata)
    # The server's text may quote what it was sent (a rejected token, say): redacted before it is shown.
    message = f"{endpoint} answered {code.name}: {redact(details)}" if details else f"{endpoint} answered {code.name}"
    if code in RETRYABLE_CODES or (code is grpc.StatusCode.RESOURCE_EXHAUSTED and hint.sent):
        return RetryableError(message, retry_after=hint.delay)
    return PermanentError(message)


def error_for_rpc(error: grpc.RpcError, endpoint: str, redact: Callable[[str], str]) -> ConsumeError:
    """``error_for`` applied to what grpc raised for a blocking unary call."""
    # A blocking call raises an RpcError that is also a grpc.Call; guard anyway, it is not typed so.
    code = error.code() if isinstance(error, grpc.Call) else grpc.StatusCode.UNKNOWN
    details = (error.details() or "") if isinstance(error, grpc.Call) else ""
    trailers = error.trailing_metadata() if isinstance(error, grpc.Call) else None
    return error_for(code, details, trailers, endpoint, redact)
