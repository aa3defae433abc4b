"""The connector's results on their way to the logs pipelines: gathered, and sent as one batch at a time.

A result is one small log record; sent alone, each would be a batch of its own through the logs
pipeline and its exporters (a queue write per result). The emitter gathers results and sends them as
one ``LogsData`` once ``EMIT_BATCH_RESULTS`` are waiting or every ``EMIT_INTERVAL_SECONDS``, and what is
still waiting at shutdown. What the pipeline refuses is counted as dropped (``emit_failed``), per result.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from collector.component import Consumer
from collector.errors import ConsumeError
from connectors.genai_evaluation.records import result_records
from connectors.genai_evaluation.result import Outcome
from connectors.genai_evaluation.subject import Subject

# A batch leaves when this many results wait, or when the oldest waited this long.
EMIT_BATCH_RESULTS = 512
EMIT_INTERVAL_SECONDS = 0.2

Result = tuple[Subject, str, Outcome]


class ResultEmitter:
    """Gathers results and sends them to ``results`` in batches; ``dropped(n)`` counts what it refused.

    A full batch is sent by the judge worker that filled it, which waits for the pipeline (as it waited
    for its one result before): a slow pipeline slows the judging, the queue in front of it drops.
    """

    def __init__(self, results: Consumer[Any], dropped: Callable[[int], None], logger: logging.Logger) -> None:
        self._results = results
        self._dropped = dropped
        self._logger = logger
        self._waiting: list[Result] = []
        self._stop = asyncio.Event()
        self._ticker: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._stop.clear()
        self._ticker = asyncio.create_task(self._tick(), name="evaluation results")

    async def add(self, result: Result) -> None:
        self._waiting.append(result)
        if len(self._waiting) >= EMIT_BATCH_RESULTS:
            await self._send_waiting()

    async def close(self) -> None:
        """Send what waits (shutdown, before the logs pipeline stops)."""
        self._stop.set()
        if self._ticker is not None:
            await self._ticker
            self._ticker = None
        await self._send_waiting()

    async def _tick(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), EMIT_INTERVAL_SECONDS)
            await self._send_waiting()

    async def _send_waiting(self) -> None:
        if not self._waiting:
            return
        batch, self._waiting = self._waiting, []
        try:
            await self._results.consume(result_records(batch))
        except ConsumeError as exc:
            self._dropped(len(batch))
            self._logger.warning("the logs pipeline refused %d evaluation results: %s", len(batch), exc)
