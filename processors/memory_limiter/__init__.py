"""The ``memory_limiter`` processor: refuse data while the process uses too much memory.

Every ``check_interval`` it reads the process's resident memory. At or above the
soft limit (the limit minus the spike allowance) it refuses every batch with a
``MemoryLimitError``, which the OTLP receivers answer 429 + Retry-After (gRPC
RESOURCE_EXHAUSTED + RetryInfo) so clients back off and send again: nothing is
dropped silently and no caller waits. Below the soft limit again, it lets data
through. Put it first in a pipeline, so refused data costs nothing downstream.

Unlike the Go collector it forces no garbage collection above the hard limit:
CPython frees most memory as soon as the last reference goes, and a full
collection on a large heap would stall the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from collector.component import ComponentSettings, Consumer, Host, Processor, ProcessorFactory
from collector.errors import MemoryLimitError, StartError
from collector.signals import OtlpData
from processors.memory_limiter import memory
from processors.memory_limiter.config import BYTES_PER_MIB, MemoryLimiterConfig
from processors.memory_limiter.generated_metrics import MemoryLimiterSelfMetrics


class MemoryLimiter:
    """Passes batches on while memory is below the soft limit; refuses them, retryably, above it."""

    def __init__(
        self,
        settings: ComponentSettings,
        config: MemoryLimiterConfig,
        next_consumer: Consumer[Any],
        read_memory: Callable[[], int] = memory.resident_bytes,
        read_total: Callable[[], int] = memory.total_bytes,
    ) -> None:
        self._config = config
        self._next = next_consumer
        self._logger: logging.Logger = settings.logger
        self._read_memory = read_memory
        self._read_total = read_total
        self._hard_limit = self._soft_limit = 0
        self._used = 0
        self._refusing = False
        self._task: asyncio.Task[None] | None = None
        metrics, processor = MemoryLimiterSelfMetrics(settings.telemetry), str(settings.id)
        metrics.processor_memory_limiter_memory_bytes.watch(lambda: float(self._used), processor=processor)
        metrics.processor_memory_limiter_soft_limit_bytes.watch(lambda: float(self._soft_limit), processor=processor)

    @property
    def refusing(self) -> bool:
        return self._refusing

    def health_problems(self) -> list[str]:
        if not self._refusing:
            return []
        return [
            f"memory in use ({self._used // BYTES_PER_MIB} MiB) is above the soft limit "
            f"({self._soft_limit // BYTES_PER_MIB} MiB): data is refused until it falls"
        ]

    async def start(self, host: Host) -> None:
        if self._task is not None:
            return
        self._hard_limit, self._soft_limit = self._config.limits(self._read_total())
        try:
            # The first reading before any data arrives, so a process already over the limit refuses at once.
            self.check()
        except memory.MemoryUnreadable as exc:
            raise StartError(f"memory_limiter cannot measure this process's memory: {exc}") from None
        self._logger.info(
            "memory limiter: soft limit %d MiB, hard limit %d MiB, checked every %gs",
            self._soft_limit // BYTES_PER_MIB,
            self._hard_limit // BYTES_PER_MIB,
            self._config.check_interval,
        )
        self._task = asyncio.create_task(self._watch(), name="memory-limiter")

    def check(self) -> None:
        """Read the memory in use now and refuse or accept data from here on."""
        self._used = self._read_memory()
        refusing = self._used >= self._soft_limit
        if refusing != self._refusing:
            if refusing:
                self._logger.warning(
                    "memory usage %d MiB is at or above the soft limit %d MiB: refusing data",
                    self._used // BYTES_PER_MIB,
                    self._soft_limit // BYTES_PER_MIB,
                )
            else:
                self._logger.info("memory usage %d MiB is below the soft limit again", self._used // BYTES_PER_MIB)
        self._refusing = refusing

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self._config.check_interval)
            try:
                self.check()
            except (OSError, ValueError, IndexError):
                # Readable at start, so this is transient; keep the last decision rather than stop watching.
                self._logger.exception("memory limiter could not read the memory in use")

    async def consume(self, data: OtlpData) -> None:
        if self._refusing:
            raise MemoryLimitError(
                f"memory usage {self._used // BYTES_PER_MIB} MiB is above the memory limiter's soft limit "
                f"({self._soft_limit // BYTES_PER_MIB} MiB); retry later",
                retry_after=self._config.check_interval,
            )
        await self._next.consume(data)

    async def shutdown(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def create_processor(
    settings: ComponentSettings, config: MemoryLimiterConfig, next_consumer: Consumer[Any]
) -> Processor:
    return MemoryLimiter(settings, config, next_consumer)


# One per pipeline, for every signal: each refuses while the collector's memory is over the soft limit.
factory = ProcessorFactory(
    type="memory_limiter",
    config_type=MemoryLimiterConfig,
    create=create_processor,
    create_logs=create_processor,
    create_metrics=create_processor,
)
