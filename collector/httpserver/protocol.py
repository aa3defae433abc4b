"""uvicorn's httptools protocol with the limits a listener reachable by anyone needs.

Per connection, on top of uvicorn's parsing and ASGI cycle:

- ``read_header_timeout``: from connect (or from the first byte of the next
  request on a kept-alive connection) to the end of the request head;
- ``read_timeout``: from the same start to the end of the request body;
- ``idle_timeout``: a kept-alive connection waiting for its next request
  (uvicorn's keep-alive timer);
- ``write_timeout``: a response whose client reads none of it for that long
  (the socket's send buffer stays full) is cut off, so a client cannot hold a
  stream, its upstream connection and its request's bytes by not reading;
- ``max_request_header_size`` and ``max_request_headers``: counted as the head
  arrives, so an oversized head is refused (431) without being held whole;
- one request at a time: a request sent before the previous response
  (pipelining, which no current client does) closes the connection after that
  response, as RFC 9112 lets a server do; the client sends it again.

A body the application answered without reading (a 413, a 503 for bytes in
flight) is read to its end and thrown away, within ``read_timeout`` and up to
the listener's ``admission.request_limit_mib``: most clients send their whole
body before they read, and would otherwise see a reset instead of the answer.
The connection is kept alive after it. A body declared larger than that is cut:
the server stops sending and throws away what still arrives for a moment
(``LINGER_SECONDS``, ``LINGER_MAX_BYTES``), then closes. What it refuses or cuts off is
answered in plain HTTP (408, 431, 503) and counted; nothing is logged per
request, so a flood of bad requests cannot flood the log.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import httptools
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from collector.errors import retry_after_header
from collector.httpserver.connections import ConnectionTable
from collector.listeners.descriptors import CAPACITY
from collector.listeners.inflight import OVERLOADED_RETRY_AFTER_SECONDS
from collector.listeners.metrics import (
    BODY,
    HEADER,
    HEADER_TOO_LARGE,
    TOO_MANY_HEADERS,
    WRITE,
    ListenerMetrics,
)
from collector.listeners.settings import HttpServerSettings

BAD_REQUEST = "bad_request"
LINGER_SECONDS = 2.0
LINGER_MAX_BYTES = 1024 * 1024
# The bytes between a header's name and value, and after the value, in "Name: value\r\n".
HEADER_LINE_OVERHEAD = 4


def plain_response(status: HTTPStatus, message: str, extra_headers: str = "") -> bytes:
    """A whole HTTP/1.1 response closing the connection, for answers given before (or instead of) the app."""
    body = message.encode()
    return (
        f"HTTP/1.1 {status.value} {status.phrase}\r\n"
        "content-type: text/plain; charset=utf-8\r\n"
        f"content-length: {len(body)}\r\n"
        f"{extra_headers}"
        "connection: close\r\n\r\n"
    ).encode() + body


CONNECTION_LIMIT_RESPONSE = plain_response(
    HTTPStatus.SERVICE_UNAVAILABLE,
    "the server has as many connections as it takes; retry shortly",
    f"retry-after: {retry_after_header(OVERLOADED_RETRY_AFTER_SECONDS)}\r\n",
)
REQUEST_TIMEOUT_RESPONSE = plain_response(HTTPStatus.REQUEST_TIMEOUT, "the request was not received in time")
BAD_REQUEST_RESPONSE = plain_response(HTTPStatus.BAD_REQUEST, "invalid HTTP request")


@dataclass
class HttpListener:
    """What the connections of one listener share."""

    settings: HttpServerSettings
    metrics: ListenerMetrics

    def __post_init__(self) -> None:
        self.connections = ConnectionTable(self.settings.max_connections, self.metrics, CAPACITY)


class _HeadRefused(Exception):
    """Raised from a parser callback to stop parsing a head that breaks a limit (httptools wraps it)."""


class _Pipelined(Exception):
    """Raised from a parser callback when a request starts before the previous response ended."""


class HardenedHttpProtocol(HttpToolsProtocol):
    """One connection of an HTTP listener; see the module docstring for what it adds to uvicorn's."""

    def __init__(
        self,
        config: uvicorn.Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        listener: HttpListener,
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._listener = listener
        self._settings = listener.settings
        self._admitted = False
        self._between_requests = True  # no byte of the next request yet
        self._in_head = False  # the parser is inside a request head
        self._body_complete = True  # the current request's body has been received whole
        self._head_bytes = 0  # raw bytes of an unfinished head
        self._head_size = 0  # request line and headers, as the parser hands them over
        self._header_count = 0
        self._refusal: tuple[HTTPStatus, str, str] | None = None
        self._request_started: float | None = None  # loop time the request owed now started
        self._header_deadline: asyncio.TimerHandle | None = None
        self._read_deadline: asyncio.TimerHandle | None = None
        self._write_deadline: asyncio.TimerHandle | None = None
        self._lingering: int | None = None  # bytes thrown away since the response, while lingering
        self._declared_body: int | None = None  # the current request's Content-Length
        self._body_received = 0
        self._drained: int | None = None  # body bytes thrown away after the response, while draining

    # Connection lifetime

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if not self._listener.connections.open(self):
            self._listener.metrics.connection_refused()
            transport.write(CONNECTION_LIMIT_RESPONSE)
            transport.close()
            return
        self._admitted = True
        self._start_deadlines()
        self._arm_deadlines()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_deadlines()
        if self._write_deadline is not None:
            self._write_deadline.cancel()
        self._listener.connections.closed(self)
        super().connection_lost(exc)

    def evict(self) -> None:
        self._cancel_deadlines()
        self.transport.abort()

    def _start_deadlines(self) -> None:
        """The client owes a request head from now, and its body by the read deadline."""
        self._cancel_deadlines()
        self._request_started = self.loop.time()

    def _arm_deadlines(self) -> None:
        """Timers for what the client still owes; a request that arrived whole in one read needs none."""
        if self._request_started is None or self._lingering is not None or self.transport.is_closing():
            return
        owes_head = self._in_head or self._between_requests
        if owes_head and self._header_deadline is None:
            deadline = self._request_started + self._settings.read_header_timeout
            self._header_deadline = self.loop.call_at(deadline, self._deadline_passed)
        if (owes_head or not self._body_complete) and self._read_deadline is None:
            deadline = self._request_started + self._settings.read_timeout
            self._read_deadline = self.loop.call_at(deadline, self._deadline_passed)

    def _cancel_deadlines(self) -> None:
        for handle in (self._header_deadline, self._read_deadline):
            if handle is not None:
                handle.cancel()
        self._header_deadline = self._read_deadline = None

    def _deadline_passed(self) -> None:
        if self.transport.is_closing():
            return
        self._cancel_deadlines()
        reading_head = self._in_head or self._between_requests
        self._listener.metrics.timed_out(HEADER if reading_head else BODY)
        cycle = self.cycle if not reading_head else None
        if cycle is not None and not cycle.response_complete:
            # The app's receive() now says the client left, and whatever it sends is dropped.
            cycle.disconnected = True
            cycle.message_event.set()
        if self._in_head or (cycle is not None and not cycle.response_started):
            self._answer_and_linger(REQUEST_TIMEOUT_RESPONSE)
        else:
            self.transport.close()

    # Bytes in

    def data_received(self, data: bytes) -> None:
        if not self._admitted:
            return
        if self._lingering is not None:
            self._lingering += len(data)
            if self._lingering > LINGER_MAX_BYTES:
                self.transport.close()
            return
        self._unset_keepalive_if_required()
        # A head that starts with this chunk is made of all of it, up to where it ends.
        counting = self._in_head or self._between_requests
        if self._between_requests and self.cycle is not None:
            self._start_deadlines()  # the next request on a kept-alive connection
        self._between_requests = False
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError:
            self._stopped_parsing()
            return
        except httptools.HttpParserUpgrade:
            if self.ws_protocol_class is not None and self._should_upgrade():
                self._upgrade_to_websocket()
            return  # otherwise no upgrade is served: the request went to the app as plain HTTP
        except httptools.HttpParserError:
            self._bad_request()
            return
        if self._in_head and counting:
            self._head_bytes += len(data)
            if self._head_bytes > self._settings.max_request_header_size:
                self._refuse_head(*self._too_large())
                return
        self._arm_deadlines()

    def _stopped_parsing(self) -> None:
        if self._refusal is not None:
            self._refuse_head(*self._refusal)
        elif self.cycle is not None and not self.cycle.response_complete and self._in_head:
            # A pipelined request: answer the current one, then close; the client sends the next again.
            self.cycle.keep_alive = False
            self.flow.pause_reading()
        else:
            self._bad_request()

    def _bad_request(self) -> None:
        self._listener.metrics.request_refused(BAD_REQUEST)
        self._answer_and_linger(BAD_REQUEST_RESPONSE)

    def _refuse_head(self, status: HTTPStatus, reason: str, message: str) -> None:
        self._listener.metrics.request_refused(reason)
        self._answer_and_linger(plain_response(status, message))

    def _too_large(self) -> tuple[HTTPStatus, str, str]:
        limit = self._settings.max_request_header_size
        message = f"the request line and headers exceed {limit} bytes (max_request_header_size)"
        return HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, HEADER_TOO_LARGE, message

    def _too_many(self) -> tuple[HTTPStatus, str, str]:
        limit = self._settings.max_request_headers
        message = f"the request has more than {limit} header fields (max_request_headers)"
        return HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, TOO_MANY_HEADERS, message

    def _refuse_from_callback(self, refusal: tuple[HTTPStatus, str, str]) -> None:
        self._refusal = refusal
        raise _HeadRefused(refusal[2])

    # Parser callbacks

    def on_message_begin(self) -> None:
        if self.cycle is not None and not self.cycle.response_complete:
            self._in_head = True
            raise _Pipelined()
        super().on_message_begin()
        self._in_head = True
        self._body_complete = False
        self._head_bytes = self._head_size = self._header_count = self._body_received = 0
        self._declared_body = None

    def on_url(self, url: bytes) -> None:
        self._head_size += len(url)
        if self._head_size > self._settings.max_request_header_size:
            self._refuse_from_callback(self._too_large())
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        if self._header_count > self._settings.max_request_headers:
            self._refuse_from_callback(self._too_many())
        self._head_size += len(name) + len(value) + HEADER_LINE_OVERHEAD
        if self._head_size > self._settings.max_request_header_size:
            self._refuse_from_callback(self._too_large())
        if name.lower() == b"content-length" and value.strip().isdigit():
            self._declared_body = int(value)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._listener.connections.busy(self)
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        self._body_received += len(body)
        if self._drained is not None:
            # uvicorn drops body bytes that come after the response; only their count matters.
            self._drained += len(body)
            if self._drained > self._settings.admission.request_limit_bytes:
                self._drained = None
                self._answer_and_linger(None)
            return
        super().on_body(body)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._body_complete = True
        self._request_started = None
        if self._read_deadline is not None:
            self._read_deadline.cancel()
            self._read_deadline = None
        if self._drained is not None:
            self._drained = None
            self._wait_for_next_request()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.transport.is_closing() or self._lingering is not None:
            return
        if self._body_complete:
            self._wait_for_next_request()
            return
        self._unset_keepalive_if_required()
        remaining = None if self._declared_body is None else self._declared_body - self._body_received
        if remaining is not None and remaining > self._settings.admission.request_limit_bytes:
            self._answer_and_linger(None)
        else:
            # Not evicted meanwhile: the client would see a reset instead of the answer.
            self._drained = 0
            self._arm_deadlines()

    def _wait_for_next_request(self) -> None:
        """Kept alive: evictable, and closed after ``idle_timeout`` (uvicorn's keep-alive timer)."""
        self._between_requests = True
        self._listener.connections.waiting(self)
        if self.timeout_keep_alive_task is None:
            self.timeout_keep_alive_task = self.loop.call_later(
                self.timeout_keep_alive, self.timeout_keep_alive_handler
            )

    def _answer_and_linger(self, answer: bytes | None) -> None:
        """Send ``answer`` (if the app has not answered), then no more; drop what still comes and close soon.

        Closing at once, with the client's bytes unread, would make the kernel reset the
        connection, and a client still sending would see the reset instead of the answer.
        """
        self._cancel_deadlines()
        if answer is not None:
            self.transport.write(answer)
        self._lingering = 0
        self._listener.connections.waiting(self)  # done with: the first to make room for another
        if self.transport.can_write_eof():
            self.transport.write_eof()
        # A client that ends its side first (EOF) is closed at once by asyncio.
        self._read_deadline = self.loop.call_later(LINGER_SECONDS, self.transport.close)

    # Bytes out

    def pause_writing(self) -> None:
        super().pause_writing()
        if self._write_deadline is None:
            self._write_deadline = self.loop.call_later(self._settings.write_timeout, self._write_stalled)

    def resume_writing(self) -> None:
        super().resume_writing()
        if self._write_deadline is not None:
            self._write_deadline.cancel()
            self._write_deadline = None

    def _write_stalled(self) -> None:
        self._write_deadline = None
        self._listener.metrics.timed_out(WRITE)
        # The app's send() and receive() learn the client is gone when the connection is lost.
        self.transport.abort()

    def _upgrade_to_websocket(self) -> None:
        """Hand the connection to uvicorn's WebSocket protocol (servers built with ``websocket``).

        From here the WebSocket protocol owns it, with its own pings and message limits; this
        listener's deadlines end and its slot is given back (the app bounds its WebSocket clients).
        """
        self._cancel_deadlines()
        if self._write_deadline is not None:
            self._write_deadline.cancel()
            self._write_deadline = None
        self._listener.connections.closed(self)
        self.handle_websocket_upgrade()

    def _unsupported_upgrade_warning(self) -> None:
        """Upgrades are not served; uvicorn's warning per request would let any client fill the log."""
