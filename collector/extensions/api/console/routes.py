"""The console's routes: every page path answers the one HTML document; ``/assets`` serves the files under static/.

Pages and assets hold no data, so the access guard lets them through without
a key (``is_console_path``: exactly these routes, nothing else); the app then calls the REST API
with the key the user gave it. Every answer carries the security headers
(``SECURITY_HEADERS``): a Content-Security-Policy with scripts from this
origin only, no inline script or style attribute, no eval, and Trusted Types
required, so no string can become HTML. Assets are compressed when the browser
takes gzip and revalidated by ETag (a reload after an upgrade gets the new files).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route, compile_path
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from collector.extensions.api.context import ApiContext

STATIC_DIRECTORY = Path(__file__).resolve().parent / "static"
INDEX_FILE = STATIC_DIRECTORY / "index.html"
ASSETS_PREFIX = "/assets"
# The pages of the app (the router in static/js/main.js knows the same list).
PAGE_PATHS = (
    "/",
    "/traces",
    "/traces/{trace_id}",
    "/traces/{trace_id}/graph",
    "/conversations",
    "/conversations/{conversation_id:path}",
    "/findings",
    "/evaluations",
    "/live",
    "/key",
)
_PAGE_PATTERNS = tuple(compile_path(path)[0] for path in PAGE_PATHS)
# Responses smaller than this are sent as they are: gzip's header would outweigh the saving.
GZIP_MINIMUM_BYTES = 1024
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "require-trusted-types-for 'script'",
        "trusted-types 'none'",
    )
)
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
    # Revalidate every time (a 304 when unchanged): the files change with the collector, not on a schedule.
    (b"cache-control", b"no-cache"),
)


def is_console_path(path: str) -> bool:
    """Whether ``path`` is one of the console's pages or under its assets: what may be fetched without a key."""
    return path.startswith(f"{ASSETS_PREFIX}/") or any(pattern.match(path) for pattern in _PAGE_PATTERNS)


class SecurityHeaders:
    """ASGI middleware adding ``SECURITY_HEADERS`` to every response of ``app``."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {name for name, _ in SECURITY_HEADERS}
                headers = [(name, value) for name, value in message.get("headers", []) if name.lower() not in names]
                message = {**message, "headers": [*headers, *SECURITY_HEADERS]}
            await send(message)

        await self._app(scope, receive, send_with_headers)


class IndexPage:
    """The app's HTML document, read once, for every page path; 304 when the browser has this version."""

    def __init__(self, path: Path = INDEX_FILE) -> None:
        self._body = path.read_bytes()
        self._etag = '"' + hashlib.sha256(self._body).hexdigest()[:32] + '"'

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope)
        headers = {"etag": self._etag}
        if request.headers.get("if-none-match") == self._etag:
            response = Response(status_code=304, headers=headers)
        else:
            body = b"" if request.method == "HEAD" else self._body
            response = Response(body, media_type="text/html; charset=utf-8", headers=headers)
            if request.method == "HEAD":
                response.headers["content-length"] = str(len(self._body))
        await response(scope, receive, send)


def _wrapped(app: ASGIApp) -> ASGIApp:
    return GZipMiddleware(SecurityHeaders(app), minimum_size=GZIP_MINIMUM_BYTES)


def routes(context: ApiContext) -> list[Any]:
    """The page routes and the assets' mount (plain Starlette routes: no role, no OpenAPI entry)."""
    page = _wrapped(IndexPage())
    served: list[BaseRoute] = [Route(path, page, methods=["GET", "HEAD"]) for path in PAGE_PATHS]
    served.append(Mount(ASSETS_PREFIX, app=_wrapped(StaticFiles(directory=STATIC_DIRECTORY)), name="assets"))
    return served
