"""An HttpServer on loopback serving a small app, and raw TCP clients that behave as no polite client would."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from collector.config.types import HostPort
from collector.httpserver import HttpServer, RequestBodyTooLarge, read_body
from collector.listeners.inflight import Overloaded
from collector.listeners.settings import HttpServerSettings
from collector.telemetry import Telemetry

T = TypeVar("T")

LISTENER = "test"
ANY_LOOPBACK_PORT = HostPort("127.0.0.1", 0)
SCENARIO_DEADLINE_SECONDS = 20.0
# Timeouts short enough for a test to see them pass, long enough for loopback I/O on a busy machine.
SHORT_TIMEOUT = 0.5
ECHO_LIMIT = 4 * 1024 * 1024
STREAM_PIECE = 64 * 1024


def run(scenario: Coroutine[Any, Any, T], deadline: float = SCENARIO_DEADLINE_SECONDS) -> T:
    return asyncio.run(asyncio.wait_for(scenario, deadline))


@dataclass
class ProbeApp:
    """GET / answers at once; POST /echo reads the body; GET /block waits for ``release``; POST /early refuses;
    GET /stream streams until the client goes, then sets ``stream_ended``."""

    release: asyncio.Event = field(default_factory=asyncio.Event)
    blocked: int = 0
    disconnects: int = 0
    started_blocking: asyncio.Event = field(default_factory=asyncio.Event)
    stream_ended: asyncio.Event = field(default_factory=asyncio.Event)

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/", self._ok, methods=["GET"]),
                Route("/echo", self._echo, methods=["POST"]),
                Route("/block", self._block, methods=["GET"]),
                Route("/early", self._early, methods=["POST"]),
                Route("/stream", self._stream, methods=["GET"]),
            ]
        )

    async def _ok(self, request: Request) -> Response:
        return PlainTextResponse("ok")

    async def _echo(self, request: Request) -> Response:
        try:
            body = await read_body(request, ECHO_LIMIT)
        except ClientDisconnect:
            self.disconnects += 1
            return Response(status_code=400)
        except RequestBodyTooLarge as exc:
            return PlainTextResponse(str(exc), 413)
        except Overloaded as exc:
            return PlainTextResponse(str(exc), 503, headers={"Retry-After": "1"})
        return PlainTextResponse(str(len(body)))

    async def _block(self, request: Request) -> Response:
        self.blocked += 1
        self.started_blocking.set()
        await self.release.wait()
        return PlainTextResponse("released")

    async def _early(self, request: Request) -> Response:
        return PlainTextResponse("too large", 413)

    async def _stream(self, request: Request) -> Response:
        async def pieces() -> AsyncIterator[bytes]:
            try:
                while True:
                    yield b"s" * STREAM_PIECE
                    await asyncio.sleep(0)  # as a relay awaits its source between pieces
            finally:
                self.stream_ended.set()

        return StreamingResponse(pieces())


@asynccontextmanager
async def serving(settings: HttpServerSettings, telemetry: Telemetry) -> AsyncIterator[tuple[HttpServer, ProbeApp]]:
    app = ProbeApp()
    server = HttpServer(app.app(), settings, listener=LISTENER, telemetry=telemetry)
    await server.start()
    try:
        yield server, app
    finally:
        app.release.set()
        await server.stop()


async def connect(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port)


async def read_until_closed(reader: asyncio.StreamReader) -> bytes:
    """Everything the server sends until it closes (a reset counts as closed)."""
    try:
        return await reader.read()
    except ConnectionResetError:
        return b""


async def closed_within(reader: asyncio.StreamReader, seconds: float) -> bool:
    """Whether the server closes the connection within ``seconds`` (anything it sends meanwhile is dropped)."""
    try:
        await asyncio.wait_for(read_until_closed(reader), seconds)
    except TimeoutError:
        return False
    return True


async def response_head(reader: asyncio.StreamReader) -> bytes:
    return await reader.readuntil(b"\r\n\r\n")


def status_of(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])
