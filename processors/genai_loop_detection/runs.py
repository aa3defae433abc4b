"""The open runs of one scope (traces or conversations), bounded in number and in idle time.

Each span marks its run as just active, so the count limit and the idle timeout
evict the least recently active runs first (``collector.expiring``).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from collector.expiring import ExpiringMap
from processors.genai_loop_detection.run import Run, Scope


class Runs:
    def __init__(
        self,
        scope: Scope,
        limit: int,
        idle_seconds: float,
        make: Callable[[], Run],
        evicted: Callable[[Scope, str, int], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.scope = scope
        self._make = make
        # (scope, reason, how many)
        self._runs: ExpiringMap[bytes | str, Run] = ExpiringMap(
            limit, idle_seconds, lambda reason, count: evicted(scope, reason, count), clock
        )

    def __len__(self) -> int:
        return len(self._runs)

    def get(self, key: bytes | str) -> Run:
        """The run for ``key`` (a trace id, a conversation id), made if new, marked as just active."""
        run = self._runs.get(key)
        if run is None:
            run = self._make()
        self._runs.put(key, run)
        return run

    def expire(self) -> None:
        """Forget the runs idle for longer than the timeout."""
        self._runs.expire()
