"""The hardened HTTP protocol against clients that are slow, silent, oversized or too many, over real sockets."""

from __future__ import annotations

import asyncio
import socket

from collector.listeners.generated_metrics import (
    LISTENER_BYTES_IN_FLIGHT,
    LISTENER_CONNECTIONS,
    LISTENER_CONNECTIONS_EVICTED,
    LISTENER_CONNECTIONS_REFUSED,
    LISTENER_REQUESTS_REFUSED,
    LISTENER_TIMEOUTS,
)
from collector.listeners.metrics import BODY, HEADER, HEADER_TOO_LARGE, LIMIT, TOO_MANY_HEADERS, WRITE
from collector.listeners.settings import DEFAULT_MAX_REQUEST_HEADERS, HttpServerSettings
from collector.telemetry import MetricSpec, Telemetry
from tests.collector.httpserver.support import (
    ANY_LOOPBACK_PORT,
    LISTENER,
    SHORT_TIMEOUT,
    closed_within,
    connect,
    read_until_closed,
    response_head,
    run,
    serving,
    status_of,
)

GET = b"GET / HTTP/1.1\r\nHost: test\r\n\r\n"
# Long enough that a timeout under test has surely passed, short enough to keep tests quick when one did not.
WAIT_FOR_CLOSE = 20 * SHORT_TIMEOUT
DRIP_PAUSE = SHORT_TIMEOUT / 5
SEND_CHUNK = 64 * 1024


def _value(telemetry: Telemetry, metric: MetricSpec, **labels: str) -> float:
    return telemetry.value(metric.name, listener=LISTENER, transport="http", **labels)


def _settings(**overrides: object) -> HttpServerSettings:
    return HttpServerSettings(endpoint=ANY_LOOPBACK_PORT, **overrides)  # type: ignore[arg-type]


async def _get(port: int) -> bytes:
    reader, writer = await connect(port)
    writer.write(b"GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
    response = await read_until_closed(reader)
    writer.close()
    return response


# --- timeouts ----------------------------------------------------------------------------------------------------


def test_a_connection_that_sends_nothing_is_closed_after_read_header_timeout() -> None:
    telemetry = Telemetry()

    async def scenario() -> tuple[bool, bytes]:
        async with serving(_settings(read_header_timeout=SHORT_TIMEOUT), telemetry) as (server, _):
            reader, writer = await connect(server.port)
            closed = await closed_within(reader, WAIT_FOR_CLOSE)
            writer.close()
            return closed, await _get(server.port)

    closed, later = run(scenario())

    assert closed
    assert _value(telemetry, LISTENER_TIMEOUTS, phase=HEADER) == 1
    assert status_of(later) == 200  # the listener goes on serving


def test_a_header_dripped_a_line_at_a_time_is_cut_by_read_header_timeout() -> None:
    """Slowloris: each line comes before any per-read timeout would fire, the head never ends."""
    telemetry = Telemetry()

    async def scenario() -> tuple[bytes, int]:
        settings = _settings(read_header_timeout=SHORT_TIMEOUT, read_timeout=100 * SHORT_TIMEOUT)
        async with serving(settings, telemetry) as (server, _):
            reader, writer = await connect(server.port)
            writer.write(b"GET / HTTP/1.1\r\nHost: test\r\n")
            lines = 0
            while True:
                try:
                    writer.write(b"X-Drip: 1\r\n")
                    await writer.drain()
                except ConnectionError:
                    break
                lines += 1
                # Wait for the server to close, one drip pause at a time.
                read = asyncio.ensure_future(read_until_closed(reader))
                done, _ = await asyncio.wait({read}, timeout=DRIP_PAUSE)
                if done:
                    response = read.result()
                    break
                read.cancel()
            else:  # pragma: no cover
                response = b""
            writer.close()
            return response, lines

    response, lines = run(scenario())

    assert status_of(response) == 408
    assert lines >= 2  # it was dripping, not silent
    assert _value(telemetry, LISTENER_TIMEOUTS, phase=HEADER) == 1


def test_a_body_that_stalls_is_cut_by_read_timeout() -> None:
    telemetry = Telemetry()

    async def scenario() -> tuple[bytes, int]:
        async with serving(_settings(read_timeout=SHORT_TIMEOUT), telemetry) as (server, app):
            reader, writer = await connect(server.port)
            writer.write(b"POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 1000\r\n\r\n" + b"x" * 10)
            response = await asyncio.wait_for(read_until_closed(reader), WAIT_FOR_CLOSE)
            writer.close()
            return response, app.disconnects

    response, disconnects = run(scenario())

    assert status_of(response) == 408
    assert disconnects == 1  # the app's read ended, as for a client gone
    assert _value(telemetry, LISTENER_TIMEOUTS, phase=BODY) == 1
    assert _value(telemetry, LISTENER_BYTES_IN_FLIGHT) == 0  # its share of the budget is back


def test_a_body_dripped_slowly_is_cut_by_read_timeout_however_steady_the_drip() -> None:
    telemetry = Telemetry()

    async def scenario() -> bytes:
        async with serving(_settings(read_timeout=SHORT_TIMEOUT), telemetry) as (server, _):
            reader, writer = await connect(server.port)
            writer.write(b"POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 100000\r\n\r\n")
            while True:
                try:
                    writer.write(b"x")
                    await writer.drain()
                except ConnectionError:
                    return await read_until_closed(reader)
                read = asyncio.ensure_future(read_until_closed(reader))
                done, _ = await asyncio.wait({read}, timeout=DRIP_PAUSE)
                if done:
                    return read.result()
                read.cancel()

    assert status_of(run(scenario())) == 408
    assert _value(telemetry, LISTENER_TIMEOUTS, phase=BODY) == 1


def test_a_kept_alive_connection_serves_requests_then_closes_after_idle_timeout() -> None:
    telemetry = Telemetry()

    async def scenario() -> tuple[list[int], bool]:
        async with serving(_settings(idle_timeout=SHORT_TIMEOUT), telemetry) as (server, _):
            reader, writer = await connect(server.port)
            statuses = []
            for _ in range(3):
                writer.write(GET)
                statuses.append(status_of(await response_head(reader)))
                await reader.readexactly(2)  # "ok"
            closed = await closed_within(reader, WAIT_FOR_CLOSE)
            writer.close()
            return statuses, closed

    statuses, closed = run(scenario())

    assert statuses == [200, 200, 200]
    assert closed
    assert _value(telemetry, LISTENER_TIMEOUTS, phase=HEADER) == 0  # idle between requests is not a slow request


def test_a_client_that_stops_reading_a_stream_is_cut_off_by_write_timeout() -> None:
    telemetry = Telemetry()

    async def scenario() -> bool:
        async with serving(_settings(write_timeout=SHORT_TIMEOUT), telemetry) as (server, app):
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # fills at once: the server must wait
            sock.setblocking(False)
            await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", server.port))
            await asyncio.get_running_loop().sock_sendall(sock, b"GET /stream HTTP/1.1\r\nHost: test\r\n\r\n")
            ended = await asyncio.wait_for(app.stream_ended.wait(), WAIT_FOR_CLOSE)  # nothing is ever read
            sock.close()
            return ended

    assert run(scenario())
    assert _value(telemetry, LISTENER_TIMEOUTS, phase=WRITE) == 1
    assert _value(telemetry, LISTENER_TIMEOUTS, phase=BODY) == 0


# --- header limits -----------------------------------------------------------------------------------------------


def _send_until_refused(telemetry: Telemetry, head: bytes, filler: bytes, total: int) -> tuple[bytes, int]:
    """Send ``head`` then ``filler`` up to ``total`` bytes, stopping when the server answers; its answer, bytes sent."""

    async def scenario() -> tuple[bytes, int]:
        async with serving(_settings(), telemetry) as (server, _):
            reader, writer = await connect(server.port)
            sent = 0
            answer = asyncio.ensure_future(read_until_closed(reader))
            try:
                writer.write(head)
                while sent < total and not answer.done():
                    writer.write(filler[sent : sent + SEND_CHUNK])
                    await writer.drain()
                    sent += SEND_CHUNK
            except ConnectionError:
                pass
            response = await asyncio.wait_for(answer, WAIT_FOR_CLOSE)
            writer.close()
            return response, sent

    return run(scenario())


def test_an_8_mb_header_is_refused_431_once_past_the_limit() -> None:
    telemetry = Telemetry()
    eight_mb = 8 * 1024 * 1024

    response, sent = _send_until_refused(
        telemetry, b"GET / HTTP/1.1\r\nHost: test\r\nX-Big: ", b"a" * eight_mb, eight_mb
    )

    assert status_of(response) == 431
    assert b"max_request_header_size" in response
    assert sent < eight_mb  # refused while it was still being sent
    assert _value(telemetry, LISTENER_REQUESTS_REFUSED, reason=HEADER_TOO_LARGE) == 1


def test_100000_headers_are_refused_431() -> None:
    telemetry = Telemetry()
    headers = b"".join(b"X-H%d: v\r\n" % i for i in range(100_000))

    response, _ = _send_until_refused(telemetry, b"GET / HTTP/1.1\r\nHost: test\r\n", headers, len(headers))

    assert status_of(response) == 431
    assert b"max_request_headers" in response
    assert _value(telemetry, LISTENER_REQUESTS_REFUSED, reason=TOO_MANY_HEADERS) == 1


def _status_for_head(head: bytes, settings: HttpServerSettings) -> int:
    async def scenario() -> bytes:
        async with serving(settings, Telemetry()) as (server, _):
            reader, writer = await connect(server.port)
            writer.write(head)
            response = await read_until_closed(reader)
            writer.close()
            return response

    return status_of(run(scenario()))


def test_the_header_count_limit_is_exact() -> None:
    def head(fields: int) -> bytes:
        # Host and Connection are two of the fields.
        extra = b"".join(b"X-H%d: v\r\n" % i for i in range(fields - 2))
        return b"GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n" + extra + b"\r\n"

    settings = _settings()
    assert _status_for_head(head(DEFAULT_MAX_REQUEST_HEADERS), settings) == 200
    assert _status_for_head(head(DEFAULT_MAX_REQUEST_HEADERS + 1), settings) == 431


def test_the_header_size_limit_is_exact() -> None:
    limit = 8 * 1024
    # Counted: the target "/", then each field's name and value plus 4 (": " and CRLF).
    fixed = len(b"/") + (4 + 4 + 4) + (10 + 5 + 4) + (6 + 4)

    def head(fill: int) -> bytes:
        return b"GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\nX-Fill: " + b"f" * fill + b"\r\n\r\n"

    settings = _settings(max_request_header_size=limit)
    assert _status_for_head(head(limit - fixed), settings) == 200
    assert _status_for_head(head(limit - fixed + 1), settings) == 431


# --- connection limit --------------------------------------------------------------------------------------------


def test_idle_and_half_open_connections_beyond_the_limit_make_room_for_new_ones() -> None:
    telemetry = Telemetry()
    limit = 4

    async def scenario() -> tuple[list[int], int, float]:
        async with serving(_settings(max_connections=limit), telemetry) as (server, _):
            held = []
            for i in range(3 * limit):
                reader, writer = await connect(server.port)
                if i % 2:
                    writer.write(b"GET / HTTP/1.1\r\nHost: te")  # half a request head
                held.append((reader, writer))
            statuses = [status_of(await _get(server.port)) for _ in range(3)]
            closed = 0
            for reader, writer in held:
                if await closed_within(reader, SHORT_TIMEOUT / 10):
                    closed += 1
                writer.close()
            return statuses, closed, _value(telemetry, LISTENER_CONNECTIONS)

    statuses, closed, open_connections = run(scenario())

    assert statuses == [200, 200, 200]
    assert closed >= 2 * limit  # the oldest waiting connections went first
    assert _value(telemetry, LISTENER_CONNECTIONS_EVICTED) >= 2 * limit
    assert _value(telemetry, LISTENER_CONNECTIONS_REFUSED, reason=LIMIT) == 0
    assert open_connections <= limit


def test_a_connection_over_the_limit_is_refused_503_at_once_when_every_connection_is_busy() -> None:
    telemetry = Telemetry()
    limit = 2

    async def scenario() -> tuple[bytes, list[int]]:
        async with serving(_settings(max_connections=limit), telemetry) as (server, app):
            busy = []
            for _ in range(limit):
                reader, writer = await connect(server.port)
                writer.write(b"GET /block HTTP/1.1\r\nHost: test\r\n\r\n")
                busy.append((reader, writer))
            while app.blocked < limit:
                app.started_blocking.clear()
                await app.started_blocking.wait()
            refused = await _get(server.port)
            app.release.set()
            statuses = [status_of(await response_head(reader)) for reader, _ in busy]
            for _, writer in busy:
                writer.close()
            return refused, statuses

    refused, statuses = run(scenario())

    assert status_of(refused) == 503
    assert b"retry-after: 1" in refused.lower()
    assert statuses == [200, 200]  # the busy ones were left alone
    assert _value(telemetry, LISTENER_CONNECTIONS_REFUSED, reason=LIMIT) == 1


# --- one request at a time, and bodies left unread -------------------------------------------------------------


def test_a_pipelined_request_closes_the_connection_after_the_first_response() -> None:
    async def scenario() -> bytes:
        async with serving(_settings(), Telemetry()) as (server, _):
            reader, writer = await connect(server.port)
            writer.write(GET + GET)
            response = await asyncio.wait_for(read_until_closed(reader), WAIT_FOR_CLOSE)
            writer.close()
            return response

    response = run(scenario())

    assert response.count(b"HTTP/1.1 ") == 1
    assert status_of(response) == 200


def test_an_answer_given_before_the_body_was_read_reaches_a_client_still_sending() -> None:
    """The body is read through and thrown away, so the client sees the 413, and the connection stays usable."""
    body = b"x" * (4 * 1024 * 1024)

    async def scenario() -> tuple[bytes, bytes]:
        async with serving(_settings(), Telemetry()) as (server, _):
            reader, writer = await connect(server.port)
            writer.write(b"POST /early HTTP/1.1\r\nHost: test\r\nContent-Length: %d\r\n\r\n" % len(body))
            writer.write(body)
            await writer.drain()  # the whole body is sent before the answer is read, as most clients do
            refused = await response_head(reader)
            await reader.readexactly(len(b"too large"))
            writer.write(GET)
            served = await response_head(reader)
            writer.close()
            return refused, served

    refused, served = run(scenario())

    assert status_of(refused) == 413
    assert status_of(served) == 200


def test_a_body_declared_beyond_what_the_listener_reads_through_is_cut() -> None:
    """A 1.5 GiB body is not read through: the answer goes out, then the connection is closed."""

    async def scenario() -> tuple[bytes, int]:
        async with serving(_settings(), Telemetry()) as (server, _):
            reader, writer = await connect(server.port)
            writer.write(b"POST /early HTTP/1.1\r\nHost: test\r\nContent-Length: %d\r\n\r\n" % (1536 * 1024 * 1024))
            answer = asyncio.ensure_future(read_until_closed(reader))
            sent = 0
            try:
                while not answer.done():
                    writer.write(b"x" * SEND_CHUNK)
                    await writer.drain()
                    sent += SEND_CHUNK
            except ConnectionError:
                pass
            response = await asyncio.wait_for(answer, WAIT_FOR_CLOSE)
            writer.close()
            return response, sent

    response, sent = run(scenario())

    assert status_of(response) == 413
    assert sent < 64 * 1024 * 1024  # far less than the 1.5 GiB declared went through before the close
