"""GET /api/v1/stream (Server-Sent Events) and the WebSocket /api/v1/ws: the live stream's two doors.

Both take the same filters and send the same events (stream.events): on
SSE as ``event: <kind>`` with the payload as ``data``, on the WebSocket as
``{"type": <kind>, "data": <payload>}`` text messages. An idle stream sends a
keepalive (an SSE comment, a ``{"type": "keepalive"}`` message) every
``stream.keepalive``. A client the hub cuts gets ``event: cut`` (a WebSocket
close with code 1013 and the reason) when its connection can still take it;
a client too slow to take even that is disconnected after CUT_GRACE_SECONDS.
A key bound to a tenant only ever gets that tenant's events.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from typing import Any

import orjson
from starlette.responses import Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect

from collector import findings
from collector.extensions.api.context import ApiContext
from collector.extensions.api.endpoints import ApiCall, Endpoint
from collector.extensions.api.errors import ApiError
from collector.extensions.api.params import Parameter, choices_list_parser
from collector.extensions.api.rest import MIN_SEVERITY, MODEL, PREFIX, SERVICE, TENANT
from collector.extensions.api.stream.events import KINDS, StreamEvent
from collector.extensions.api.stream.hub import StreamClient, StreamCut, StreamFilter, StreamFull, StreamHub

EVENT_STREAM = "text/event-stream"
# How long a cut client's connection gets to take the last message before it is closed under it.
CUT_GRACE_SECONDS = 1.0
# RFC 6455's "try again later": the client was cut for falling behind.
WEBSOCKET_TRY_AGAIN_LATER = 1013
WEBSOCKET_CLOSE_REASON_BYTES = 123
SSE_OPENED = b": stream open\n\n"
SSE_KEEPALIVE = b": keepalive\n\n"
KEEPALIVE_MESSAGE = '{"type":"keepalive"}'
TAG = "Live stream"
_UNFINISHED_RESPONSE = "ASGI callable returned without completing response."
# Set in the task serving a stream that was cut under a client too slow to take the end of the response:
# uvicorn then reports the response as unfinished, which here is intended (see _QuietCutStreams).
_cut_under_slow_client: contextvars.ContextVar[bool] = contextvars.ContextVar("cut_under_slow_client", default=False)

KIND = Parameter(
    "kind",
    "Comma-separated kinds of event to send: " + ", ".join(KINDS) + " (default: all).",
    choices_list_parser(KINDS),
    {"type": "string"},
    example="call,finding",
)
STREAM_PARAMETERS = (SERVICE, MODEL, TENANT, MIN_SEVERITY, KIND)


class StreamRefused(ApiError):
    status = 503
    code = "stream_full"


class _QuietCutStreams(logging.Filter):
    """Drops uvicorn's report of an unfinished response for streams this module cut on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.getMessage() == _UNFINISHED_RESPONSE and _cut_under_slow_client.get())


logging.getLogger("uvicorn.error").addFilter(_QuietCutStreams())


def _open(call: ApiCall) -> tuple[StreamHub, StreamClient]:
    args = call.args
    severity = args.get("min_severity")
    stream_filter = StreamFilter(
        scope=call.scope,
        kinds=frozenset(args.get("kind", KINDS)),
        service=args.get("service"),
        model=args.get("model"),
        tenant=args.get("tenant"),
        min_severity_rank=findings.SEVERITY_RANK[severity] if severity else 0,
    )
    hub = call.context.hub
    try:
        return hub, hub.open(stream_filter)
    except StreamFull as exc:
        raise StreamRefused(str(exc)) from None


def _sse_message(event: StreamEvent) -> bytes:
    return b"event: " + event.kind.encode() + b"\ndata: " + event.data + b"\n\n"


async def _until_disconnected(receive: Receive, disconnect: str) -> None:
    while (await receive())["type"] != disconnect:
        pass


async def _race(serving: asyncio.Task[None], gone: asyncio.Task[None], client: StreamClient) -> bool:
    """Wait for the stream to end, the caller to leave or the client to be cut; True when the serving task ended."""
    cut = asyncio.ensure_future(client.cut_event.wait())
    try:
        await asyncio.wait({serving, gone, cut}, return_when=asyncio.FIRST_COMPLETED)
        if cut.done() and not serving.done() and not gone.done():
            # The serving task sends the reason itself unless a send it started cannot finish.
            await asyncio.wait({serving, gone}, timeout=CUT_GRACE_SECONDS)
    finally:
        for task in (cut, gone):
            task.cancel()
        finished = serving.done()
        serving.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await serving
    return finished


class EventStreamResponse(Response):
    """The SSE answer: events from one hub client until it is cut or the caller leaves."""

    media_type = EVENT_STREAM

    def __init__(self, hub: StreamHub, client: StreamClient, keepalive: float) -> None:
        # Not Response.__init__, which would announce a Content-Length: the stream has none.
        self.status_code = 200
        self.background = None
        self.raw_headers = [
            (b"content-type", EVENT_STREAM.encode()),
            (b"cache-control", b"no-cache"),
            (b"x-accel-buffering", b"no"),  # proxies in front (nginx) must not hold events back
        ]
        self._hub = hub
        self._client = client
        self._keepalive = keepalive

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            await send({"type": "http.response.body", "body": SSE_OPENED, "more_body": True})
            serving = asyncio.ensure_future(self._send_events(send))
            gone = asyncio.ensure_future(_until_disconnected(receive, "http.disconnect"))
            if not await _race(serving, gone, self._client) and self._client.cut_reason is not None:
                _cut_under_slow_client.set(True)
        finally:
            self._hub.close(self._client)

    async def _send_events(self, send: Send) -> None:
        while True:
            try:
                event = await self._client.next(self._keepalive)
            except StreamCut as cut:
                body = b"event: cut\ndata: " + orjson.dumps({"reason": str(cut)}) + b"\n\n"
                await send({"type": "http.response.body", "body": body, "more_body": False})
                return
            chunk = SSE_KEEPALIVE if event is None else _sse_message(event)
            await send({"type": "http.response.body", "body": chunk, "more_body": True})


async def stream_events(call: ApiCall) -> Response:
    hub, client = _open(call)
    return EventStreamResponse(hub, client, call.context.config.stream.keepalive)


async def stream_socket(call: ApiCall) -> None:
    socket = call.request
    assert isinstance(socket, WebSocket)
    hub, client = _open(call)
    try:
        await socket.accept()
        serving = asyncio.ensure_future(_send_messages(socket, client, call.context.config.stream.keepalive))
        gone = asyncio.ensure_future(_until_disconnected(socket.receive, "websocket.disconnect"))
        await _race(serving, gone, client)
    finally:
        hub.close(client)


async def _send_messages(socket: WebSocket, client: StreamClient, keepalive: float) -> None:
    while True:
        try:
            event = await client.next(keepalive)
        except StreamCut as cut:
            reason = str(cut).encode()[:WEBSOCKET_CLOSE_REASON_BYTES].decode(errors="ignore")
            await socket.close(WEBSOCKET_TRY_AGAIN_LATER, reason)
            return
        try:
            if event is None:
                await socket.send_text(KEEPALIVE_MESSAGE)
            else:
                await socket.send_text('{"type":"' + event.kind + '","data":' + event.data.decode() + "}")
        except WebSocketDisconnect:
            return


def routes(context: ApiContext) -> list[Any]:
    """The stream's two endpoints."""
    description = (
        "Spans, GenAI calls and findings as they pass the pipeline, filtered. Each client has a bounded buffer; "
        "a client that falls behind is cut with the reason."
    )
    return [
        Endpoint(
            f"{PREFIX}/stream",
            "streamEvents",
            "Live stream (Server-Sent Events)",
            stream_events,
            STREAM_PARAMETERS,
            {"type": "string", "description": "event: span | call | finding | cut; data: the event as JSON"},
            description=description,
            response_media_type=EVENT_STREAM,
            tags=(TAG,),
        ),
        Endpoint(
            f"{PREFIX}/ws",
            "streamSocket",
            "Live stream (WebSocket)",
            stream_socket,
            STREAM_PARAMETERS,
            description=description + ' Messages are {"type": kind, "data": event}.',
            tags=(TAG,),
            websocket=True,
        ),
    ]
