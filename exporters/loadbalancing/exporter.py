"""The loadbalancing exporter itself: a hash ring in front of one otlp exporter per backend.

``consume`` splits a batch by trace id (exporters.loadbalancing.split), hands
each backend its part, and returns once every backend's sending queue has
accepted its part. If one refuses, its error is raised, as a pipeline fan-out
does: the parts other backends accepted stay accepted, so when the client
sends the batch again those backends receive their part twice (duplicates,
never loss). A retryable refusal wins over a permanent one, so the client
does send it again.

Each backend has its own sending queue (with a ``directory`` set, a disk queue
in a subdirectory of it per backend), batching and retries, and its own
counters: the ``exporter`` label of its ``otelcol_exporter_*`` series is this
exporter's id followed by ``/host:port``.
"""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

from collector.component import Abandonable, ComponentID, ComponentSettings, Exporter, Host, TracesData
from collector.config.types import HostPort
from collector.errors import raise_fan_out_errors
from collector.exporterhelper import safe_name
from collector.pdata import span_count
from exporters.loadbalancing.config import LoadBalancingConfig
from exporters.loadbalancing.ring import HashRing
from exporters.loadbalancing.split import split_by_trace
from exporters.otlp import create_otlp_exporter

# Splitting costs a few microseconds a span: a large batch split on the event loop
# would stall every other request, while a thread costs about 50 µs.
SPLIT_IN_THREAD_SPANS = 512


def backend_name(endpoint: HostPort) -> str:
    """The backend's name on the ring: ``host:port`` with the host in lowercase, as DNS compares it."""
    return str(HostPort(endpoint.host.lower(), endpoint.port))


class LoadBalancingExporter:
    """Routes every span by its trace id to the otlp exporter of the backend that owns the trace."""

    def __init__(self, settings: ComponentSettings, config: LoadBalancingConfig) -> None:
        self._backends: dict[str, Exporter] = {}
        for endpoint in config.resolver.static.hostnames:
            name = backend_name(endpoint)
            backend_settings = _backend_settings(settings, name)
            otlp = config.protocol.otlp
            if otlp.sending_queue.directory:
                # One directory per backend: a queue directory has one owner.
                directory = str(Path(otlp.sending_queue.directory) / safe_name(backend_settings.id))
                otlp = dataclasses.replace(
                    otlp, sending_queue=dataclasses.replace(otlp.sending_queue, directory=directory)
                )
            self._backends[name] = create_otlp_exporter(backend_settings, otlp, endpoint)
        self._ring = HashRing(self._backends)

    @property
    def ring(self) -> HashRing:
        return self._ring

    async def start(self, host: Host) -> None:
        try:
            for backend in self._backends.values():
                await backend.start(host)  # a no-op for a backend already started
        except BaseException:
            await self.shutdown()
            raise

    async def consume(self, traces: TracesData) -> None:
        count = span_count(traces)
        if count == 0:
            return
        if count > SPLIT_IN_THREAD_SPANS:
            parts = await asyncio.to_thread(split_by_trace, traces, self._ring.owner)
        else:
            parts = split_by_trace(traces, self._ring.owner)
        results = await asyncio.gather(
            *(self._backends[backend].consume(part) for backend, part in parts.items()),
            return_exceptions=True,
        )
        raise_fan_out_errors(results)

    async def shutdown(self) -> None:
        """Drain every backend's queue; safe twice and before start (the backends' own shutdown is)."""
        await asyncio.gather(*(backend.shutdown() for backend in self._backends.values()))

    def abandon(self) -> None:
        for backend in self._backends.values():
            if isinstance(backend, Abandonable):
                backend.abandon()


def _backend_settings(settings: ComponentSettings, name: str) -> ComponentSettings:
    """The settings of one backend's exporter: its own id (for its counters) and logger."""
    suffix = f"{settings.id.name}/{name}" if settings.id.name else name
    return dataclasses.replace(
        settings,
        id=ComponentID(settings.id.type, suffix),
        logger=settings.logger.getChild(name),
    )
