"""Relay helpers that keep the proxy's own failures away from the client's bytes."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterable

from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from proxy.apis import StreamTee
from proxy.sse import SseEvent
from proxy.stitching import StreamSigner


class GuardedTee:
    """A stream tee (and the optional signer) that can fail without touching the stream.

    If parsing an event raises, that event and every later one go through as
    they came and the tee stops reading: the client's stream is never cut by a
    bug in how the proxy reads it.
    """

    def __init__(self, tee: StreamTee, signer: StreamSigner | None, logger: logging.Logger) -> None:
        self._tee = tee
        self._signer = signer
        self._logger = logger
        self._broken = False

    def forward(self, events: Iterable[SseEvent]) -> bytes:
        out: list[bytes] = []
        for event in events:
            if self._broken:
                out.append(event.raw)
                continue
            try:
                prefix = self._signer.before(event.event, event.data) if self._signer else b""
                out.append(prefix + self._tee.on_event(event))
            except Exception:
                self._broken = True
                self._logger.warning("could not read a streamed event; relaying the rest unread", exc_info=True)
                out.append(event.raw)
        return b"".join(out)


class RelayResponse(StreamingResponse):
    """A StreamingResponse that calls ``abandoned`` when it ends, however it ends.

    If the client goes before the body starts, Starlette never iterates the
    relay, so its own cleanup never runs; ``abandoned`` does that cleanup (it
    must do nothing when the relay already finished).
    """

    def __init__(self, content: AsyncIterator[bytes], status_code: int, abandoned: Callable[[], None]) -> None:
        super().__init__(content, status_code=status_code)
        self._abandoned = abandoned

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._abandoned()
