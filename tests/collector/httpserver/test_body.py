"""The one body reader: within its size limit and within the listener's bytes in flight, given back when answered."""

from __future__ import annotations

import asyncio

from collector.listeners.generated_metrics import LISTENER_BYTES_IN_FLIGHT, LISTENER_REQUESTS_REFUSED
from collector.listeners.metrics import IN_FLIGHT
from collector.listeners.settings import AdmissionSettings, HttpServerSettings
from collector.telemetry import MetricSpec, Telemetry
from tests.collector.httpserver.support import (
    ANY_LOOPBACK_PORT,
    ECHO_LIMIT,
    LISTENER,
    connect,
    read_until_closed,
    response_head,
    run,
    serving,
    status_of,
)

MIB = 1024 * 1024
CHUNK = 64 * 1024
HELD = 10 * CHUNK


def _value(telemetry: Telemetry, metric: MetricSpec, **labels: str) -> float:
    return telemetry.value(metric.name, listener=LISTENER, transport="http", **labels)


def _settings(request_limit_mib: int = 1) -> HttpServerSettings:
    return HttpServerSettings(endpoint=ANY_LOOPBACK_PORT, admission=AdmissionSettings(request_limit_mib))


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n" % len(data) + data + b"\r\n"


async def _post(port: int, body: bytes) -> bytes:
    reader, writer = await connect(port)
    writer.write(b"POST /echo HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: %d\r\n\r\n" % len(body))
    writer.write(body)
    response = await read_until_closed(reader)
    writer.close()
    return response


def test_a_body_within_the_limits_is_read_whole_and_its_share_given_back() -> None:
    telemetry = Telemetry()
    body = b"b" * (MIB - 1)

    async def scenario() -> bytes:
        async with serving(_settings(), telemetry) as (server, _):
            return await _post(server.port, body)

    response = run(scenario())

    assert status_of(response) == 200
    assert response.endswith(str(len(body)).encode())
    assert _value(telemetry, LISTENER_BYTES_IN_FLIGHT) == 0


def test_a_declared_length_over_the_limit_is_refused_before_the_body_is_sent() -> None:
    async def scenario() -> bytes:
        async with serving(_settings(request_limit_mib=8), Telemetry()) as (server, _):
            reader, writer = await connect(server.port)
            writer.write(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % (ECHO_LIMIT + 1))
            head = await response_head(reader)  # answered with no byte of the body sent
            writer.close()
            return head

    assert status_of(run(scenario())) == 413


def test_a_request_the_budget_cannot_hold_is_refused_before_it_is_read() -> None:
    """One request streams 640 KiB and holds them; a second declaring as much finds no room in 1 MiB."""
    telemetry = Telemetry()

    async def scenario() -> tuple[bytes, float, bytes]:
        async with serving(_settings(request_limit_mib=1), telemetry) as (server, _):
            reader, writer = await connect(server.port)
            writer.write(b"POST /echo HTTP/1.1\r\nHost: t\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n")
            for _ in range(HELD // CHUNK):
                writer.write(_chunk(b"c" * CHUNK))
            await writer.drain()
            while _value(telemetry, LISTENER_BYTES_IN_FLIGHT) < HELD:
                await asyncio.sleep(0)  # the server reads what was sent; nothing else to wait on
            second_reader, second_writer = await connect(server.port)
            second_writer.write(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % HELD)
            refused = await response_head(second_reader)
            second_writer.close()
            held = _value(telemetry, LISTENER_BYTES_IN_FLIGHT)
            writer.write(b"0\r\n\r\n")
            first = await read_until_closed(reader)
            writer.close()
            return refused, held, first

    refused, held, first = run(scenario())

    assert status_of(refused) == 503
    assert b"retry-after" in refused.lower()
    assert held == HELD  # the refused request took nothing
    assert status_of(first) == 200
    assert _value(telemetry, LISTENER_REQUESTS_REFUSED, reason=IN_FLIGHT) == 1
    assert _value(telemetry, LISTENER_BYTES_IN_FLIGHT) == 0


def test_a_streamed_body_is_refused_as_soon_as_it_passes_the_budget() -> None:
    telemetry = Telemetry()

    async def scenario() -> bytes:
        async with serving(_settings(request_limit_mib=1), telemetry) as (server, _):
            reader, writer = await connect(server.port)
            writer.write(b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n")
            answer = asyncio.ensure_future(response_head(reader))
            sent = 0
            try:
                while not answer.done() and sent < 2 * ECHO_LIMIT:
                    writer.write(_chunk(b"c" * CHUNK))
                    await writer.drain()
                    sent += CHUNK
            except ConnectionError:
                pass
            head = await answer
            writer.close()
            return head

    head = run(scenario())

    assert status_of(head) == 503  # /echo takes 4 MiB; the budget, 1 MiB, ended it first
    assert _value(telemetry, LISTENER_REQUESTS_REFUSED, reason=IN_FLIGHT) == 1
    assert _value(telemetry, LISTENER_BYTES_IN_FLIGHT) == 0
