"""The worker processes that belong to this collector, by pid, for whoever measures the collector as a whole.

The memory limiter counts their resident memory with the main process's: a
collector is all of its processes.
"""

from __future__ import annotations

from multiprocessing.process import BaseProcess

# How long a member whose channel is closed gets to exit on its own, and then to die once killed.
EXIT_GRACE_SECONDS = 5.0

_pids: set[int] = set()


def join(pid: int) -> None:
    _pids.add(pid)


def leave(pid: int) -> None:
    _pids.discard(pid)


def pids() -> tuple[int, ...]:
    return tuple(_pids)


def reap(process: BaseProcess) -> None:
    """``process`` no longer belongs: stop counting it and wait for it to exit, killing it if it will not.

    Its channel is closed, so it is exiting or gone; the wait is short, and only here.
    """
    if process.pid is not None:
        leave(process.pid)
    process.join(EXIT_GRACE_SECONDS)
    if process.is_alive():
        process.kill()
        process.join(EXIT_GRACE_SECONDS)
