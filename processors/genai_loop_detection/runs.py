"""The open runs of one scope (traces or conversations), bounded in number and in idle time.

Runs live in insertion-ordered dicts moved to the end on every span, so the
least recently active is always first: the count limit and the idle timeout
both evict from the front, in constant time per eviction.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

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
        self._limit = limit
        self._idle = idle_seconds
        self._make = make
        self._evicted = evicted  # (scope, reason, how many)
        self._clock = clock
        self._runs: OrderedDict[bytes | str, tuple[Run, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._runs)

    def get(self, key: bytes | str) -> Run:
        """The run for ``key`` (a trace id, a conversation id), made if new, marked as just active."""
        runs = self._runs
        entry = runs.get(key)
        if entry is None:
            run = self._make()
            runs[key] = (run, self._clock())
            if len(runs) > self._limit:
                runs.popitem(last=False)
                self._evicted(self.scope, "limit", 1)
            return run
        runs[key] = (entry[0], self._clock())
        runs.move_to_end(key)
        return entry[0]

    def expire(self) -> None:
        """Forget the runs idle for longer than the timeout."""
        deadline = self._clock() - self._idle
        expired = 0
        while self._runs:
            key, (_, active) = next(iter(self._runs.items()))
            if active > deadline:
                break
            del self._runs[key]
            expired += 1
        if expired:
            self._evicted(self.scope, "idle", expired)
