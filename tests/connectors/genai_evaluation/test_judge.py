"""The judge against the mock upstream in each provider's format: results exactly, garbage and failures as errors."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from collector import semconv
from connectors.genai_evaluation.records import EVALUATOR, PASSED
from connectors.genai_evaluation.subject import EVALUATOR_CALL
from tests.connectors.genai_evaluation.support import (
    ANTHROPIC_JUDGE,
    JUDGE_KEY,
    JUDGE_MODEL,
    Calls,
    attributes,
    build,
    by_dimension,
    config,
    evaluate,
    metric,
    run,
    upstreams,
)
from tests.proxy.mock_upstream import JUDGE_EXPLANATION, MockUpstream, serve


@pytest.fixture(scope="module")
def mock_url() -> Iterator[tuple[MockUpstream, str]]:
    mock = MockUpstream(openai_key=JUDGE_KEY, anthropic_key=JUDGE_KEY, stall_seconds=30.0)
    with serve(mock) as url:
        yield mock, url


def _judged(url: str, model: str, structured: str = "auto", **judge: object) -> dict[str, object]:
    return {
        "judge": {"model": model, "upstreams": upstreams(url, url), "structured_output": structured, **judge},
        "dimensions": [
            {"name": "relevance", "rubric": "relevance"},
            {"name": "harm", "rubric": "harmful_content"},
        ],
    }


@pytest.mark.parametrize("model", [JUDGE_MODEL, ANTHROPIC_JUDGE])
@pytest.mark.parametrize("structured", ["auto", "text"])
def test_scores_and_labels_are_recorded_exactly(
    mock_url: tuple[MockUpstream, str], model: str, structured: str
) -> None:
    mock, url = mock_url
    calls = Calls()
    calls.chat(1, answer="Paris. mock-judge-score=4 mock-judge-label=harmless")
    calls.chat(2, answer="Lyon? mock-judge-score=2.5 mock-judge-label=harmful mock-judge-answer=text")
    running = build(config(_judged(url, model, structured)))
    run(evaluate(running, calls.traces))

    results = by_dimension(running.logs.records())
    assert len(results) == 4
    evaluator = f"judge:{model}"
    one = results[((1).to_bytes(8, "big"), "relevance")]
    assert one[semconv.EVALUATION_SCORE_VALUE] == 4.0
    assert one[semconv.EVALUATION_EXPLANATION] == JUDGE_EXPLANATION
    assert one[PASSED] is True
    assert one[EVALUATOR] == evaluator
    assert one[semconv.RESPONSE_ID] == "chatcmpl-1"
    assert semconv.ERROR_TYPE not in one
    two = results[((2).to_bytes(8, "big"), "relevance")]
    assert two[semconv.EVALUATION_SCORE_VALUE] == 2.5 and two[PASSED] is False
    assert results[((1).to_bytes(8, "big"), "harm")][semconv.EVALUATION_SCORE_LABEL] == "harmless"
    assert results[((2).to_bytes(8, "big"), "harm")][semconv.EVALUATION_SCORE_LABEL] == "harmful"
    assert results[((2).to_bytes(8, "big"), "harm")][PASSED] is False
    assert semconv.EVALUATION_SCORE_VALUE not in results[((2).to_bytes(8, "big"), "harm")]


def test_structured_output_is_asked_in_each_providers_terms(mock_url: tuple[MockUpstream, str]) -> None:
    mock, url = mock_url
    mock.reset()
    calls = Calls()
    calls.chat(1, answer="mock-judge-score=5 mock-judge-label=harmless")
    for model in (JUDGE_MODEL, ANTHROPIC_JUDGE):
        run(evaluate(build(config(_judged(url, model))), calls.traces))
    openai = mock.requests_to("/v1/chat/completions")[0].json()
    assert openai["response_format"]["type"] == "json_schema"
    assert openai["response_format"]["json_schema"]["strict"] is True
    assert openai["model"] == JUDGE_MODEL and "max_completion_tokens" in openai
    anthropic = mock.requests_to("/v1/messages")[0].json()
    assert anthropic["tool_choice"]["type"] == "tool"
    assert anthropic["tools"][0]["name"] == anthropic["tool_choice"]["name"]
    assert mock.requests_to("/v1/messages")[0].headers["x-api-key"] == JUDGE_KEY


def test_garbage_is_an_error_never_a_score(mock_url: tuple[MockUpstream, str]) -> None:
    _, url = mock_url
    calls = Calls()
    calls.chat(1, answer="mock-judge-answer=garbage")
    calls.chat(2, answer="mock-judge-score=9")  # off the 1..5 scale
    running = build(config(_judged(url, JUDGE_MODEL)))
    run(evaluate(running, calls.traces))
    results = by_dimension(running.logs.records())
    for key in ((1, "relevance"), (2, "relevance"), (1, "harm")):
        result = results[(key[0].to_bytes(8, "big"), key[1])]
        assert result[semconv.ERROR_TYPE] == "unparseable_answer"
        assert semconv.EVALUATION_SCORE_VALUE not in result and PASSED not in result
    assert "outside 1..5" in results[((2).to_bytes(8, "big"), "relevance")][semconv.EVALUATION_EXPLANATION]
    errors = [r for r in running.logs.records() if semconv.ERROR_TYPE in attributes(r)]
    assert all(r.severity_number == 17 for r in errors)


def test_an_answer_beyond_the_bound_is_an_error(mock_url: tuple[MockUpstream, str]) -> None:
    _, url = mock_url
    calls = Calls()
    calls.chat(1, answer="mock-judge-score=3 mock-judge-answer=huge")
    raw = _judged(url, JUDGE_MODEL)
    raw["dimensions"] = [{"name": "relevance", "rubric": "relevance"}]
    running = build(config(raw))
    run(evaluate(running, calls.traces))
    (result,) = by_dimension(running.logs.records()).values()
    assert result[semconv.ERROR_TYPE] == "judge_error"
    assert result[semconv.EVALUATION_EXPLANATION] == "the judge's answer is larger than 1048576 bytes"


def test_a_429_is_retried_after_retry_after_then_scored(mock_url: tuple[MockUpstream, str]) -> None:
    mock, url = mock_url
    mock.reset()
    calls = Calls()
    calls.chat(1, answer="mock-judge-score=3 mock-judge-answer=retry")
    raw = _judged(url, JUDGE_MODEL)
    raw["dimensions"] = [{"name": "relevance", "rubric": "relevance"}]
    running = build(config(raw))
    run(evaluate(running, calls.traces))
    (result,) = by_dimension(running.logs.records()).values()
    assert result[semconv.EVALUATION_SCORE_VALUE] == 3.0
    assert len(mock.requests_to("/v1/chat/completions")) == 2


def test_a_judge_that_does_not_answer_in_time_is_a_timeout_error() -> None:
    mock = MockUpstream(openai_key=JUDGE_KEY, stall_seconds=30.0)
    with serve(mock) as url:
        calls = Calls()
        calls.chat(1, answer="mock-judge-score=3 mock-judge-answer=stall")
        raw = _judged(url, JUDGE_MODEL, timeout="200ms", max_attempts=2, max_backoff="10ms")
        raw["dimensions"] = [{"name": "relevance", "rubric": "relevance"}]
        running = build(config(raw))
        run(evaluate(running, calls.traces))
        mock.closing.set()
    (result,) = by_dimension(running.logs.records()).values()
    assert result[semconv.ERROR_TYPE] == "timeout"
    assert len(mock.requests_to("/v1/chat/completions")) == 2


def test_judge_calls_are_spans_marked_as_evaluator_calls_and_never_judged(mock_url: tuple[MockUpstream, str]) -> None:
    mock, url = mock_url
    calls = Calls()
    calls.chat(1, answer="mock-judge-score=4 mock-judge-label=harmless")
    running = build(config(_judged(url, JUDGE_MODEL)))
    run(evaluate(running, calls.traces))
    judge_spans = running.spans.spans()
    assert len(judge_spans) == 2
    for span in judge_spans:
        values = attributes(span)
        assert values[EVALUATOR_CALL] is True
        assert values[semconv.OPERATION_NAME] == "chat" and values[semconv.REQUEST_MODEL] == JUDGE_MODEL
        assert values[semconv.USAGE_INPUT_TOKENS] > 0
        assert span.links[0].span_id == (1).to_bytes(8, "big")

    # The judge's spans, fed back into a connector, are never selected.
    mock.reset()
    again = build(config(_judged(url, JUDGE_MODEL)))
    run(evaluate(again, *running.spans.batches))
    assert again.logs.records() == [] and mock.requests_to("/v1/chat/completions") == []


def test_the_budget_stops_calls_at_the_budget(mock_url: tuple[MockUpstream, str]) -> None:
    mock, url = mock_url
    mock.reset()
    calls = Calls()
    for number in range(1, 41):
        calls.chat(number, answer="mock-judge-score=4")
    raw = _judged(url, JUDGE_MODEL, daily_budget_usd=0.001, concurrency=8, max_output_tokens=100)
    raw["dimensions"] = [{"name": "relevance", "rubric": "relevance"}]
    running = build(config(raw))
    run(evaluate(running, calls.traces))
    made = len(mock.requests_to("/v1/chat/completions"))
    spent = sum(attributes(s)[semconv.USAGE_COST_AMOUNT] for s in running.spans.spans())
    skipped = metric(running.telemetry, "genai_evaluation_dropped_total", reason="budget_exhausted")
    assert 0 < made < 40 and spent <= 0.001
    assert made + skipped == 40 and len(running.logs.records()) == made
    # Each call was reserved at its largest possible cost: one more would not have fitted.
    assert json.loads(mock.requests_to("/v1/chat/completions")[0].body)["max_completion_tokens"] == 100
