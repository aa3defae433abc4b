"""What /health reports: each component's own account of whether data can come in and move on.

A component that can tell implements ``HealthReporter``: a listener that
stopped serving, a memory limiter refusing data, a sending queue that is full
or has sent nothing for a while. The service adds one check of its own: that
the worker threads decoding requests and writing the queues still answer, since
a pipeline whose threads are all busy accepts nothing while every listener
still looks alive.
"""

from __future__ import annotations

import asyncio
from typing import Protocol, runtime_checkable

# How long the shared worker threads may take to run a no-op before they count as stalled.
WORKER_PROBE_SECONDS = 1.0


@runtime_checkable
class HealthReporter(Protocol):
    """A component that can say what keeps it from taking or moving data; no problems means healthy."""

    def health_problems(self) -> list[str]: ...


@runtime_checkable
class HealthSource(Protocol):
    """What the admin endpoint asks: the running service."""

    async def health(self) -> list[str]: ...


async def worker_threads_problem(timeout: float = WORKER_PROBE_SECONDS) -> str | None:
    """A problem line when asyncio's default worker threads do not run a no-op within ``timeout``."""
    try:
        await asyncio.wait_for(asyncio.to_thread(_nothing), timeout)
    except TimeoutError:
        return f"worker threads busy for over {timeout:g}s: request decoding and queue writes are waiting"
    return None


def _nothing() -> None:
    return None
