"""WebSocket upgrades: refused unless the server is built for them; served by uvicorn's protocol when it is,
with small messages only, outside the listener's connection table."""

from __future__ import annotations

import asyncio
import contextlib

import httpx
import pytest
import websockets
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect
from websockets.exceptions import ConnectionClosedError, InvalidStatus

from collector.httpserver import HttpServer
from collector.httpserver.server import WEBSOCKET_MAX_MESSAGE_BYTES
from collector.listeners.settings import HttpServerSettings
from tests.collector.httpserver.support import ANY_LOOPBACK_PORT, LISTENER, run


async def _echo(socket: WebSocket) -> None:
    await socket.accept()
    with contextlib.suppress(WebSocketDisconnect):
        while True:
            await socket.send_text(await socket.receive_text())


def _app() -> Starlette:
    return Starlette(
        routes=[Route("/ws", lambda request: PlainTextResponse("plain"), methods=["GET"]), WebSocketRoute("/ws", _echo)]
    )


def test_without_websocket_an_upgrade_reaches_the_app_as_plain_http() -> None:
    async def scenario() -> int:
        server = HttpServer(_app(), HttpServerSettings(endpoint=ANY_LOOPBACK_PORT), listener=LISTENER)
        await server.start()
        try:
            with pytest.raises(InvalidStatus) as refused:
                await websockets.connect(f"ws://127.0.0.1:{server.port}/ws", open_timeout=10)
            return refused.value.response.status_code
        finally:
            await server.stop()

    assert run(scenario()) == 200


def test_with_websocket_the_socket_is_served_outside_the_connection_table_and_big_messages_are_refused() -> None:
    async def scenario() -> tuple[str, int, int]:
        settings = HttpServerSettings(endpoint=ANY_LOOPBACK_PORT, max_connections=1)
        server = HttpServer(_app(), settings, listener=LISTENER, websocket=True)
        await server.start()
        try:
            async with websockets.connect(f"ws://127.0.0.1:{server.port}/ws", open_timeout=10) as socket:
                await socket.send("hello")
                echoed = str(await asyncio.wait_for(socket.recv(), 10))
                # The open WebSocket holds no slot: the listener's only one serves a plain request meanwhile.
                async with httpx.AsyncClient() as client:
                    plain = (await client.get(f"http://127.0.0.1:{server.port}/ws", timeout=10)).status_code
            async with websockets.connect(f"ws://127.0.0.1:{server.port}/ws", open_timeout=10, max_size=None) as socket:
                await socket.send("x" * (WEBSOCKET_MAX_MESSAGE_BYTES + 1))
                with pytest.raises(ConnectionClosedError) as closed:
                    await asyncio.wait_for(socket.recv(), 10)
            assert closed.value.rcvd is not None
            return echoed, plain, closed.value.rcvd.code
        finally:
            await server.stop()

    assert run(scenario()) == ("hello", 200, 1009)  # 1009: message too big
