"""The counters and gauges every listener keeps: what it refused, cut off or could not accept.

Every series carries ``listener`` (the component id, e.g. ``otlp`` or
``genai_proxy``) and ``transport`` (``http`` or ``grpc``).
"""

from __future__ import annotations

from collections.abc import Callable

from collector.listeners.generated_metrics import ListenerSelfMetrics
from collector.telemetry import Telemetry

# Reasons and phases, as they appear in the labels.
LIMIT = "limit"
HEADER = "header"
BODY = "body"
WRITE = "write"
HEADER_TOO_LARGE = "header_too_large"
TOO_MANY_HEADERS = "too_many_headers"
IN_FLIGHT = "in_flight"


class ListenerMetrics:
    """One listener's series in the collector's Telemetry (collector/listeners/metadata.yaml declares them)."""

    def __init__(self, telemetry: Telemetry, listener: str, transport: str) -> None:
        self.telemetry = telemetry
        self.listener = listener
        self.transport = transport
        metrics = self._metrics = ListenerSelfMetrics(telemetry)
        self._refused = metrics.listener_connections_refused.bind(listener=listener, transport=transport, reason=LIMIT)
        self._evicted = metrics.listener_connections_evicted.bind(listener=listener, transport=transport)

    def connection_refused(self) -> None:
        self._refused.add(1)

    def connection_evicted(self) -> None:
        self._evicted.add(1)

    def timed_out(self, phase: str) -> None:
        self._metrics.listener_timeouts.add(1, listener=self.listener, transport=self.transport, phase=phase)

    def request_refused(self, reason: str) -> None:
        self._metrics.listener_requests_refused.add(1, listener=self.listener, transport=self.transport, reason=reason)

    def accept_error(self, errno_name: str) -> None:
        self._metrics.listener_accept_errors.add(1, listener=self.listener, transport=self.transport, error=errno_name)

    def watch_connections(self, read: Callable[[], float]) -> None:
        self._metrics.listener_connections.watch(read, listener=self.listener, transport=self.transport)

    def watch_bytes_in_flight(self, read: Callable[[], float]) -> None:
        self._metrics.listener_bytes_in_flight.watch(read, listener=self.listener, transport=self.transport)
