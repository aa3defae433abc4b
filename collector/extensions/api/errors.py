"""The API's errors and their one JSON shape: ``{"error": message, "code": code}`` (+ ``"parameter"`` for a 400).

``error`` is a sentence for a person, ``code`` a stable word for a program:
``bad_parameter`` (400, with the parameter named), ``unauthorized`` (401),
``forbidden`` (403), ``not_found`` (404), ``busy`` (503, with Retry-After),
``timeout`` (504), ``store_error`` (502), and the access guard's refusals
(``host``, ``origin``, ``content_type``, ``key``) before a route is reached.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse

JSON_ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error", "code"],
    "properties": {
        "error": {"type": "string", "description": "What went wrong, for a person."},
        "code": {"type": "string", "description": "What went wrong, as a stable word."},
        "parameter": {"type": "string", "description": "The query or path parameter at fault (400 only)."},
    },
}
# The access guard's refusal reasons, as codes.
GUARD_CODES = {401: "unauthorized", 403: "forbidden"}


class ApiError(Exception):
    """An answer other than success; ``status`` and ``code`` go on the wire with the message."""

    status = 500
    code = "internal"

    def __init__(self, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.headers = headers

    def body(self) -> dict[str, Any]:
        return {"error": str(self), "code": self.code}

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), self.status, headers=self.headers)


class BadParameter(ApiError):
    """A query or path parameter that cannot be used as given; the message says why."""

    status = 400
    code = "bad_parameter"

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(f"{parameter}: {message}")
        self.parameter = parameter

    def body(self) -> dict[str, Any]:
        return {**super().body(), "parameter": self.parameter}


class NotFound(ApiError):
    status = 404
    code = "not_found"


class Busy(ApiError):
    """Every query slot of the store is taken; try again after Retry-After."""

    status = 503
    code = "busy"


class QueryTimedOut(ApiError):
    status = 504
    code = "timeout"


class StoreFailed(ApiError):
    """The store could not answer (unreachable, or an error of its own)."""

    status = 502
    code = "store_error"


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """An error in the API's shape for answers made outside a route (the guard, Starlette's own 404 and 405)."""
    return JSONResponse({"error": message, "code": code}, status, headers=headers)
