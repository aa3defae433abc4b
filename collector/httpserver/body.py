"""The one reader of HTTP request bodies: never past a size limit, never past the listener's bytes in flight.

``HttpServer`` gives every request a share of its listener's budget
(``admission.request_limit_mib``), held until the response has been sent
whole, streams included. A declared Content-Length over the limit is refused
before a byte of the body is read; one within it is taken from the share up
front, so a request the budget cannot hold is refused before it is read. A
body without a length (chunked) takes its share chunk by chunk, and is refused
as soon as it passes the limit or the budget. Each endpoint answers the two
refusals in its own protocol's terms: 413 for ``RequestBodyTooLarge``, a
retryable 503 for ``Overloaded``.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from collector.listeners.inflight import InFlightBudget, Share

# Where a request's share travels in its ASGI scope (an extension key of ours).
SHARE_SCOPE_KEY = "genai_collector.inflight_share"


class RequestBodyTooLarge(Exception):
    """The body is (or says it is) longer than the endpoint takes."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the request body exceeds {limit} bytes")
        self.limit = limit


class Admission:
    """ASGI middleware giving each HTTP request its share of ``budget`` for as long as it is being answered."""

    def __init__(self, app: ASGIApp, budget: InFlightBudget) -> None:
        self._app = app
        self._budget = budget

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        with self._budget.admit() as share:
            scope[SHARE_SCOPE_KEY] = share
            await self._app(scope, receive, send)


def request_share(request: Request) -> Share:
    """The bytes ``request`` holds of its listener's budget."""
    share = request.scope.get(SHARE_SCOPE_KEY)
    if not isinstance(share, Share):
        raise RuntimeError("the app is served outside collector.httpserver.HttpServer: no bound on bytes in flight")
    return share


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, at most ``limit`` bytes, held in the request's share.

    Raises RequestBodyTooLarge or Overloaded, before reading when the declared length tells.
    """
    share = request_share(request)
    declared = request.headers.get("content-length")
    length = int(declared) if declared is not None and declared.isascii() and declared.isdigit() else None
    if length is not None:
        if length > limit:
            raise RequestBodyTooLarge(limit)
        share.take(length)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RequestBodyTooLarge(limit)
        if length is None:
            share.take(len(chunk))
        chunks.append(chunk)
    return b"".join(chunks)
