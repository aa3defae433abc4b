"""Start a grpc.aio server on an endpoint of the config, with the collector's way of saying the port is taken.

grpc answers a port it cannot bind with 0 (or raises); ``start_insecure``
turns that into the same one-line ``ListenError`` the HTTP listeners give.
Servers are made without ``SO_REUSEPORT`` (``NO_PORT_SHARING``): with it a
second process could bind the same port silently.
"""

from __future__ import annotations

import grpc

from collector.config.types import HostPort
from collector.httpserver import ListenError

NO_PORT_SHARING = ("grpc.so_reuseport", 0)


async def start_insecure(server: grpc.aio.Server, endpoint: HostPort) -> int:
    """Bind ``server`` to ``endpoint`` and start it; the bound port, or ListenError (the server is stopped)."""
    try:
        port = int(server.add_insecure_port(str(endpoint)))
    except RuntimeError:
        port = 0
    if port == 0:
        await server.stop(None)
        raise ListenError(f"{endpoint} is already in use")
    await server.start()
    return port
