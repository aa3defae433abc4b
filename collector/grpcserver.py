"""gRPC listeners: their channel arguments from the config, and starting them on an endpoint of the config.

``server_options`` turns configgrpc-shaped settings into grpc core's channel
arguments (streams, connections, handshake and keepalive timeouts, message
size), so every gRPC listener of the collector bounds its clients the same way.
grpc answers a port it cannot bind with 0 (or raises); ``start_insecure``
turns that into the same one-line ``ListenError`` the HTTP listeners give.
Servers are made without ``SO_REUSEPORT``: with it a second process could bind
the same port silently.
"""

from __future__ import annotations

import grpc

from collector.config.types import HostPort
from collector.httpserver import ListenError
from collector.receivers.otlp.config import GrpcSettings

NO_PORT_SHARING = ("grpc.so_reuseport", 0)
MILLISECONDS = 1000


def server_options(settings: GrpcSettings, max_connections: int) -> list[tuple[str, int]]:
    """grpc channel arguments for ``settings`` (configgrpc's names on the left, grpc core's on the right)."""
    keepalive = settings.keepalive.server_parameters
    policy = settings.keepalive.enforcement_policy
    return [
        ("grpc.max_receive_message_length", settings.max_recv_msg_size),
        NO_PORT_SHARING,
        ("grpc.max_concurrent_streams", settings.max_concurrent_streams),
        ("grpc.max_allowed_incoming_connections", max_connections),
        ("grpc.server_handshake_timeout_ms", _ms(settings.handshake_timeout)),
        ("grpc.max_connection_idle_ms", _ms(keepalive.max_connection_idle)),
        ("grpc.max_connection_age_ms", _ms(keepalive.max_connection_age)),
        ("grpc.max_connection_age_grace_ms", _ms(keepalive.max_connection_age_grace)),
        ("grpc.keepalive_time_ms", _ms(keepalive.time)),
        ("grpc.keepalive_timeout_ms", _ms(keepalive.timeout)),
        ("grpc.http2.min_ping_interval_without_data_ms", _ms(policy.min_time)),
        ("grpc.keepalive_permit_without_calls", int(policy.permit_without_stream)),
        # With BDP probing grpc widens flow-control windows until calls no one reads yet are
        # received whole (300 concurrent 4 MiB calls: over a gigabyte); without it a call's
        # window grows only once its message is read.
        ("grpc.http2.bdp_probe", 0),
    ]


def _ms(seconds: float) -> int:
    return int(seconds * MILLISECONDS)


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
