"""The live stream's hub: batches from the pipeline tap, made into events, fanned out to clients, none waited for.

The hub listens on the tap (collector.tap) only while it has clients. Its
listener runs in the pipeline's path, so it only appends the batch to a
bounded backlog (``hub_batches``; a batch beyond that is skipped and counted)
and wakes the pump task, which makes the events and offers each client the
ones its filter lets through. A client's buffer holds ``client_buffer``
events; a client whose buffer is full when an event comes is cut, with the
reason, and counted. Nothing here ever makes the pipeline wait.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

from collector.component import TracesData
from collector.extensions.api.config import StreamConfig
from collector.extensions.api.generated_metrics import ApiSelfMetrics
from collector.extensions.api.query.sql import Scope
from collector.extensions.api.stream.events import KINDS, Kind, StreamEvent, events_of
from collector.tap import PipelineTap
from collector.telemetry import Telemetry

SLOW = "slow"
SHUTDOWN = "shutdown"


class StreamFull(Exception):
    """The stream has all the clients it takes (max_clients)."""


class StreamCut(Exception):
    """The collector ended this client's stream; the message is the reason."""


@dataclass(frozen=True)
class StreamFilter:
    """Which events a client gets; None (or empty) lets a dimension through."""

    scope: Scope
    kinds: frozenset[Kind] = frozenset(KINDS)
    service: str | None = None
    model: str | None = None
    tenant: str | None = None
    min_severity_rank: int = 0

    def matches(self, event: StreamEvent) -> bool:
        return (
            event.kind in self.kinds
            and self.scope.admits(event.tenant)
            and (self.service is None or event.service == self.service)
            and (self.model is None or self.model in event.models)
            and (self.tenant is None or event.tenant == self.tenant)
            and event.severity_rank >= self.min_severity_rank
        )


class StreamClient:
    """One connected client: its filter and its bounded buffer of events."""

    def __init__(self, stream_filter: StreamFilter, capacity: int) -> None:
        self.filter = stream_filter
        self._capacity = capacity
        self._events: collections.deque[StreamEvent] = collections.deque()
        self._ready = asyncio.Event()
        self.cut_reason: str | None = None
        self.cut_event = asyncio.Event()

    def offer(self, event: StreamEvent) -> bool:
        """Queue ``event``; False when the buffer is full (the hub then cuts the client)."""
        if len(self._events) >= self._capacity:
            return False
        self._events.append(event)
        self._ready.set()
        return True

    def cut(self, reason: str) -> None:
        self.cut_reason = reason
        self._events.clear()
        self._ready.set()
        self.cut_event.set()

    async def next(self, timeout: float) -> StreamEvent | None:
        """The next event; None when none came within ``timeout`` (time for a keepalive); StreamCut once cut."""
        if not self._events and self.cut_reason is None:
            self._ready.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._ready.wait(), timeout)
        if self.cut_reason is not None:
            raise StreamCut(self.cut_reason)
        return self._events.popleft() if self._events else None


class StreamHub:
    """See the module docstring."""

    def __init__(self, config: StreamConfig, telemetry: Telemetry, logger: logging.Logger) -> None:
        self.config = config
        self._metrics = ApiSelfMetrics(telemetry)
        self._logger = logger
        self._tap: PipelineTap | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._clients: list[StreamClient] = []
        self._backlog: collections.deque[TracesData] = collections.deque()
        self._wake = asyncio.Event()
        self._pump: asyncio.Task[None] | None = None
        self._metrics.api_stream_clients.watch(lambda: float(len(self._clients)))

    def start(self, tap: PipelineTap | None) -> None:
        """Take batches from ``tap`` (None: a collector without one; the stream then stays empty)."""
        self._tap = tap
        self._pump = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        for client in list(self._clients):
            self._cut(client, SHUTDOWN, "the collector is shutting down")
        self._clients.clear()
        self._listen(False)
        if self._pump is not None:
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump
            self._pump = None

    def open(self, stream_filter: StreamFilter) -> StreamClient:
        if len(self._clients) >= self.config.max_clients:
            raise StreamFull(f"the live stream has all the clients it takes ({self.config.max_clients}, max_clients)")
        client = StreamClient(stream_filter, self.config.client_buffer)
        self._clients.append(client)
        self._listen(True)
        return client

    def close(self, client: StreamClient) -> None:
        with contextlib.suppress(ValueError):
            self._clients.remove(client)
        if not self._clients:
            self._listen(False)

    def _listen(self, on: bool) -> None:
        if on and self._unsubscribe is None and self._tap is not None:
            self._unsubscribe = self._tap.subscribe(self._offer)
        elif not on and self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
            self._backlog.clear()

    def _offer(self, traces: TracesData) -> None:
        """The tap's listener: in the pipeline's path, so it only queues (or skips) the batch."""
        if len(self._backlog) >= self.config.hub_batches:
            self._metrics.api_stream_batches_skipped.add(1)
            return
        self._backlog.append(traces)
        self._wake.set()

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._backlog:
                events = events_of(self._backlog.popleft())
                for client in list(self._clients):
                    self._deliver(client, events)
                await asyncio.sleep(0)  # one batch at a time: the loop has other work

    def _deliver(self, client: StreamClient, events: list[StreamEvent]) -> None:
        delivered: collections.Counter[str] = collections.Counter()
        for event in events:
            if not client.filter.matches(event):
                continue
            if not client.offer(event):
                self._cut(
                    client, SLOW, f"too slow: {self.config.client_buffer} events waited to be sent (client_buffer)"
                )
                self.close(client)
                break
            delivered[event.kind] += 1
        for kind, count in delivered.items():
            self._metrics.api_stream_events.add(count, kind=kind)

    def _cut(self, client: StreamClient, reason: str, message: str) -> None:
        client.cut(message)
        self._metrics.api_stream_clients_cut.add(1, reason=reason)
        self._logger.info("live stream client cut: %s", message)
