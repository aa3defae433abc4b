"""A consistent-hash ring: which backend owns a key (a trace id).

Each backend is placed on a 64-bit ring at many points, derived from its name
alone; a key belongs to the backend of the first point at or after the key's
own position, wrapping around. Because a backend's points never depend on the
others, removing one backend hands only its own keys to the rest (about 1/n of
them), and adding one takes about 1/(n+1) from the others. Many points per
backend even out the arcs each one owns.

Positions come from BLAKE2b, not Python's ``hash`` (which changes from process
to process): every collector of a first tier must route a trace to the same
backend, whatever order it lists the backends in.
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Iterable

DEFAULT_POINTS_PER_BACKEND = 256
_POSITION_BYTES = 8


def position(key: bytes) -> int:
    """Where ``key`` sits on the ring."""
    return int.from_bytes(hashlib.blake2b(key, digest_size=_POSITION_BYTES).digest(), "big")


class HashRing:
    """Maps keys to backends (by name, e.g. ``host:port``) with consistent hashing."""

    def __init__(self, backends: Iterable[str], points_per_backend: int = DEFAULT_POINTS_PER_BACKEND) -> None:
        names = sorted(set(backends))
        if not names:
            raise ValueError("a hash ring needs at least one backend")
        if points_per_backend < 1:
            raise ValueError("a backend needs at least one point on the ring")
        # Sorting (position, name) pairs breaks the (astronomically rare) tie of two
        # backends on one position the same way in every process.
        points = sorted(
            (position(f"{name}\x00{index}".encode()), name) for name in names for index in range(points_per_backend)
        )
        self._positions = [point for point, _ in points]
        self._owners = [name for _, name in points]
        self.backends: tuple[str, ...] = tuple(names)

    def owner(self, key: bytes) -> str:
        """The backend that owns ``key``."""
        index = bisect.bisect_left(self._positions, position(key))
        return self._owners[index % len(self._owners)]
