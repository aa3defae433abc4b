"""An endpoint declared once: path, parameters, response schema and handler; routes and the OpenAPI document follow.

A route group (rest, stream, and any API that joins them: see
collector.extensions.api.app) returns ``Endpoint`` values and/or plain
Starlette routes. For an ``Endpoint`` the app makes the route: it checks the
caller's role, parses the declared parameters (400 naming the one at fault),
hands the handler an ``ApiCall`` and turns what it returns (a JSON-ready
value, or a Response) and what it raises (ApiError, the query pool's errors,
a caller that left) into the answer. ``openapi`` leaves an endpoint out of
the document (APIs that mimic another project's), ``strict`` lets it accept
parameters it does not declare (clients of those APIs send extras), and
``error_response`` gives it another project's error shape.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket

from collector.extensions.access import WEBSOCKET_POLICY_VIOLATION, AccessDenied, Principal, require
from collector.extensions.api.context import ApiContext
from collector.extensions.api.errors import (
    GUARD_CODES,
    ApiError,
    BadParameter,
    Busy,
    QueryTimedOut,
    StoreFailed,
    error_response,
)
from collector.extensions.api.params import Arguments, Parameter, format_duration, parse_arguments
from collector.extensions.api.query.runner import Record
from collector.extensions.api.query.sql import BuiltQuery, Scope, TimeRange
from collector.extensions.caller import CallerGone, CallerWatch
from collector.keys import Role
from collector.query.errors import QueryCancelledError, QueryError, QueryTimeoutError, TooManyQueriesError

JSON_MEDIA_TYPE = "application/json"
# What a caller that disconnected is "answered" with (nginx's convention); nobody reads it.
CLIENT_CLOSED_REQUEST = 499
logger = logging.getLogger(__name__)


class JsonResponse(Response):
    """JSON by orjson: faster than json, and it embeds pre-encoded parts (``orjson.Fragment``) as they are."""

    media_type = JSON_MEDIA_TYPE

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


@dataclass
class ApiCall:
    """One request to an endpoint, as its handler sees it (``request`` is the WebSocket for a WebSocket endpoint)."""

    request: HTTPConnection
    args: Arguments
    principal: Principal
    context: ApiContext

    @property
    def scope(self) -> Scope:
        """Whose data this caller may read: the tenant of its key, or everyone's."""
        return Scope.of(self.principal)

    @property
    def caller(self) -> CallerWatch | None:
        """The watch on the caller leaving (HTTP requests; a WebSocket handler watches its socket itself)."""
        return CallerWatch.of(self.request) if isinstance(self.request, Request) else None

    async def run(self, query: BuiltQuery) -> list[Record]:
        """The rows of ``query``, run on the store's query pool; cancelled there if the caller leaves."""
        return await self.context.runner.run(query, self.caller)

    def window(self, start: str = "start", end: str = "end", default: float | None = None) -> TimeRange:
        """The time range of the ``start`` and ``end`` parameters, within the configured limits.

        No end: now. No start: ``default`` seconds (the configured default window) before the end.
        """
        limits = self.context.config.limits
        end_ns = self.args.get(end)
        if end_ns is None:
            end_ns = self.context.clock()
        start_ns = self.args.get(start)
        if start_ns is None:
            span = limits.default_time_window if default is None else default
            start_ns = end_ns - int(span * 1e9)
        if start_ns >= end_ns:
            raise BadParameter(start, "must be before end")
        if end_ns - start_ns > limits.max_time_window * 1e9:
            longest = format_duration(limits.max_time_window)
            raise BadParameter(start, f"the window from start to end is longer than {longest} (max_time_window)")
        return TimeRange(start_ns, end_ns)


Handler = Callable[[ApiCall], Awaitable[Any]]
ErrorRenderer = Callable[[ApiError], Response]


def api_error_response(error: ApiError) -> Response:
    return error.response()


@dataclass(frozen=True)
class Endpoint:
    """One route, declared once; see the module docstring."""

    path: str
    operation_id: str
    summary: str
    handler: Handler
    parameters: tuple[Parameter, ...] = ()
    response_schema: Mapping[str, Any] = field(default_factory=dict)
    response_media_type: str = JSON_MEDIA_TYPE
    description: str = ""
    method: str = "GET"
    role: Role = "viewer"
    tags: tuple[str, ...] = ()
    errors: tuple[int, ...] = (400, 401, 403)  # documented besides 503 and 504, which any query may give
    openapi: bool = True
    strict: bool = True
    error_response: ErrorRenderer = api_error_response
    # A WebSocket endpoint: its handler accepts the socket and runs it; refusals before that are HTTP answers.
    websocket: bool = False

    def route(self, context: ApiContext) -> BaseRoute:
        if self.websocket:
            return WebSocketRoute(self.path, lambda socket: self._run_socket(socket, context), name=self.operation_id)

        async def handle(request: Request) -> Response:
            started = time.monotonic()
            try:
                return await self._answer(request, context)
            finally:
                CallerWatch.close_of(request)
                context.observe(self.operation_id, time.monotonic() - started)

        return Route(self.path, handle, methods=[self.method], name=self.operation_id)

    async def _run_socket(self, socket: WebSocket, context: ApiContext) -> None:
        try:
            principal = require(socket, self.role)
            call = ApiCall(socket, parse_arguments(socket, self.parameters, self.strict), principal, context)
        except AccessDenied as exc:
            await _deny_socket(socket, error_response(exc.status, GUARD_CODES.get(exc.status, "forbidden"), str(exc)))
            return
        except ApiError as exc:
            await _deny_socket(socket, self.error_response(exc))
            return
        await self.handler(call)

    async def _answer(self, request: Request, context: ApiContext) -> Response:
        try:
            principal = require(request, self.role)
            call = ApiCall(request, parse_arguments(request, self.parameters, self.strict), principal, context)
            result = await self.handler(call)
        except AccessDenied as exc:
            headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
            return error_response(exc.status, GUARD_CODES.get(exc.status, "forbidden"), str(exc), headers)
        except CallerGone:
            return Response(status_code=CLIENT_CLOSED_REQUEST)
        except ApiError as exc:
            return self.error_response(exc)
        except TooManyQueriesError as exc:
            return self.error_response(Busy(str(exc), headers={"Retry-After": str(max(1, round(exc.retry_after)))}))
        except QueryCancelledError as exc:  # the store is closing
            return self.error_response(Busy(str(exc)))
        except QueryTimeoutError as exc:
            return self.error_response(QueryTimedOut(str(exc)))
        except QueryError as exc:
            logger.warning("%s %s: the store could not answer: %s", self.method, self.path, exc)
            return self.error_response(StoreFailed(f"the store could not answer: {exc}"))
        if isinstance(result, Response):
            return result
        return JsonResponse(result)


async def _deny_socket(socket: WebSocket, answer: Response) -> None:
    """Refuse a WebSocket handshake with an HTTP answer, or with a policy-violation close where there is none."""
    if "websocket.http.response" in socket.scope.get("extensions", {}):
        await socket.send_denial_response(answer)
    else:
        await socket.close(WEBSOCKET_POLICY_VIOLATION)


Routes = Sequence[Any]  # Endpoint and Starlette BaseRoute values
RouteGroup = Callable[[ApiContext], Routes]
