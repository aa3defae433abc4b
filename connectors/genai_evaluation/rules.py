"""Rule evaluators: checks on a call that need no model (valid JSON, a JSON schema, a regex, length, latency, cost).

Each gives 1.0 and ``pass`` or 0.0 and ``fail``, with the reason as the explanation. Regular
expressions are RE2 (linear time whatever the pattern or the text), compiled as the security rules' are.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import jsonschema

from collector.jsonvalues import parse_json
from connectors.genai_evaluation.config import RuleConfig
from connectors.genai_evaluation.result import Outcome
from connectors.genai_evaluation.subject import Subject
from processors.genai_security.rules import compile_pattern

PASS, FAIL = "pass", "fail"
# A rule reads the whole output text; this only bounds a pathological attribute.
MAX_CHECKED_CHARS = 1_000_000
# How much of a schema violation's message goes into the explanation.
MAX_REASON_CHARS = 300


def schema_problem(schema: str) -> str | None:
    """Why ``schema`` (JSON text) is not a usable JSON schema, or None."""
    try:
        document = json.loads(schema)
    except ValueError as exc:
        return f"is not JSON: {exc}"
    if not isinstance(document, dict):
        return "must be a JSON object"
    try:
        jsonschema.validators.validator_for(document).check_schema(document)
    except jsonschema.SchemaError as exc:
        return f"is not a valid JSON schema: {exc.message}"
    return None


class Rule:
    """One configured rule, compiled once."""

    def __init__(self, config: RuleConfig) -> None:
        self.config = config
        self.evaluator = f"rule:{config.type}"
        self._pattern = compile_pattern(config.pattern) if config.pattern else None
        self._validator = None
        if config.type == "json_schema":
            document = json.loads(config.schema)
            self._validator = jsonschema.validators.validator_for(document)(document)
        checks: dict[str, Callable[[Subject], tuple[bool, str]]] = {
            "json_valid": self._json_valid,
            "json_schema": self._json_schema,
            "regex_present": self._regex_present,
            "regex_absent": self._regex_absent,
            "length": self._length,
            "latency": self._latency,
            "cost": self._cost,
        }
        self._check = checks[config.type]

    def evaluate(self, subject: Subject) -> Outcome:
        passed, reason = self._check(subject)
        return Outcome(
            evaluator=self.evaluator,
            score=1.0 if passed else 0.0,
            label=PASS if passed else FAIL,
            explanation=reason,
            passed=passed,
        )

    def _text(self, subject: Subject) -> str:
        return subject.evaluated_text(MAX_CHECKED_CHARS)

    def _json_valid(self, subject: Subject) -> tuple[bool, str]:
        text = self._text(subject)
        if parse_json(text) is None and text.strip() != "null":
            return False, "the output is not valid JSON"
        return True, "the output is valid JSON"

    def _json_schema(self, subject: Subject) -> tuple[bool, str]:
        text = self._text(subject)
        document = parse_json(text)
        if document is None and text.strip() != "null":
            return False, "the output is not valid JSON"
        assert self._validator is not None
        error = jsonschema.exceptions.best_match(self._validator.iter_errors(document))
        if error is not None:
            where = "/".join(str(part) for part in error.absolute_path) or "(root)"
            return False, f"the output does not match the schema at {where}: {error.message}"[:MAX_REASON_CHARS]
        return True, "the output matches the schema"

    def _regex_present(self, subject: Subject) -> tuple[bool, str]:
        assert self._pattern is not None
        if self._pattern.search(self._text(subject)):
            return True, "the pattern is present"
        return False, "the pattern is absent"

    def _regex_absent(self, subject: Subject) -> tuple[bool, str]:
        present, _ = self._regex_present(subject)
        return (False, "the pattern is present") if present else (True, "the pattern is absent")

    def _length(self, subject: Subject) -> tuple[bool, str]:
        length = len(self._text(subject))
        low, high = self.config.min_chars, self.config.max_chars
        if low and length < low:
            return False, f"the output has {length} characters, fewer than {low}"
        if high and length > high:
            return False, f"the output has {length} characters, more than {high}"
        return True, f"the output has {length} characters"

    def _latency(self, subject: Subject) -> tuple[bool, str]:
        seconds, limit = subject.duration_seconds, self.config.max_seconds
        if seconds > limit:
            return False, f"the call took {seconds:g} s, more than {limit:g} s"
        return True, f"the call took {seconds:g} s"

    def _cost(self, subject: Subject) -> tuple[bool, str]:
        cost, limit = subject.cost, self.config.max_usd
        if cost is None:
            return True, "the call has no cost"
        if cost > limit:
            return False, f"the call cost {cost:g} USD, more than {limit:g} USD"
        return True, f"the call cost {cost:g} USD"
