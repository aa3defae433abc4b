"""The outcome of evaluating one subject on one dimension: a score, a label, or an error with its reason."""

from __future__ import annotations

from dataclasses import dataclass

# error.type values (CONTRACTS §2): the judge's answer could not be read, it did not answer in time, it failed.
UNPARSEABLE_ANSWER = "unparseable_answer"
TIMEOUT = "timeout"
JUDGE_ERROR = "judge_error"


@dataclass(frozen=True)
class Outcome:
    """A score and/or label with an explanation, or an ``error_type`` with the reason in ``explanation``."""

    evaluator: str  # judge:<model> or rule:<rule type>
    score: float | None = None
    label: str | None = None
    explanation: str = ""
    passed: bool | None = None
    error_type: str = ""

    @property
    def failed(self) -> bool:
        return bool(self.error_type)
