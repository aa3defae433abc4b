"""Results leave in batches: many results are one LogsData, not one each; a refused batch is counted per result."""

from __future__ import annotations

from typing import Any

from collector.errors import RetryableError
from connectors.genai_evaluation.emitter import EMIT_BATCH_RESULTS
from tests.connectors.genai_evaluation.support import Calls, build, config, evaluate, metric, run

RULE = {"dimensions": [{"name": "short", "rule": {"type": "latency", "max_seconds": 2}}]}


def _calls(count: int) -> Calls:
    calls = Calls()
    for number in range(1, count + 1):
        calls.chat(number)
    return calls


def test_results_of_one_batch_of_calls_leave_as_few_batches() -> None:
    count = EMIT_BATCH_RESULTS + 10
    running = build(config(RULE))
    run(evaluate(running, _calls(count).traces))
    assert len(running.logs.records()) == count
    assert len({record.span_id for record in running.logs.records()}) == count
    # A full batch leaves at once, the rest with the next tick or at shutdown: far fewer batches than results.
    assert 2 <= len(running.logs.batches) < count // 10
    assert all(batch.resource_logs for batch in running.logs.batches)


class Refusing:
    """A logs pipeline whose queue is full."""

    async def consume(self, data: Any, /) -> None:
        raise RetryableError("the queue is full")


def test_a_refused_batch_is_counted_per_result() -> None:
    running = build(config(RULE))
    running.results.engine.results = Refusing()  # type: ignore[attr-defined]
    run(evaluate(running, _calls(7).traces))
    assert metric(running.telemetry, "genai_evaluation_dropped_total", reason="emit_failed") == 7
    assert running.logs.batches == []
