"""Reading a judge's answer: a JSON object (structured output or JSON in text), or text with a score line.

Anything else (no score, a score off the rubric's scale, a label not among its labels) is an
``unparseable_answer`` with the reason, never a score.
"""

from __future__ import annotations

import re
from typing import Any

from collector.jsonvalues import parse_json
from connectors.genai_evaluation.result import UNPARSEABLE_ANSWER, Outcome
from connectors.genai_evaluation.rubrics import Rubric

_SCORE_LINE = re.compile(r"(?im)^\W*score\W*[:=]\s*(-?\d+(?:\.\d+)?)")
_LABEL_LINE = re.compile(r"(?im)^\W*label\W*[:=]\s*\"?([\w-]+)")
_EXPLANATION_LINE = re.compile(r"(?im)^\W*(?:explanation|reason(?:ing)?)\W*[:=]\s*(.+)$")
# How much of an unreadable answer is quoted in the error's explanation.
QUOTED_CHARS = 200


def answer_schema(rubric: Rubric) -> dict[str, Any]:
    """The JSON schema the judge's answer follows (strict: every property required, nothing else)."""
    verdict: dict[str, Any] = (
        {"label": {"type": "string", "enum": list(rubric.labels)}}
        if rubric.labels
        else {"score": {"type": "number", "minimum": rubric.scale_min, "maximum": rubric.scale_max}}
    )
    properties = {"explanation": {"type": "string"}, **verdict}
    return {"type": "object", "properties": properties, "required": list(properties), "additionalProperties": False}


def answer_instructions(rubric: Rubric) -> str:
    """How to answer, for the system prompt."""
    if rubric.labels:
        verdict = f'"label": one of {", ".join(rubric.labels)}'
    else:
        verdict = f'"score": a number from {rubric.scale_min:g} to {rubric.scale_max:g}'
    return (
        "You are an impartial evaluator of an AI system's output. Judge only what is asked. "
        f'Answer with a JSON object with "explanation": one or two sentences, and {verdict}.'
    )


def read_answer(answer: Any, rubric: Rubric, evaluator: str) -> Outcome:
    """The outcome an answer gives: a dict (tool input, parsed JSON) or the text the model wrote."""
    original = answer
    if isinstance(answer, str):
        parsed = _json_in_text(answer)
        answer = parsed if parsed is not None else _lines(answer)
    if not isinstance(answer, dict):
        return _unparseable(evaluator, "the answer holds no JSON object and no score line", original)
    explanation = answer.get("explanation")
    explanation = explanation if isinstance(explanation, str) else ""
    if rubric.labels:
        label = answer.get("label")
        if not isinstance(label, str) or label not in rubric.labels:
            return _unparseable(evaluator, f"label {label!r} is not one of {', '.join(rubric.labels)}", answer)
        return Outcome(evaluator, label=label, explanation=explanation, passed=rubric.passed(None, label))
    score = answer.get("score")
    if isinstance(score, str):
        score = _number(score)
    if isinstance(score, bool) or not isinstance(score, int | float):
        return _unparseable(evaluator, "the answer has no numeric score", answer)
    if not rubric.scale_min <= score <= rubric.scale_max:
        return _unparseable(evaluator, f"score {score:g} is outside {rubric.scale_min:g}..{rubric.scale_max:g}", answer)
    return Outcome(evaluator, score=float(score), explanation=explanation, passed=rubric.passed(float(score), None))


def _json_in_text(text: str) -> Any:
    stripped = text.strip()
    if stripped.startswith("```"):  # a fenced block: ```json ... ```
        stripped = stripped.strip("`").removeprefix("json").strip()
    parsed = parse_json(stripped)
    if isinstance(parsed, dict):
        return parsed
    start, end = stripped.find("{"), stripped.rfind("}")
    if 0 <= start < end:
        parsed = parse_json(stripped[start : end + 1])
        if isinstance(parsed, dict):
            return parsed
    return None


def _lines(text: str) -> dict[str, Any] | None:
    """``Score: 4`` / ``Label: harmless`` and ``Explanation: ...`` lines, as free-text answers give them."""
    score, label = _SCORE_LINE.search(text), _LABEL_LINE.search(text)
    if score is None and label is None:
        return None
    found: dict[str, Any] = {}
    if score is not None:
        found["score"] = float(score.group(1))
    if label is not None:
        found["label"] = label.group(1)
    explanation = _EXPLANATION_LINE.search(text)
    found["explanation"] = explanation.group(1).strip() if explanation else ""
    return found


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _unparseable(evaluator: str, reason: str, answer: Any) -> Outcome:
    quoted = (answer if isinstance(answer, str) else repr(answer))[:QUOTED_CHARS]
    return Outcome(evaluator, explanation=f"{reason}: {quoted}", error_type=UNPARSEABLE_ANSWER)
