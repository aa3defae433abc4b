"""The counters and gauges every listener keeps, declared once: what it refused, cut off or could not accept.

Every series carries ``listener`` (the component id, e.g. ``otlp`` or
``genai_proxy``) and ``transport`` (``http`` or ``grpc``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from collector.telemetry import Telemetry

CONNECTIONS_REFUSED = "genai_listener_connections_refused"
CONNECTIONS_REFUSED_HELP = "Connections closed at once: over max_connections with none idle to make room for them"
CONNECTIONS_EVICTED = "genai_listener_connections_evicted"
CONNECTIONS_EVICTED_HELP = (
    "Idle connections, or ones without a whole request head yet, closed to make room for a new one"
)
TIMEOUTS = "genai_listener_timeouts"
TIMEOUTS_HELP = (
    "Requests cut off because the client was too slow: phase=header (read_header_timeout), body (read_timeout), "
    "write (write_timeout: the client stopped reading the response)"
)
REQUESTS_REFUSED = "genai_listener_requests_refused"
REQUESTS_REFUSED_HELP = (
    "Requests refused by a listener limit: header_too_large, too_many_headers, in_flight (admission.request_limit_mib)"
)
ACCEPT_ERRORS = "genai_listener_accept_errors"
ACCEPT_ERRORS_HELP = (
    "Failed accept() calls on a listening socket, by errno name (EMFILE: the process is out of descriptors)"
)
OPEN_CONNECTIONS = "genai_listener_connections"
OPEN_CONNECTIONS_HELP = "Connections open on an HTTP listener"
BYTES_IN_FLIGHT = "genai_listener_bytes_in_flight"
BYTES_IN_FLIGHT_HELP = "Request bytes a listener holds (admission.request_limit_mib bounds them)"

# Reasons and phases, as they appear in the labels.
LIMIT = "limit"
HEADER = "header"
BODY = "body"
WRITE = "write"
HEADER_TOO_LARGE = "header_too_large"
TOO_MANY_HEADERS = "too_many_headers"
IN_FLIGHT = "in_flight"


@dataclass(frozen=True)
class ListenerMetrics:
    """One listener's series in the collector's Telemetry."""

    telemetry: Telemetry
    listener: str
    transport: str

    def _add(self, name: str, help_text: str, **labels: str) -> None:
        self.telemetry.add(name, 1, help_text, listener=self.listener, transport=self.transport, **labels)

    def connection_refused(self) -> None:
        self._add(CONNECTIONS_REFUSED, CONNECTIONS_REFUSED_HELP, reason=LIMIT)

    def connection_evicted(self) -> None:
        self._add(CONNECTIONS_EVICTED, CONNECTIONS_EVICTED_HELP)

    def timed_out(self, phase: str) -> None:
        self._add(TIMEOUTS, TIMEOUTS_HELP, phase=phase)

    def request_refused(self, reason: str) -> None:
        self._add(REQUESTS_REFUSED, REQUESTS_REFUSED_HELP, reason=reason)

    def accept_error(self, errno_name: str) -> None:
        self._add(ACCEPT_ERRORS, ACCEPT_ERRORS_HELP, error=errno_name)

    def watch_connections(self, read: Callable[[], float]) -> None:
        self.telemetry.gauge(
            OPEN_CONNECTIONS, read, OPEN_CONNECTIONS_HELP, listener=self.listener, transport=self.transport
        )

    def watch_bytes_in_flight(self, read: Callable[[], float]) -> None:
        self.telemetry.gauge(
            BYTES_IN_FLIGHT, read, BYTES_IN_FLIGHT_HELP, listener=self.listener, transport=self.transport
        )

    def count(self, name: str, **labels: str) -> float:
        """One series' value, for tests and the CLI."""
        return self.telemetry.value(name, listener=self.listener, transport=self.transport, **labels)
