"""Errors the proxy itself answers, written in the format of the API the client speaks.

The official SDKs parse these bodies into their own exception types, so a
client sees a proxy-made 401 or 404 exactly as it would see the provider's.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Literal

from starlette.responses import Response

from collector.errors import retry_after_header

ApiFamily = Literal["openai", "anthropic", "gemini"]

# Anthropic names an error by its status; OpenAI by a type plus an optional code.
_ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    502: "api_error",
    503: "overloaded_error",
    504: "timeout_error",
    529: "overloaded_error",
}
_OPENAI_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    404: "invalid_request_error",
    413: "invalid_request_error",
    500: "server_error",
    502: "server_error",
    504: "timeout",
}
# OpenAI's own error types for the codes the proxy answers with (its rate limits name what ran out).
_OPENAI_CODE_TYPES = {"rate_limit_exceeded": "requests", "insufficient_quota": "insufficient_quota"}
_RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"

# Google APIs name an error by its canonical status (google.rpc.Code), beside the HTTP status.
_GOOGLE_STATUSES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    413: "INVALID_ARGUMENT",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


@dataclass(frozen=True)
class ProxyError(Exception):
    """An answer the proxy gives instead of the upstream's; ``code`` is OpenAI's machine-readable code.

    ``retry_after`` (seconds), when set, goes out as Retry-After, which both SDKs honour.
    """

    status: int
    message: str
    code: str | None = None
    retry_after: float | None = None

    def __str__(self) -> str:
        return self.message

    def response(self, family: ApiFamily) -> Response:
        response = error_response(family, self.status, self.message, self.code, self.retry_after)
        if self.retry_after is not None:
            response.headers["Retry-After"] = retry_after_header(self.retry_after)
        return response


def error_response(
    family: ApiFamily, status: int, message: str, code: str | None = None, retry_after: float | None = None
) -> Response:
    """``message`` as the provider's own error body, with the status it goes with."""
    body: dict[str, object]
    if family == "gemini":
        google_status = _GOOGLE_STATUSES.get(status, "UNKNOWN")
        error: dict[str, object] = {"code": status, "message": message, "status": google_status}
        if retry_after is not None:  # as Google's APIs say when to retry: google.rpc.RetryInfo
            error["details"] = [{"@type": _RETRY_INFO, "retryDelay": f"{math.ceil(retry_after)}s"}]
        body = {"error": error}
    elif family == "anthropic":
        body = {
            "type": "error",
            "error": {"type": _ANTHROPIC_TYPES.get(status, "api_error"), "message": message},
        }
    else:
        body = {
            "error": {
                "message": message,
                "type": _OPENAI_CODE_TYPES.get(code or "") or _OPENAI_TYPES.get(status, "server_error"),
                "param": None,
                "code": code,
            }
        }
    return Response(json.dumps(body), status, media_type="application/json")
