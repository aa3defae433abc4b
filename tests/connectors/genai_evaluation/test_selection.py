"""Which spans get evaluated: sampling by trace id, filters, agent runs once idle, and a bounded queue."""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Iterator

import pytest
from opentelemetry.proto.trace.v1.trace_pb2 import TracesData

from collector import semconv
from collector.findings import FINDING_EVENT
from connectors.genai_evaluation.evaluator import sampled
from tests.connectors.genai_evaluation.support import (
    JUDGE_KEY,
    JUDGE_MODEL,
    Calls,
    Running,
    attributes,
    build,
    by_dimension,
    config,
    evaluate,
    metric,
    run,
    upstreams,
)
from tests.proxy.mock_upstream import MockUpstream, serve

TRACES = 4000
RATE = 0.1
# The count of sampled traces is binomial(TRACES, RATE): this many standard deviations either side fail.
DEVIATIONS = 5


def _rule(name: str, rate: float = 1.0, **filters: object) -> dict[str, object]:
    return {"name": name, "rule": {"type": "length", "max_chars": 100}, "sampling_rate": rate, "filters": filters}


def test_sampling_rate_within_binomial_bounds_and_the_same_on_every_replica() -> None:
    calls = Calls()
    for number in range(1, TRACES + 1):
        calls.chat(number)
    raw = config({"dimensions": [_rule("a", RATE), _rule("b", RATE)], "queue_size": 2 * TRACES})
    replicas = [build(raw), build(raw)]
    for replica in replicas:
        run(evaluate(replica, calls.traces))
    picked = [{key for key in by_dimension(r.logs.records())} for r in replicas]
    assert picked[0] == picked[1]
    mean, deviation = TRACES * RATE, math.sqrt(TRACES * RATE * (1 - RATE))
    for dimension in ("a", "b"):
        count = sum(1 for _, name in picked[0] if name == dimension)
        assert abs(count - mean) < DEVIATIONS * deviation, count
    a = {span for span, name in picked[0] if name == "a"}
    b = {span for span, name in picked[0] if name == "b"}
    assert a != b  # dimensions sample independently
    assert sampled(0.0, b"x" * 16, "a") is False and sampled(1.0, b"x" * 16, "a") is True


def test_filters() -> None:
    calls, other = Calls(), Calls(service="billing")
    calls.chat(1, model="gpt-4o")
    calls.chat(2, model="llama-3.1-8b", extra={semconv.TENANT_ID: "acme"})
    flagged = calls.chat(3, model="gpt-4o-mini")
    flagged.events.add().name = FINDING_EVENT
    other.chat(4, model="gpt-4o")
    embedding = calls.chat(5, extra={semconv.OPERATION_NAME: semconv.EMBEDDINGS})
    del embedding  # embeddings are not calls a rubric or rule can read
    dimensions = [
        _rule("all"),
        _rule("gpt", models=["gpt-*"]),
        _rule("shop", services=["shop"]),
        _rule("acme", tenants=["acme"]),
        _rule("findings", has_findings=True),
        _rule("clean", has_findings=False),
        _rule("completions", operations=["text_completion"]),
    ]
    running = build(config({"dimensions": dimensions}))
    run(evaluate(running, calls.traces, other.traces))
    chosen: dict[str, set[int]] = {}
    for span_id, name in by_dimension(running.logs.records()):
        chosen.setdefault(name, set()).add(int.from_bytes(span_id, "big"))
    assert chosen == {
        "all": {1, 2, 3, 4},
        "gpt": {1, 3, 4},
        "shop": {1, 2, 3},
        "acme": {2},
        "findings": {3},
        "clean": {1, 2, 4},
    }


def test_consume_never_waits_and_a_full_queue_drops_and_counts() -> None:
    calls = Calls()
    for number in range(1, 51):
        calls.chat(number)
    running = build(config({"dimensions": [_rule("a")], "queue_size": 10}))

    async def scenario() -> None:
        # Not started: no worker takes from the queue, so it fills, and consume still returns at once.
        await running.results.consume(calls.traces)

    run(scenario())
    assert metric(running.telemetry, "genai_evaluation_dropped_total", reason="queue_full") == 40


def test_what_arrives_after_shutdown_is_dropped_and_counted_as_such() -> None:
    calls = Calls()
    for number in range(1, 6):
        calls.chat(number)
    running = build(config({"dimensions": [_rule("a")]}))

    async def scenario() -> None:
        await running.results.start(None)  # type: ignore[arg-type]
        await running.results.shutdown()
        await running.results.consume(calls.traces)

    run(scenario())
    assert metric(running.telemetry, "genai_evaluation_dropped_total", reason="shutdown") == 5
    assert metric(running.telemetry, "genai_evaluation_dropped_total", reason="queue_full") == 0
    assert running.logs.batches == []


@pytest.fixture(scope="module")
def judge() -> Iterator[tuple[MockUpstream, str]]:
    mock = MockUpstream(openai_key=JUDGE_KEY)
    with serve(mock) as url:
        yield mock, url


def _agent_trace(trace: int, marker: str) -> TracesData:
    calls = Calls(service="agents")
    trace_id = trace.to_bytes(16, "big")
    start = 1_700_000_000_000_000_000
    task = json.dumps([{"role": "user", "parts": [{"type": "text", "content": f"Weather in Rome? {marker}"}]}])
    final = json.dumps([{"role": "assistant", "parts": [{"type": "text", "content": "Sunny."}]}])
    calls.span(
        trace_id,
        b"agent001",
        "invoke_agent weather",
        start,
        start + 5_000_000_000,
        {
            semconv.OPERATION_NAME: semconv.INVOKE_AGENT,
            semconv.AGENT_NAME: "weather",
            semconv.INPUT_MESSAGES: task,
            semconv.OUTPUT_MESSAGES: final,
        },
    )
    calls.span(
        trace_id,
        b"tool0001",
        "execute_tool get_weather",
        start + 1,
        start + 2,
        {
            semconv.OPERATION_NAME: semconv.EXECUTE_TOOL,
            semconv.TOOL_NAME: "get_weather",
            semconv.TOOL_CALL_ARGUMENTS: '{"city": "Rome"}',
            semconv.TOOL_CALL_RESULT: "sunny, 24C",
        },
    )
    calls.chat(7, trace=trace, answer="Sunny.")
    return calls.traces


def _agent_config(url: str, idle: str) -> dict[str, object]:
    return {
        "judge": {"model": JUDGE_MODEL, "upstreams": upstreams(url)},
        "dimensions": [{"name": "tool_use", "rubric": "tool_use", "applies_to": "agent_runs"}],
        "agent_runs": {"idle_timeout": idle},
    }


def test_an_agent_run_is_judged_once_its_trace_is_idle_with_its_steps(judge: tuple[MockUpstream, str]) -> None:
    mock, url = judge
    mock.reset()
    running: Running = build(config(_agent_config(url, "50ms")))

    async def scenario() -> None:
        await running.results.start(None)  # type: ignore[arg-type]
        await running.results.consume(_agent_trace(9, "mock-judge-score=5"))
        await asyncio.wait_for(running.logs.arrived.wait(), 30)  # the idle run, judged before shutdown
        await running.results.shutdown()

    run(scenario())
    (record,) = running.logs.records()
    assert record.span_id == b"agent001" and record.trace_id == (9).to_bytes(16, "big")
    assert attributes(record)[semconv.EVALUATION_SCORE_VALUE] == 5.0
    (request,) = mock.requests_to("/v1/chat/completions")
    prompt = request.json()["messages"][1]["content"]
    assert "TASK:\nWeather in Rome?" in prompt
    assert '1. tool get_weather({"city": "Rome"}) -> sunny, 24C' in prompt
    assert "2. chat gpt-4o-2024-08-06: Sunny." in prompt


def test_held_agent_runs_are_judged_at_shutdown(judge: tuple[MockUpstream, str]) -> None:
    _, url = judge
    running = build(config(_agent_config(url, "1h")))
    run(evaluate(running, _agent_trace(10, "mock-judge-score=2")))
    (record,) = running.logs.records()
    assert attributes(record)[semconv.EVALUATION_SCORE_VALUE] == 2.0
    assert attributes(record)["genai_collector.evaluation.passed"] is False


def test_the_worker_parts_notes_are_what_the_connector_evaluates() -> None:
    import pickle

    from collector.runtime.annotations import Annotation, annotated
    from connectors.genai_evaluation import factory
    from tests.connectors.genai_evaluation.support import settings_for

    calls = Calls()
    for number in range(1, 201):
        calls.chat(number, answer="x" * number)
    raw = config({"dimensions": [_rule("a", 0.5), _rule("b", 1.0, models=["llama*"])]})
    part = factory.create_worker_part(settings_for("genai_evaluation"), raw)  # type: ignore[misc]
    # A note crosses from the worker process to the main one: it pickles.
    note = pickle.loads(pickle.dumps(part.observe(calls.traces)))
    direct, noted = build(raw), build(raw)
    run(evaluate(direct, calls.traces))

    async def through_workers() -> None:
        await noted.results.start(None)  # type: ignore[arg-type]
        # The batch the connector gets is empty: only the note can give it anything to evaluate.
        empty = TracesData()
        with annotated(empty, Annotation(notes={"genai_evaluation": [note]})):
            await noted.results.consume(empty)
        await noted.results.shutdown()

    run(through_workers())
    assert sorted(by_dimension(noted.logs.records())) == sorted(by_dimension(direct.logs.records()))
    assert 50 < len(noted.logs.records()) < 150
