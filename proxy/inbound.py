"""The client's side of a call: its body parsed, its API family, and whether it is still there."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable
from typing import Any, TypeVar

from starlette.requests import ClientDisconnect, Request

from collector import httpserver
from collector.listeners.inflight import Overloaded
from proxy.auth import query_key
from proxy.errors import ApiFamily, ProxyError

T = TypeVar("T")


def family_of(request: Request) -> ApiFamily:
    """For paths OpenAI, Anthropic and Gemini share (/v1): Anthropic's SDK always sends anthropic-version,
    Gemini's clients their key as x-goog-api-key or ?key=."""
    if "anthropic-version" in request.headers:
        return "anthropic"
    if "x-goog-api-key" in request.headers or query_key(request.scope.get("query_string", b"")) is not None:
        return "gemini"
    return "openai"


async def read_body(request: Request, limit: int) -> bytes:
    """The body, read by the collector's one bounded reader, its refusals as the proxy's errors."""
    try:
        return await httpserver.read_body(request, limit)
    except httpserver.RequestBodyTooLarge as exc:
        raise ProxyError(413, str(exc), "request_too_large") from None
    except Overloaded as exc:
        raise ProxyError(503, str(exc), "overloaded", retry_after=exc.retry_after) from None


def parse_body(body: bytes, required: bool) -> dict[str, Any]:
    """The JSON object in ``body``; for pass-through paths anything else is just not inspected."""
    if not body:
        if required:
            raise ProxyError(400, "the request body is empty; expected a JSON object")
        return {}
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        if required:
            raise ProxyError(400, "the request body is not valid JSON") from None
        return {}
    if not isinstance(document, dict):
        if required:
            raise ProxyError(400, "the request body must be a JSON object")
        return {}
    return document


async def unless_disconnected(request: Request, work: Awaitable[T]) -> T:
    """Await ``work`` unless the client disconnects first; then cancel it and raise ClientDisconnect.

    One watcher task per call, which cancels this task when the client goes:
    cheaper than racing two tasks, and ``work`` is cancelled where it waits.
    """
    current = asyncio.current_task()
    assert current is not None
    watching = True

    def client_gone(watcher: asyncio.Task[None]) -> None:
        if watching and not watcher.cancelled() and watcher.exception() is None:
            current.cancel()

    watcher = asyncio.ensure_future(disconnected(request))
    watcher.add_done_callback(client_gone)
    try:
        return await work
    except asyncio.CancelledError:
        # Only our own cancel (the client left) becomes ClientDisconnect; any other
        # (the server stopping) still counts and propagates.
        if watcher.done() and not watcher.cancelled() and current.cancelling() == 1:
            current.uncancel()
            raise ClientDisconnect() from None
        raise
    finally:
        watching = False
        watcher.cancel()


async def disconnected(request: Request) -> None:
    """Returns when the client goes away; the body must have been read already."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return
