"""The ``api`` extension: the read side of the store over HTTP, on one port (127.0.0.1:16686 by default).

On start it finds the store it reads (the clickhouse exporter named by
``exporter``, or the only one), builds the ApiContext (tables, query runner
on the store's query pool, live stream hub fed by the Service's pipeline
tap) and serves collector.extensions.api.app on its endpoint, and Jaeger's
remote storage over gRPC (collector.extensions.api.jaeger.grpc) on
``grpc_endpoint`` (127.0.0.1:17271 by default). Like the admin
endpoint it will not listen beyond loopback until an API key exists; on
loopback with no key (and ``require_keys`` off) it answers reads without one.
"""

from __future__ import annotations

from typing import Any

from collector.component import ComponentSettings, ExtensionFactory, Host
from collector.errors import StartError
from collector.extensions.access import is_loopback, listen_check
from collector.extensions.api.app import build_app
from collector.extensions.api.config import ApiConfig
from collector.extensions.api.context import ApiContext
from collector.extensions.api.jaeger.grpc import RemoteStorageServer
from collector.extensions.api.jaeger.reader import JaegerReader
from collector.extensions.api.query.runner import QueryRunner
from collector.extensions.api.query.tables import StoreTables
from collector.extensions.api.stream.hub import StreamHub
from collector.httpserver import HttpServer
from collector.keys import KeyStore
from collector.query.stores import StoreChoiceError, choose_store, queryable_stores
from collector.tap import PipelineTap

CONFIG_PATH = "extensions.api"


class ApiExtension:
    def __init__(self, settings: ComponentSettings, config: ApiConfig) -> None:
        self._config = config
        self._settings = settings
        self._keys = KeyStore(config.keys_path())
        self._server: HttpServer | None = None
        self._grpc: RemoteStorageServer | None = None
        self._hub: StreamHub | None = None
        self.context: ApiContext | None = None

    @property
    def port(self) -> int:
        return self._server.port if self._server else self._config.endpoint.port

    @property
    def grpc_port(self) -> int:
        """The port of Jaeger's remote storage gRPC service."""
        return self._grpc.port if self._grpc else self._config.grpc_endpoint.port

    async def start(self, host: Host) -> None:
        for name, endpoint in self._config.listeners():
            refusal = listen_check(endpoint, self._keys, f"{CONFIG_PATH}.{name}")
            if refusal is not None:
                raise StartError(refusal)
        store = self._store(host)
        logger = self._settings.logger
        self._hub = StreamHub(self._config.stream, self._settings.telemetry, logger)
        tap = getattr(host, "tap", None)
        self._hub.start(tap if isinstance(tap, PipelineTap) else None)
        self.context = ApiContext(
            config=self._config,
            runner=QueryRunner(store),
            tables=StoreTables.of(store),
            telemetry=self._settings.telemetry,
            logger=logger,
            hub=self._hub,
            host=host,
        )
        anonymous = not self._config.require_keys and is_loopback(self._config.endpoint.host)
        try:
            self._server = HttpServer(
                build_app(self.context, self._keys, anonymous),
                self._config,
                listener=str(self._settings.id),
                telemetry=self._settings.telemetry,
                websocket=True,  # the live stream's /api/v1/ws
            )
            await self._server.start()
            self._grpc = self._remote_storage(self.context)
            await self._grpc.start()
        except BaseException:
            await self.shutdown()
            raise
        logger.info(
            "api listening on %s:%d, Jaeger remote storage on %s:%d (reading %s)",
            self._config.endpoint.host,
            self._server.port,
            self._config.grpc_endpoint.host,
            self._grpc.port,
            store.describe(),
        )

    def _remote_storage(self, context: ApiContext) -> RemoteStorageServer:
        config = self._config
        limits = config.limits
        reader = JaegerReader(
            context.runner, context.tables, limits.max_trace_spans, limits.max_time_window, context.clock
        )
        return RemoteStorageServer(
            reader,
            self._keys,
            config.grpc_endpoint,
            anonymous_reads=not config.require_keys and is_loopback(config.grpc_endpoint.host),
            max_search_depth=limits.max_page_limit,
            max_window_seconds=limits.max_time_window,
            clock=context.clock,
        )

    def _store(self, host: Host) -> Any:
        """The store to read: the named clickhouse exporter's, or the only one; StartError otherwise."""
        try:
            store = choose_store(
                queryable_stores(host.exporters), self._config.exporter or None, f"name one with {CONFIG_PATH}.exporter"
            )
        except StoreChoiceError as exc:
            raise StartError(f"{CONFIG_PATH}: {exc}") from None
        if not all(hasattr(store, name) for name in ("submit_built", "tables", "layout")):
            raise StartError(f"{CONFIG_PATH}: the store {store.describe()} cannot answer the API's queries")
        return store

    async def shutdown(self) -> None:
        # The stream first: its clients are cut with a reason rather than left to the server's drain.
        if self._hub is not None:
            await self._hub.stop()
            self._hub = None
        if self._grpc is not None:
            await self._grpc.stop()
            self._grpc = None
        if self._server is not None:
            await self._server.stop()
            self._server = None


def create_extension(settings: ComponentSettings, config: ApiConfig) -> ApiExtension:
    return ApiExtension(settings, config)


factory = ExtensionFactory(type="api", config_type=ApiConfig, create=create_extension)
