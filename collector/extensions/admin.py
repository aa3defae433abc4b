"""The ``admin`` extension: health, the collector's own metrics, and read-only SQL on the store.

GET /health answers 200 while the pipelines run and 503 otherwise. GET /metrics
serves the self-metrics in the Prometheus text format. POST /query takes
``{"sql": "...", "exporter": "clickhouse"}`` (exporter optional when there is one
store) and answers ``{"columns", "types", "rows"}``; a statement that is not
read-only is refused with 400. It listens on 127.0.0.1:13133 by default: the SQL
endpoint reads everything stored, so expose it only where that is acceptable.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from collector.component import ComponentSettings, ExtensionFactory, Host
from collector.config.types import HostPort
from collector.errors import retry_after_header
from collector.httpserver import HttpServer, RequestBodyTooLarge, read_body
from collector.jsonvalues import jsonable
from collector.listeners.inflight import Overloaded
from collector.listeners.settings import DEFAULT_LOCAL_MAX_CONNECTIONS, HttpServerSettings
from collector.sql import NotReadOnlyError, QueryError, StoreChoiceError, choose_store, queryable_stores

DEFAULT_ADMIN_ENDPOINT = HostPort("127.0.0.1", 13133)
MAX_QUERY_BYTES = 1024 * 1024
PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"


@dataclass(frozen=True)
class AdminConfig(HttpServerSettings):
    endpoint: HostPort = DEFAULT_ADMIN_ENDPOINT
    max_connections: int = DEFAULT_LOCAL_MAX_CONNECTIONS

    def listeners(self) -> Iterable[tuple[str, HostPort]]:
        yield "endpoint", self.endpoint


class QueryRefused(Exception):
    """The request cannot be answered; the message is for the user."""

    def __init__(self, message: str, status: int = 400, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after

    def response(self) -> Response:
        headers = {"Retry-After": retry_after_header(self.retry_after)} if self.retry_after is not None else None
        return JSONResponse({"error": str(self)}, self.status, headers=headers)


class AdminExtension:
    def __init__(self, settings: ComponentSettings, config: AdminConfig) -> None:
        self._config = config
        self._id = str(settings.id)
        self._telemetry = settings.telemetry
        self._logger = settings.logger
        self._host: Host | None = None
        self._server: HttpServer | None = None

    @property
    def port(self) -> int:
        return self._server.port if self._server else self._config.endpoint.port

    async def start(self, host: Host) -> None:
        self._host = host
        self._server = HttpServer(self._app(), self._config, listener=self._id, telemetry=self._telemetry)
        await self._server.start()
        self._logger.info("admin endpoint listening on %s:%d", self._config.endpoint.host, self._server.port)

    async def shutdown(self) -> None:
        if self._server is not None:
            await self._server.stop()
            self._server = None

    def _app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/health", self._health, methods=["GET"]),
                Route("/metrics", self._metrics, methods=["GET"]),
                Route("/query", self._query, methods=["POST"]),
            ]
        )

    async def _health(self, request: Request) -> Response:
        ready = self._host is not None and getattr(self._host, "ready", False)
        if ready:
            return JSONResponse({"status": "Server available"})
        return JSONResponse({"status": "Server not available"}, 503)

    async def _metrics(self, request: Request) -> Response:
        return PlainTextResponse(self._telemetry.render(), media_type=PROMETHEUS_TEXT)

    async def _query(self, request: Request) -> Response:
        try:
            sql, exporter = await _read_query_request(request)
            assert self._host is not None
            store = choose_store(queryable_stores(self._host.exporters), exporter, "name one with exporter")
            result = await asyncio.to_thread(store.query, sql)
        except QueryRefused as exc:
            return exc.response()
        except StoreChoiceError as exc:
            return JSONResponse({"error": str(exc)}, 404 if exc.not_found else 400)
        except (NotReadOnlyError, QueryError) as exc:
            return JSONResponse({"error": str(exc)}, 400)
        body = json.dumps(
            {"columns": result.columns, "types": result.types, "rows": result.rows},
            default=jsonable,
            ensure_ascii=False,
        )
        return Response(body, 200, media_type="application/json")


async def _read_query_request(request: Request) -> tuple[str, str | None]:
    try:
        body = await read_body(request, MAX_QUERY_BYTES)
    except RequestBodyTooLarge:
        raise QueryRefused(f"query body exceeds {MAX_QUERY_BYTES} bytes", 413) from None
    except Overloaded as exc:
        raise QueryRefused(str(exc), 503, exc.retry_after) from None
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
