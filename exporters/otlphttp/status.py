"""What an OTLP/HTTP answer means: sent, retry (and when), or give the batch up.

The OTLP specification makes 429, 502, 503 and 504 retryable, after the
server's ``Retry-After`` when it sends one (seconds, or an HTTP date); every
other 4xx and 5xx means the same request will never be accepted. A failed
request's body is a google.rpc.Status in the request's encoding; its message
is shown, redacted of header secrets, or the start of the body when it is not
a Status (a proxy's error page, say).
"""

from __future__ import annotations

import datetime
import email.utils
from collections.abc import Callable

from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from google.rpc import status_pb2

from collector.errors import ConsumeError, PermanentError, RetryableError

RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})
# Enough of a non-Status error body to recognise it, not a whole HTML page in the log.
MAX_SHOWN_BODY_CHARS = 200
JSON = "application/json"
PROTOBUF_TYPES = frozenset({"application/x-protobuf", "application/protobuf"})


def error_for_response(
    status: int,
    retry_after: str | None,
    body: bytes,
    content_type: str,
    url: str,
    redact: Callable[[str], str],
    now: datetime.datetime | None = None,
) -> ConsumeError:
    """The ConsumeError for a non-2xx answer; ``redact`` cleans the server's text before it is shown."""
    detail = status_message(body, content_type, redact)
    message = f"{url} answered HTTP {status}: {detail}" if detail else f"{url} answered HTTP {status}"
    if status in RETRYABLE_STATUSES:
        return RetryableError(message, retry_after=retry_after_seconds(retry_after, now))
    return PermanentError(message)


def status_message(body: bytes, content_type: str, redact: Callable[[str], str]) -> str:
    """The google.rpc.Status message in ``body``, else its first characters; redacted either way."""
    if not body:
        return ""
    status = status_pb2.Status()
    if decode_message(body, content_type, status) and status.message:
        return redact(status.message)
    # Redacted whole before it is cut: a cut could otherwise keep part of a secret.
    text = redact(body.decode("utf-8", errors="replace")).strip()
    if len(text) > MAX_SHOWN_BODY_CHARS:
        text = text[:MAX_SHOWN_BODY_CHARS] + "..."
    return text


def decode_message(body: bytes, content_type: str, message: Message) -> bool:
    """Fill ``message`` from ``body`` in the encoding ``content_type`` names; False when it is not one."""
    media_type = content_type.split(";")[0].strip().lower()
    try:
        if media_type == JSON:
            json_format.Parse(body, message, ignore_unknown_fields=True)
        elif media_type in PROTOBUF_TYPES:
            message.MergeFromString(body)
        else:
            return False
    except (DecodeError, json_format.ParseError, UnicodeDecodeError, RecursionError):
        return False
    return True


def retry_after_seconds(value: str | None, now: datetime.datetime | None = None) -> float | None:
    """The wait a ``Retry-After`` header asks for, or None for none (absent, unreadable, or already past)."""
    if value is None:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():
        seconds = float(text)
    else:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:  # RFC 9110 dates are GMT; a zone-less one is read as such
            when = when.replace(tzinfo=datetime.UTC)
        seconds = (when - (now or datetime.datetime.now(datetime.UTC))).total_seconds()
    # Zero or a past date names no wait: the exporter's own backoff decides, rather than a tight loop.
    return seconds if seconds > 0 else None
