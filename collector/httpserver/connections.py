"""One HTTP listener's open connections, and how it makes room when it has as many as it may.

A connection waiting for a request head (idle between requests, or still
sending one) costs the client nothing to open and the server a descriptor to
keep: that is what floods of idle or half-open connections use up. So when a
new connection arrives at the limit, the connection that has waited longest
without a whole request head is closed to make room for it. Only when every
connection is busy with a request is the new one refused (503, closed at once),
so its descriptor is freed as soon as it was taken.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Protocol

from collector.listeners.descriptors import CAPACITY, ConnectionCapacity
from collector.listeners.metrics import ListenerMetrics


class Evictable(Protocol):
    def evict(self) -> None:
        """Close at once: the connection was picked to make room for a new one."""


class ConnectionTable:
    """Open connections of one listener, the ones waiting for a request head in the order they began waiting."""

    def __init__(self, max_connections: int, metrics: ListenerMetrics, capacity: ConnectionCapacity = CAPACITY) -> None:
        self._max = max_connections
        self._metrics = metrics
        self._capacity = capacity
        self._open: set[Evictable] = set()
        self._waiting: OrderedDict[Evictable, None] = OrderedDict()
        metrics.watch_connections(lambda: float(len(self._open)))

    def __len__(self) -> int:
        return len(self._open)

    def open(self, connection: Evictable) -> bool:
        """Count a new connection in, making room if needed; False when it must be refused."""
        if len(self._open) >= self._max and not self._evict_longest_waiting():
            return False
        # When the process's share of descriptors for connections is used up, room is made here too.
        held = len(self._open)
        if not self._capacity.try_open(held) and not (
            self._evict_longest_waiting() and self._capacity.try_open(held - 1)
        ):
            return False
        self._open.add(connection)
        self._waiting[connection] = None
        return True

    def waiting(self, connection: Evictable) -> None:
        """``connection`` now waits for a request head (after a response, on a kept-alive connection)."""
        if connection in self._open:
            self._waiting[connection] = None
            self._waiting.move_to_end(connection)

    def busy(self, connection: Evictable) -> None:
        """``connection`` has a whole request head: it is serving a request and is not evicted."""
        self._waiting.pop(connection, None)

    def closed(self, connection: Evictable) -> None:
        if connection in self._open:
            self._open.discard(connection)
            self._waiting.pop(connection, None)
            self._capacity.closed()

    def _evict_longest_waiting(self) -> bool:
        if not self._waiting:
            return False
        victim, _ = self._waiting.popitem(last=False)
        self.closed(victim)
        victim.evict()
        self._metrics.connection_evicted()
        return True
