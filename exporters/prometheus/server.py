"""The prometheus exporter's HTTP listener: GET /metrics answers what ``render()`` returns."""

from __future__ import annotations

from collections.abc import Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from collector.config.types import HostPort
from collector.extensions.admin import PROMETHEUS_TEXT
from collector.httpserver import HttpServer
from collector.listeners.settings import HttpServerSettings
from collector.telemetry import Telemetry

METRICS_PATH = "/metrics"


class MetricsServer:
    """Serves ``render()`` at /metrics as ``settings`` say; ``stop`` is safe twice and before ``start``.

    ``listener`` (the exporter's id) labels the listener's counters in ``telemetry``.
    """

    def __init__(
        self,
        settings: HttpServerSettings,
        render: Callable[[], str],
        listener: str = "prometheus",
        telemetry: Telemetry | None = None,
    ) -> None:
        self._settings = settings
        self._render = render
        self._listener = listener
        self._telemetry = telemetry
        self._server: HttpServer | None = None
        self.port = settings.endpoint.port

    @property
    def address(self) -> str:
        return str(HostPort(self._settings.endpoint.host, self.port))

    async def start(self) -> None:
        app = Starlette(routes=[Route(METRICS_PATH, self._metrics, methods=["GET"])])
        server = HttpServer(app, self._settings, listener=self._listener, telemetry=self._telemetry)
        await server.start()
        self._server = server
        self.port = server.port

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.stop()
            self._server = None

    async def _metrics(self, request: Request) -> Response:
        # Rendered on the event loop, where consume updates the same aggregates: no lock, a consistent view.
        return PlainTextResponse(self._render(), media_type=PROMETHEUS_TEXT)
