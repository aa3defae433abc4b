"""The ``admin`` extension: health, the collector's own metrics, and read-only SQL on the store.

GET /health answers 200 while every pipeline can take data and move it on, and
503 with the reasons otherwise (collector.health); it is the only route open without a key.
GET /metrics serves the self-metrics in the Prometheus text format to any API
key not bound to a tenant. POST /query, for admin keys only, takes
``{"sql": "...", "exporter": "clickhouse"}`` (exporter optional when there is
one store) and answers ``{"columns", "types", "rows"}``; a statement the store's guard
refuses, or that fails, gets 400, and a store whose query threads and wait queue
are full gets 503 with Retry-After. The query runs on the store's own query
pool, and stops when the caller disconnects.

Requests pass collector.extensions.access first (Host, Origin, JSON bodies,
Bearer keys). The collector's local admin token, rewritten at every start in an
owner-only file, lets ``genai-collector query`` in with no key created. It
listens on 127.0.0.1:13133 by default and will not start on a wider address
until an API key exists.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from collector.component import ComponentSettings, ExtensionFactory, Host
from collector.config.types import HostPort
from collector.errors import StartError
from collector.extensions.access import AccessDenied, AccessGuard, LocalToken, listen_check, require
from collector.extensions.caller import CallerGone, CallerWatch
from collector.health import HealthSource
from collector.httpserver import HttpServer
from collector.jsonvalues import jsonable
from collector.keys import KeyStore
from collector.query.errors import NotReadOnlyError, QueryCancelledError, QueryError, TooManyQueriesError
from collector.query.stores import StoreChoiceError, choose_store, queryable_stores

DEFAULT_ADMIN_ENDPOINT = HostPort("127.0.0.1", 13133)
# Relative to the working directory, as the store and the queues are.
DEFAULT_DATA_ROOT = Path("data")
API_KEYS_FILE_NAME = "api-keys.json"
TOKEN_FILE_NAME = "admin-token"
OPEN_PATHS = ("/health",)
MAX_QUERY_BYTES = 1024 * 1024
# Status for a query whose caller left: nobody reads it (nginx's "client closed request").
CLIENT_CLOSED_REQUEST = 499
PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"


@dataclass(frozen=True)
class AdminConfig:
    endpoint: HostPort = DEFAULT_ADMIN_ENDPOINT
    # API keys (genai-collector keys create --role ...), stored as hashes; empty: ./data/api-keys.json.
    keys_file: str = ""
    # Where the local admin token is written for genai-collector query; empty: ./data/admin-token.
    token_file: str = ""
    # Off: no local token; every caller needs a key.
    local_token: bool = True
    # Host names besides localhost and IP literals that requests may name (the name a proxy in front uses).
    allowed_hosts: tuple[str, ...] = ()
    # Web origins besides the endpoint's own allowed to call it, e.g. https://grafana.example.com.
    allowed_origins: tuple[str, ...] = ()

    def listeners(self) -> Iterable[tuple[str, HostPort]]:
        yield "endpoint", self.endpoint

    def keys_path(self) -> Path:
        return Path(self.keys_file).expanduser() if self.keys_file else DEFAULT_DATA_ROOT / API_KEYS_FILE_NAME

    def token_path(self) -> Path | None:
        if not self.local_token:
            return None
        return Path(self.token_file).expanduser() if self.token_file else DEFAULT_DATA_ROOT / TOKEN_FILE_NAME


class QueryRefused(Exception):
    """The request cannot be answered; the message is for the user."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class AdminExtension:
    def __init__(self, settings: ComponentSettings, config: AdminConfig) -> None:
        self._config = config
        self._telemetry = settings.telemetry
        self._logger = settings.logger
        self._host: Host | None = None
        self._server: HttpServer | None = None
        self._keys = KeyStore(config.keys_path())
        token_path = config.token_path()
        self._token = LocalToken(token_path) if token_path is not None else None

    @property
    def local_token_path(self) -> Path | None:
        """Where the local admin token is written while the endpoint runs; None when it is off."""
        return self._token.path if self._token is not None else None

    @property
    def port(self) -> int:
        return self._server.port if self._server else self._config.endpoint.port

    async def start(self, host: Host) -> None:
        refusal = listen_check(self._config.endpoint, self._keys, "extensions.admin.endpoint")
        if refusal is not None:
            raise StartError(refusal)
        self._host = host
        if self._token is not None:
            self._token.issue()
        try:
            self._server = HttpServer(self._app(), self._config.endpoint)
            await self._server.start()
        except BaseException:
            if self._token is not None:
                self._token.withdraw()
            raise
        self._logger.info("admin endpoint listening on %s:%d", self._config.endpoint.host, self._server.port)

    async def shutdown(self) -> None:
        if self._server is not None:
            await self._server.stop()
            self._server = None
        if self._token is not None:
            self._token.withdraw()

    def _app(self) -> AccessGuard:
        app = Starlette(
            routes=[
                Route("/health", self._health, methods=["GET"]),
                Route("/metrics", self._metrics, methods=["GET"]),
                Route("/query", self._query, methods=["POST"]),
            ],
            exception_handlers={AccessDenied: _denied},
        )
        return AccessGuard(
            app,
            keys=self._keys,
            local_token=self._token,
            allowed_hosts=self._config.allowed_hosts,
            allowed_origins=self._config.allowed_origins,
            open_paths=OPEN_PATHS,
            telemetry=self._telemetry,
            listener="admin",
        )

    async def _health(self, request: Request) -> Response:
        return await health_response(self._host)

    async def _metrics(self, request: Request) -> Response:
        require(request, "viewer", any_tenant=True)
        return PlainTextResponse(self._telemetry.render(), media_type=PROMETHEUS_TEXT)

    async def _query(self, request: Request) -> Response:
        require(request, "admin")
        try:
            sql, exporter = await _read_query_request(request)
            assert self._host is not None
            store = choose_store(queryable_stores(self._host.exporters), exporter, "name one with exporter")
            result = await CallerWatch.of(request).outcome(store.submit_raw(sql).wait())
        except CallerGone:
            return Response(status_code=CLIENT_CLOSED_REQUEST)
        except QueryRefused as exc:
            return JSONResponse({"error": str(exc)}, exc.status)
        except StoreChoiceError as exc:
            return JSONResponse({"error": str(exc)}, 404 if exc.not_found else 400)
        except TooManyQueriesError as exc:
            retry_after = str(math.ceil(exc.retry_after))
            return JSONResponse({"error": str(exc)}, 503, headers={"Retry-After": retry_after})
        except QueryCancelledError as exc:
            return JSONResponse({"error": str(exc)}, 503)
        except (NotReadOnlyError, QueryError) as exc:
            return JSONResponse({"error": str(exc)}, 400)
        finally:
            CallerWatch.close_of(request)
        body = json.dumps(
            {"columns": result.columns, "types": result.types, "rows": result.rows},
            default=jsonable,
            ensure_ascii=False,
        )
        return Response(body, 200, media_type="application/json")


async def health_response(host: object) -> JSONResponse:
    """/health's answer for the service ``host``: 200, or 503 with one line per problem."""
    problems = await host.health() if isinstance(host, HealthSource) else ["the collector is not running"]
    if not problems:
        return JSONResponse({"status": "Server available"})
    return JSONResponse({"status": "Server not available", "problems": problems}, 503)


async def _denied(request: Request, exc: Exception) -> Response:
    status = exc.status if isinstance(exc, AccessDenied) else 403
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse({"error": str(exc)}, status, headers=headers)


async def _read_query_request(request: Request) -> tuple[str, str | None]:
    body = await request.body()
    if len(body) > MAX_QUERY_BYTES:
        raise QueryRefused(f"query body exceeds {MAX_QUERY_BYTES} bytes", 413)
    try:
        document: Any = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise QueryRefused('expected a JSON body like {"sql": "SELECT ..."}') from None
    if not isinstance(document, dict) or not isinstance(document.get("sql"), str):
        raise QueryRefused('expected a JSON body like {"sql": "SELECT ..."}')
    exporter = document.get("exporter")
    if exporter is not None and not isinstance(exporter, str):
        raise QueryRefused("exporter must be a string")
    return document["sql"], exporter


def create_extension(settings: ComponentSettings, config: AdminConfig) -> AdminExtension:
    return AdminExtension(settings, config)


factory = ExtensionFactory(type="admin", config_type=AdminConfig, create=create_extension)
