"""Noticing that an HTTP caller went away, so the work done for it (a query on the store) stops too.

``CallerWatch.of(request)`` starts, once per request, a task that waits for
the ASGI ``http.disconnect`` message; ``outcome`` awaits some work unless the
caller leaves first, in which case the work is cancelled and ``CallerGone``
raised. Only for requests whose body has been read (or that have none): the
watch consumes the receive channel.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import TypeVar

from starlette.requests import Request

T = TypeVar("T")
WATCH_SCOPE_KEY = "genai_collector.caller_watch"


class CallerGone(Exception):
    """The caller disconnected before the answer was ready; nobody is left to answer."""


class CallerWatch:
    """Whether the caller of one request is still there; see the module docstring."""

    def __init__(self, request: Request) -> None:
        self._request = request
        self._gone = asyncio.ensure_future(self._wait_for_disconnect())

    @classmethod
    def of(cls, request: Request) -> CallerWatch:
        """The watch of ``request``, started on first use."""
        watch: CallerWatch | None = request.scope.get(WATCH_SCOPE_KEY)
        if watch is None:
            watch = request.scope[WATCH_SCOPE_KEY] = cls(request)
        return watch

    @classmethod
    def close_of(cls, request: Request) -> None:
        """Stop the watch of ``request``, if one was started (the answer has been given)."""
        watch: CallerWatch | None = request.scope.pop(WATCH_SCOPE_KEY, None)
        if watch is not None:
            watch.close()

    async def _wait_for_disconnect(self) -> None:
        while (await self._request.receive())["type"] != "http.disconnect":
            pass

    async def outcome(self, work: Awaitable[T]) -> T:
        """What ``work`` gives, unless the caller leaves first: then ``work`` is cancelled and CallerGone raised."""
        task = asyncio.ensure_future(work)
        await asyncio.wait({task, self._gone}, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            return task.result()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        raise CallerGone("the caller disconnected")

    def close(self) -> None:
        self._gone.cancel()
