"""The worker processes that belong to this collector, by pid, for whoever measures the collector as a whole.

The memory limiter counts their resident memory with the main process's: a
collector is all of its processes.
"""

from __future__ import annotations

_pids: set[int] = set()


def join(pid: int) -> None:
    _pids.add(pid)


def leave(pid: int) -> None:
    _pids.discard(pid)


def pids() -> tuple[int, ...]:
    return tuple(_pids)
