"""What the listener limits cost: requests/s through the hardened HTTP server beside stock uvicorn.

The same app (POST: read the body with the bounded reader's limits, answer 200)
is served in a process of its own either by ``collector.httpserver.HttpServer``
(own accept loop, deadlines per request, connection table, bytes-in-flight
share) or by ``uvicorn.Server`` with its plain httptools protocol. The client,
in this process, runs raw asyncio connections: kept alive (one request after
another on each), then one connection per request (accept and setup cost
included). Each mode runs several rounds; medians and the ratio are printed.

    python benchmarks/listeners.py [--requests 4000] [--connections 16] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

BODY = b"x" * 2048
REQUEST = (
    b"POST /v1/traces HTTP/1.1\r\nHost: bench\r\nContent-Type: application/x-protobuf\r\n"
    b"Content-Length: %d\r\n\r\n" % len(BODY)
) + BODY
CLOSE_REQUEST = REQUEST.replace(b"Host: bench\r\n", b"Host: bench\r\nConnection: close\r\n")
BODY_LIMIT = 1024 * 1024
START_TIMEOUT_SECONDS = 30.0
KINDS = ("hardened", "uvicorn")


def _app(hardened: bool) -> Any:
    """The app under test: it reads the body with the bounded reader (hardened) or Starlette's own."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    from collector.httpserver import read_body

    async def export(request: Request) -> Response:
        body = await read_body(request, BODY_LIMIT) if hardened else await request.body()
        return Response(str(len(body)), media_type="text/plain")

    return Starlette(routes=[Route("/v1/traces", export, methods=["POST"])])


def serve(kind: str, port: int) -> None:
    """Serve until killed (the server side, run in a subprocess)."""
    import uvicorn

    from collector.config.types import HostPort
    from collector.httpserver import HttpServer, bind_socket
    from collector.listeners.settings import HttpServerSettings

    async def run() -> None:
        endpoint = HostPort("127.0.0.1", port)
        if kind == "hardened":
            await HttpServer(_app(hardened=True), HttpServerSettings(endpoint=endpoint)).start()
        else:
            sock = bind_socket(endpoint)  # listening before "ready": connections queue until served
            config = uvicorn.Config(_app(hardened=False), log_config=None, access_log=False, lifespan="off")
            asyncio.get_running_loop().create_task(uvicorn.Server(config).serve(sockets=[sock]))
        print("ready", flush=True)
        await asyncio.Event().wait()

    asyncio.run(run())


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> None:
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    await reader.readexactly(length)


async def _kept_alive(port: int, requests: int, connections: int) -> float:
    async def one_connection(count: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for _ in range(count):
            await _exchange(reader, writer, REQUEST)
        writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(one_connection(requests // connections) for _ in range(connections)))
    return requests / (time.perf_counter() - started)


async def _new_connections(port: int, requests: int, connections: int) -> float:
    async def client(count: int) -> None:
        for _ in range(count):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            await _exchange(reader, writer, CLOSE_REQUEST)
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(client(requests // connections) for _ in range(connections)))
    return requests / (time.perf_counter() - started)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_server(kind: str) -> tuple[subprocess.Popen[str], int]:
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", kind, "--port", str(port)], stdout=subprocess.PIPE, text=True
    )
    assert server.stdout is not None
    if server.stdout.readline().strip() != "ready":
        server.kill()
        raise RuntimeError(f"the {kind} server did not start")
    return server, port


def measure(args: argparse.Namespace) -> dict[tuple[str, str], list[float]]:
    """Figures per (mode, server), the two servers' rounds interleaved so that machine noise hits both alike."""
    servers = {kind: _start_server(kind) for kind in KINDS}
    figures: dict[tuple[str, str], list[float]] = {}
    try:
        for _, port in servers.values():
            asyncio.run(_kept_alive(port, args.requests // 10, args.connections))  # warm-up
        for _ in range(args.rounds):
            for kind, (_, port) in servers.items():
                rate = asyncio.run(_kept_alive(port, args.requests, args.connections))
                figures.setdefault(("kept alive", kind), []).append(rate)
                rate = asyncio.run(_new_connections(port, args.requests // 4, args.connections))
                figures.setdefault(("new connection each", kind), []).append(rate)
        return figures
    finally:
        for server, _ in servers.values():
            server.kill()
            server.wait(START_TIMEOUT_SECONDS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--serve", choices=KINDS, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port)
        return
    figures = measure(args)
    print(f"{'mode':<22} {'hardened req/s':>15} {'uvicorn req/s':>15} {'ratio':>7}")
    for mode in ("kept alive", "new connection each"):
        ours, theirs = (statistics.median(figures[(mode, kind)]) for kind in KINDS)
        print(f"{mode:<22} {ours:>15.0f} {theirs:>15.0f} {ours / theirs:>7.2f}")


if __name__ == "__main__":
    main()
