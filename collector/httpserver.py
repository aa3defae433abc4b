"""Serve an ASGI app on the collector's event loop, with uvicorn, on a socket we bind ourselves.

Binding first means a port in use is reported as a one-line ``ListenError``
naming the config path, and the collector keeps its own signal handling:
uvicorn's, which would re-raise SIGTERM after serving, is switched off.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
from collections.abc import Iterator

import uvicorn
from starlette.types import ASGIApp

from collector.config.types import HostPort

GRACEFUL_SHUTDOWN_SECONDS = 10


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
        sock.listen(2048)
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


class _EmbeddedServer(uvicorn.Server):
    """uvicorn without its own signal handlers: the collector decides when to stop."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class HttpServer:
    """One ASGI app on one address; ``start`` returns once it listens, ``stop`` drains requests."""

    def __init__(self, app: ASGIApp, endpoint: HostPort, date_header: bool = True) -> None:
        self._app = app
        self._endpoint = endpoint
        # A proxy relays its upstream's own Date header; adding one would send two.
        self._date_header = date_header
        self._server: _EmbeddedServer | None = None
        self._task: asyncio.Task[None] | None = None
        self.port = endpoint.port

    async def start(self) -> None:
        sock = bind_socket(self._endpoint)
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self._app,
            lifespan="off",
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
            server_header=False,
            date_header=self._date_header,
        )
        self._server = _EmbeddedServer(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]))
        while not self._server.started:
            if self._task.done():
                self._task.result()  # raises what stopped the server
                raise ListenError(f"{self._endpoint}: server stopped while starting")
            await asyncio.sleep(0.005)

    @property
    def serving(self) -> bool:
        """Whether the server started and is still running."""
        return self._server is not None and self._server.started and self._task is not None and not self._task.done()

    async def stop(self) -> None:
        if self._server is None or self._task is None:
            return
        self._server.should_exit = True
        await self._task
        self._server = None
        self._task = None
