"""The ``batch`` processor, for configurations written for the OpenTelemetry Collector.

For every signal, it merges incoming requests into larger ones (``send_batch_size`` items: spans, log
records or metric data points; or
``timeout``, whichever comes first; never more than ``send_batch_max_size`` when
that is set, except that one request larger than that passes on whole rather
than split) before passing them on. Unlike the Go collector's batch processor it
does not acknowledge early: each caller waits until the merged batch it joined
has been accepted downstream, so a crash cannot lose acknowledged data. Batching
for storage belongs in each exporter's ``sending_queue``; this processor only
reduces the number of downstream calls.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from collector.component import ComponentSettings, Consumer, Host, Processor, ProcessorFactory
from collector.config.types import Duration
from collector.signals import OtlpData, item_count, merged

DEFAULT_SEND_BATCH_SIZE = 8192
DEFAULT_TIMEOUT = Duration(0.2)


@dataclass(frozen=True)
class BatchConfig:
    send_batch_size: int = DEFAULT_SEND_BATCH_SIZE
    send_batch_max_size: int = 0  # 0: no upper bound
    timeout: Duration = DEFAULT_TIMEOUT

    def validate(self) -> Iterable[tuple[str, str]]:
        if self.send_batch_size < 1:
            yield "send_batch_size", "must be at least 1"
        if self.send_batch_max_size and self.send_batch_max_size < self.send_batch_size:
            yield "send_batch_max_size", f"must be 0 or at least send_batch_size ({self.send_batch_size})"


@dataclass
class _Pending:
    items: list[OtlpData]
    count: int
    done: asyncio.Future[None]


class BatchProcessor:
    """Merges requests and forwards them together; every caller learns its batch's outcome."""

    def __init__(self, settings: ComponentSettings, config: BatchConfig, next_consumer: Consumer[Any]) -> None:
        self._config = config
        self._next = next_consumer
        self._pending: _Pending | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._in_flight: set[asyncio.Task[None]] = set()

    async def start(self, host: Host) -> None:
        return None

    async def consume(self, data: OtlpData) -> None:
        count = item_count(data)
        limit = self._config.send_batch_max_size
        pending = self._pending
        if pending is not None and limit and pending.count + count > limit:
            self._flush()
            pending = None
        if pending is None:
            pending = _Pending([], 0, asyncio.get_running_loop().create_future())
            self._pending = pending
            self._timer = asyncio.get_running_loop().call_later(self._config.timeout, self._flush)
        pending.items.append(data)
        pending.count += count
        done = pending.done
        if pending.count >= self._config.send_batch_size:
            self._flush()
        await asyncio.shield(done)

    def _flush(self) -> None:
        pending, self._pending = self._pending, None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if pending is None:
            return
        task = asyncio.get_running_loop().create_task(self._forward(pending))
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)

    async def _forward(self, pending: _Pending) -> None:
        try:
            await self._next.consume(merged(pending.items))
        except Exception as exc:  # a ConsumeError, or a bug surfaced to the callers instead of lost in a task
            pending.done.set_exception(exc)
        else:
            pending.done.set_result(None)

    async def shutdown(self) -> None:
        """Forward what is pending and wait for it; safe to call twice."""
        self._flush()
        if self._in_flight:
            await asyncio.gather(*self._in_flight, return_exceptions=True)


def create_processor(settings: ComponentSettings, config: BatchConfig, next_consumer: Consumer[Any]) -> Processor:
    return BatchProcessor(settings, config, next_consumer)


factory = ProcessorFactory(
    type="batch",
    config_type=BatchConfig,
    create=create_processor,
    create_logs=create_processor,
    create_metrics=create_processor,
)
