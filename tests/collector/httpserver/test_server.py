"""The listening sockets every HTTP endpoint (OTLP/HTTP, the proxy, admin) is served from."""

from __future__ import annotations

import socket

import pytest

from collector.config.types import HostPort
from collector.httpserver import ListenError, bind_socket


def test_listening_sockets_say_tcp_so_asyncio_turns_nagle_off() -> None:
    # asyncio sets TCP_NODELAY only on sockets whose proto is IPPROTO_TCP; with
    # Nagle on, each response waits 40 ms for the client's delayed ACK.
    sock = bind_socket(HostPort("127.0.0.1", 0))
    try:
        assert sock.proto == socket.IPPROTO_TCP
    finally:
        sock.close()


def test_a_port_in_use_is_a_listen_error() -> None:
    held = bind_socket(HostPort("127.0.0.1", 0))
    try:
        with pytest.raises(ListenError, match="is already in use"):
            bind_socket(HostPort("127.0.0.1", held.getsockname()[1]))
    finally:
        held.close()
