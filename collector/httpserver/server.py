"""Serve an ASGI app on the collector's event loop, on a socket we bind ourselves, within the listener's limits.

Binding first means a port in use is reported as a one-line ``ListenError``
naming the config path. Connections are accepted by ``Acceptor`` (accept
errors back off and are logged at a bounded rate) and served by uvicorn's
httptools protocol hardened in ``protocol`` (timeouts, header limits, a
connection limit). uvicorn's Server is not used: it would install its own
signal handlers and run asyncio's accept loop.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import logging
import socket
from collections.abc import Callable
from email.utils import formatdate

import uvicorn
from starlette.types import ASGIApp
from uvicorn.server import ServerState

from collector.config.types import HostPort
from collector.httpserver.acceptor import Acceptor
from collector.httpserver.body import Admission
from collector.httpserver.protocol import HardenedHttpProtocol, HttpListener
from collector.listeners.inflight import InFlightBudget
from collector.listeners.metrics import ListenerMetrics
from collector.listeners.settings import HttpServerSettings
from collector.telemetry import Telemetry

GRACEFUL_SHUTDOWN_SECONDS = 10
LISTEN_BACKLOG = 2048
DATE_REFRESH_SECONDS = 1.0
# The websockets package's sans-I/O protocol, which uvicorn drives (see pyproject.toml).
WEBSOCKET_IMPLEMENTATION = "websockets-sansio"
WEBSOCKET_MAX_MESSAGE_BYTES = 64 * 1024
WEBSOCKET_MAX_QUEUED_MESSAGES = 4

logger = logging.getLogger("genai_collector.httpserver")


class ListenError(Exception):
    """A socket could not be bound; the message names the address and why."""


def bind_socket(endpoint: HostPort) -> socket.socket:
    """A listening TCP socket on ``endpoint``, or ListenError with a clear reason."""
    family = socket.AF_INET6 if ":" in endpoint.host else socket.AF_INET
    try:
        infos = socket.getaddrinfo(endpoint.host, endpoint.port, family, socket.SOCK_STREAM)
    except socket.gaierror:
        raise ListenError(f"{endpoint}: unknown host {endpoint.host}") from None
    # IPPROTO_TCP spelled out: asyncio sets TCP_NODELAY only on sockets whose proto
    # says TCP, and without it Nagle's algorithm holds a response's body behind its
    # headers until the client's delayed ACK, 40 ms per request.
    sock = socket.socket(infos[0][0], socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        # SO_REUSEADDR (not REUSEPORT) lets a restarted collector rebind past TIME_WAIT
        # while still refusing a port another process listens on.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(infos[0][4])
        sock.listen(LISTEN_BACKLOG)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ListenError(f"{endpoint} is already in use") from None
        if exc.errno == errno.EADDRNOTAVAIL:
            raise ListenError(f"{endpoint}: address not available on this machine") from None
        if exc.errno == errno.EACCES:
            raise ListenError(f"{endpoint}: permission denied") from None
        raise ListenError(f"{endpoint}: {exc.strerror}") from None
    sock.setblocking(False)
    return sock


class HttpServer:
    """One ASGI app on one address; ``start`` returns once it listens, ``stop`` lets requests in flight finish.

    ``listener`` (a component id) labels its counters in ``telemetry``.
    """

    def __init__(
        self,
        app: ASGIApp,
        settings: HttpServerSettings,
        *,
        listener: str = "http",
        telemetry: Telemetry | None = None,
        date_header: bool = True,
        websocket: bool = False,
    ) -> None:
        self._settings = settings
        # Upgrades to WebSocket are served only where the app has a WebSocket route (the api's live stream).
        self._websocket = websocket
        self._metrics = ListenerMetrics(telemetry or Telemetry(), listener, "http")
        self._app = Admission(app, InFlightBudget(settings.admission.request_limit_bytes, self._metrics))
        # A proxy relays its upstream's own Date header; adding one would send two.
        self._date_header = date_header
        self._state = ServerState()
        self._sock: socket.socket | None = None
        self._acceptor: Acceptor | None = None
        self._date_refresh: asyncio.TimerHandle | None = None
        self._connecting: set[asyncio.Task[object]] = set()
        self._protocol: Callable[[], asyncio.Protocol] | None = None
        self.port = settings.endpoint.port

    @property
    def metrics(self) -> ListenerMetrics:
        return self._metrics

    @property
    def connections(self) -> int:
        return len(self._state.connections)

    def health_problems(self) -> list[str]:
        """Why this listener takes no connections now, if it does not: not started or stopped, or accept failing."""
        if self._acceptor is None:
            return ["not serving"]
        failing = self._acceptor.failing
        return [failing] if failing else []

    async def start(self, sock: socket.socket | None = None) -> None:
        """Listen on ``settings.endpoint``, or on ``sock`` already bound and listening there (a proxy process
        serves the socket its collector bound); returns once connections are accepted."""
        sock = sock if sock is not None else bind_socket(self._settings.endpoint)
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self._app,
            lifespan="off",
            log_config=None,
            access_log=False,
            server_header=False,
            date_header=self._date_header,
            ws=WEBSOCKET_IMPLEMENTATION if self._websocket else "none",
            # Messages from the client are never needed (the stream only sends): small, and not compressed.
            ws_max_size=WEBSOCKET_MAX_MESSAGE_BYTES,
            ws_max_queue=WEBSOCKET_MAX_QUEUED_MESSAGES,
            ws_per_message_deflate=False,
        )
        # uvicorn types it as whole seconds; the protocol hands it to call_later, which takes any.
        config.timeout_keep_alive = self._settings.idle_timeout  # type: ignore[assignment]
        config.load()
        listener = HttpListener(self._settings, self._metrics)
        self._protocol = functools.partial(
            HardenedHttpProtocol, config=config, server_state=self._state, app_state={}, listener=listener
        )
        self._refresh_date()
        name = f"HTTP listener {self._metrics.listener} on {HostPort(self._settings.endpoint.host, self.port)}"
        self._acceptor = Acceptor(sock, self._connection_accepted, self._metrics, logger, name)
        self._acceptor.start()
        self._sock = sock

    def _connection_accepted(self, conn: socket.socket) -> None:
        assert self._protocol is not None
        task: asyncio.Task[object] = asyncio.ensure_future(
            asyncio.get_running_loop().connect_accepted_socket(self._protocol, conn)
        )
        self._connecting.add(task)
        task.add_done_callback(self._connected)

    def _connected(self, task: asyncio.Task[object]) -> None:
        self._connecting.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.debug("a connection closed before it was set up: %s", task.exception())

    def _refresh_date(self) -> None:
        if self._date_header:
            self._state.default_headers = [(b"date", formatdate(usegmt=True).encode())]
        self._date_refresh = asyncio.get_running_loop().call_later(DATE_REFRESH_SECONDS, self._refresh_date)

    async def stop(self) -> None:
        if self._acceptor is None or self._sock is None:
            return
        self._acceptor.close()
        self._sock.close()
        self._acceptor = self._sock = None
        for task in list(self._connecting):
            task.cancel()
        for connection in list(self._state.connections):
            connection.shutdown()  # idle ones close now, busy ones after their response
        pending = set(self._state.tasks)
        if pending:
            _, late = await asyncio.wait(pending, timeout=GRACEFUL_SHUTDOWN_SECONDS)
            for task in late:
                task.cancel()
            if late:
                await asyncio.wait(late)
        for connection in list(self._state.connections):
            connection.transport.close()
        if self._date_refresh is not None:
            self._date_refresh.cancel()
            self._date_refresh = None
