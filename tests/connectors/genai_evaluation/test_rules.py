"""Rule evaluators on a table of cases: each gives pass or fail with its reason, and needs no model."""

from __future__ import annotations

from typing import Any

import pytest

from collector import semconv
from connectors.genai_evaluation.config import RuleConfig
from connectors.genai_evaluation.rules import Rule
from connectors.genai_evaluation.subject import Subject
from tests.connectors.genai_evaluation.support import Calls, attributes, build, by_dimension, config, evaluate, run

SCHEMA = '{"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}'


def _subject(answer: str, seconds: float = 1.0, cost: float | None = None) -> Subject:
    calls = Calls()
    extra = {semconv.USAGE_COST_AMOUNT: cost} if cost is not None else {}
    span = calls.chat(1, answer=answer, seconds=seconds, extra=extra)
    return Subject.from_span(calls.traces.resource_spans[0].resource, span)


CASES: list[tuple[dict[str, Any], dict[str, Any], bool, str]] = [
    ({"type": "json_valid"}, {"answer": '{"a": 1}'}, True, "the output is valid JSON"),
    ({"type": "json_valid"}, {"answer": "[1, 2]"}, True, "the output is valid JSON"),
    ({"type": "json_valid"}, {"answer": "{a: 1}"}, False, "the output is not valid JSON"),
    ({"type": "json_valid"}, {"answer": ""}, False, "the output is not valid JSON"),
    ({"type": "json_schema", "schema": SCHEMA}, {"answer": '{"city": "Rome"}'}, True, "the output matches the schema"),
    (
        {"type": "json_schema", "schema": SCHEMA},
        {"answer": '{"city": 7}'},
        False,
        "the output does not match the schema at city: 7 is not of type 'string'",
    ),
    (
        {"type": "json_schema", "schema": SCHEMA},
        {"answer": "{}"},
        False,
        "the output does not match the schema at (root): 'city' is a required property",
    ),
    ({"type": "json_schema", "schema": SCHEMA}, {"answer": "Rome"}, False, "the output is not valid JSON"),
    ({"type": "regex_present", "pattern": r"\bParis\b"}, {"answer": "It is Paris."}, True, "the pattern is present"),
    ({"type": "regex_present", "pattern": r"\bParis\b"}, {"answer": "Parisian"}, False, "the pattern is absent"),
    (
        {"type": "regex_absent", "pattern": r"(?i)as an ai"},
        {"answer": "As an AI, no."},
        False,
        "the pattern is present",
    ),
    ({"type": "regex_absent", "pattern": r"(?i)as an ai"}, {"answer": "Sure."}, True, "the pattern is absent"),
    ({"type": "length", "min_chars": 3}, {"answer": "ok"}, False, "the output has 2 characters, fewer than 3"),
    ({"type": "length", "max_chars": 5}, {"answer": "abcdef"}, False, "the output has 6 characters, more than 5"),
    ({"type": "length", "min_chars": 1, "max_chars": 5}, {"answer": "abc"}, True, "the output has 3 characters"),
    (
        {"type": "latency", "max_seconds": 2},
        {"answer": "x", "seconds": 2.5},
        False,
        "the call took 2.5 s, more than 2 s",
    ),
    ({"type": "latency", "max_seconds": 2}, {"answer": "x", "seconds": 2.0}, True, "the call took 2 s"),
    (
        {"type": "cost", "max_usd": 0.01},
        {"answer": "x", "cost": 0.02},
        False,
        "the call cost 0.02 USD, more than 0.01 USD",
    ),
    ({"type": "cost", "max_usd": 0.01}, {"answer": "x", "cost": 0.01}, True, "the call cost 0.01 USD"),
    ({"type": "cost", "max_usd": 0.01}, {"answer": "x"}, True, "the call has no cost"),
]


@pytest.mark.parametrize(("rule", "call", "passed", "reason"), CASES)
def test_rule_cases(rule: dict[str, Any], call: dict[str, Any], passed: bool, reason: str) -> None:
    raw = config({"dimensions": [{"name": "check", "rule": rule}]})
    rule_config = raw.dimensions[0].rule
    assert isinstance(rule_config, RuleConfig)
    outcome = Rule(rule_config).evaluate(_subject(**call))
    assert (outcome.passed, outcome.explanation) == (passed, reason)
    assert (outcome.score, outcome.label) == ((1.0, "pass") if passed else (0.0, "fail"))
    assert outcome.evaluator == f"rule:{rule['type']}" and not outcome.failed


def test_rules_run_in_the_connector_without_a_judge() -> None:
    calls = Calls()
    calls.chat(1, answer='{"city": "Rome"}')
    calls.chat(2, answer="Rome")
    running = build(config({"dimensions": [{"name": "json", "rule": {"type": "json_schema", "schema": SCHEMA}}]}))
    run(evaluate(running, calls.traces))
    results = by_dimension(running.logs.records())
    assert results[((1).to_bytes(8, "big"), "json")]["genai_collector.evaluation.passed"] is True
    assert results[((2).to_bytes(8, "big"), "json")][semconv.EVALUATION_SCORE_LABEL] == "fail"
    assert running.spans.spans() == []
    record = running.logs.records()[0]
    assert record.event_name == "gen_ai.evaluation.result"
    assert attributes(record)[semconv.OPERATION_NAME] == "chat"
