"""A map that forgets: bounded in entries and in age, its evictions reported, for state a processor holds per key.

Entries live in insertion order, moved to the end whenever they are put again,
so the least recently put is always first: the count limit and the age limit
both evict from the front, in constant time per eviction.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
LIMIT = "limit"  # evicted because the map was full
IDLE = "idle"  # evicted because it was not put again within the age limit


class ExpiringMap(Generic[K, V]):
    """At most ``limit`` entries, each forgotten ``max_age`` seconds after it was last put.

    ``on_evict(reason, count)`` hears of every entry forgotten before it was
    popped: ``limit`` at once when a put overfills the map, ``idle`` from ``expire``.
    """

    def __init__(
        self,
        limit: int,
        max_age: float,
        on_evict: Callable[[str, int], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._limit = limit
        self._max_age = max_age
        self._on_evict = on_evict
        self._clock = clock
        self._entries: OrderedDict[K, tuple[V, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: K) -> bool:
        return key in self._entries

    def get(self, key: K) -> V | None:
        entry = self._entries.get(key)
        return entry[0] if entry is not None else None

    def put(self, key: K, value: V) -> None:
        """Hold ``value`` under ``key``, as just put: last to be evicted."""
        entries = self._entries
        entries[key] = (value, self._clock())
        entries.move_to_end(key)
        if len(entries) > self._limit:
            entries.popitem(last=False)
            self._on_evict(LIMIT, 1)

    def pop(self, key: K) -> V | None:
        entry = self._entries.pop(key, None)
        return entry[0] if entry is not None else None

    def expire(self) -> None:
        """Forget the entries not put again for longer than the age limit."""
        expired = len(self.take_expired())
        if expired:
            self._on_evict(IDLE, expired)

    def take_expired(self) -> list[tuple[K, V]]:
        """Remove and return the entries not put again for longer than the age limit, oldest first.

        For entries whose time is up being the point (the caller acts on them): they are not reported as evicted.
        """
        deadline = self._clock() - self._max_age
        entries = self._entries
        taken: list[tuple[K, V]] = []
        while entries:
            key, (value, put_at) = next(iter(entries.items()))
            if put_at > deadline:
                break
            del entries[key]
            taken.append((key, value))
        return taken
