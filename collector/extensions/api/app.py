"""The api extension's ASGI app: every route group on one Starlette app, behind the access guard (and CORS when set).

Adding routes: write a module with a function ``routes(context: ApiContext)``
returning ``Endpoint`` declarations (collector.extensions.api.endpoints) and/or
plain Starlette routes, and add that function to ``ROUTE_GROUPS`` below.
Endpoints get the role check, parameter parsing, error mapping and a place in
the OpenAPI document (unless declared ``openapi=False``); handlers read the
store only through ``ApiCall.run`` (or the query functions given
``ApiCall.context.runner``), with ``ApiCall.scope`` for the tenant.

The stack, outermost first: CORS (only with ``cors.allowed_origins``: it
answers preflights itself, which carry no key), the access guard (Host,
Origin, JSON bodies, keys; /health, the OpenAPI document and the web
console's pages and assets are open: they hold no data),
Starlette's routing with the API's JSON errors for unknown paths and methods.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp

from collector.extensions import admin
from collector.extensions.access import AccessGuard
from collector.extensions.api import about, openapi, rest
from collector.extensions.api.console import routes as console
from collector.extensions.api.context import ApiContext
from collector.extensions.api.endpoints import Endpoint, JsonResponse, RouteGroup
from collector.extensions.api.errors import GUARD_CODES, error_response
from collector.extensions.api.jaeger import http as jaeger
from collector.extensions.api.stream import routes as stream
from collector.extensions.api.tempo import http as tempo
from collector.keys import KeyStore

HEALTH_PATH = "/health"
OPENAPI_PATH = f"{rest.PREFIX}/openapi.json"
OPEN_PATHS = (HEALTH_PATH, OPENAPI_PATH)
# Route groups in the order their routes are matched.
ROUTE_GROUPS: tuple[RouteGroup, ...] = (
    rest.endpoints,
    about.routes,
    stream.routes,
    jaeger.routes,
    tempo.routes,
    console.routes,
)
CORS_METHODS = ("GET", "HEAD", "OPTIONS")
CORS_HEADERS = ("Authorization", "Content-Type")
STATUS_CODES = {404: "not_found", 405: "method_not_allowed"}


def _refusal(status: int, reason: str, message: str, headers: dict[str, str] | None) -> Response:
    """The access guard's refusals in the API's error shape; the reason (host, origin, key...) is the code."""
    code = GUARD_CODES.get(status, reason) if reason == "key" else reason
    return error_response(status, code, message, headers)


async def _http_error(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    message = "no such endpoint" if status == 404 else str(getattr(exc, "detail", "")) or "error"
    return error_response(status, STATUS_CODES.get(status, "error"), message, getattr(exc, "headers", None))


def build_app(
    context: ApiContext, keys: KeyStore, anonymous_reads: bool, groups: tuple[RouteGroup, ...] = ROUTE_GROUPS
) -> ASGIApp:
    """The whole app for ``context``; see the module docstring."""
    config = context.config
    endpoints: list[Endpoint] = []
    routes: list[BaseRoute] = []
    for group in groups:
        for item in group(context):
            if isinstance(item, Endpoint):
                endpoints.append(item)
                routes.append(item.route(context))
            else:
                routes.append(item)
    document = openapi.document(endpoints)

    async def health(request: Request) -> Response:
        return await admin.health_response(context.host)

    async def openapi_document(request: Request) -> Response:
        return JsonResponse(document)

    starlette = Starlette(
        routes=[
            Route(HEALTH_PATH, health, methods=["GET"]),
            Route(OPENAPI_PATH, openapi_document, methods=["GET"]),
            *routes,
        ],
        exception_handlers={HTTPException: _http_error},
    )
    app: ASGIApp = AccessGuard(
        starlette,
        keys=keys,
        local_token=None,
        allowed_hosts=config.allowed_hosts,
        allowed_origins=config.web_origins(),
        open_paths=OPEN_PATHS,
        open_when=console.is_console_path,
        telemetry=context.telemetry,
        listener="api",
        anonymous_reads=anonymous_reads,
        refusal=_refusal,
    )
    if config.cors.allowed_origins:
        app = CORSMiddleware(
            app,
            allow_origins=list(config.cors.allowed_origins),
            allow_methods=list(CORS_METHODS),
            allow_headers=[*CORS_HEADERS, *config.cors.allowed_headers],
            max_age=config.cors.max_age,
        )
    return app
