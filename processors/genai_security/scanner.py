"""Find what the rules match in one text, and leak checks that need two texts (system prompt in an output)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

import re2

from processors.genai_security.rules import PATTERN_OPTIONS, Rule

# A system prompt sentence this long, repeated in an output, is a leak rather than a coincidence.
LEAK_MIN_CHARS = 40
_SENTENCE = re.compile(r"[^.!?\n]+")


@dataclass(frozen=True)
class Finding:
    rule_id: str
    category: str
    severity: str
    confidence: float
    start: int
    end: int


class Scanner:
    """Every rule, with one RE2 set over all their patterns in front.

    Most text holds no finding: one linear pass of the set over it says which
    rules can match at all, and only those run to find where (a text with no
    match costs one pass, not one per rule).
    """

    def __init__(self, rules: Iterable[Rule]) -> None:
        self.rules = tuple(rules)
        self._set = re2.Set.SearchSet(PATTERN_OPTIONS)
        for rule in self.rules:
            self._set.Add(rule.pattern.pattern)
        self._set.Compile()

    def scan(self, text: str, role: str) -> list[Finding]:
        """Every finding in ``text``; a match overlapping an earlier rule's finding is dropped (rules run in order)."""
        hits = self._set.Match(text)
        if not hits:
            return []
        findings: list[Finding] = []
        for index in sorted(hits):
            rule = self.rules[index]
            if rule.roles is not None and role not in rule.roles:
                continue
            grouped = rule.pattern.groups > 0
            for match in rule.pattern.finditer(text):
                start, end = match.span(1) if grouped else match.span()
                if start < 0 or (rule.check is not None and not rule.check(text[start:end])):
                    continue
                if any(start < other.end and other.start < end for other in findings):
                    continue
                findings.append(Finding(rule.id, rule.category, rule.severity, rule.confidence, start, end))
        return findings


def system_prompt_leak(output: str, system_texts: Iterable[str]) -> Finding | None:
    """The first long sentence of the system instructions that the output repeats verbatim."""
    for system in system_texts:
        for sentence in _SENTENCE.finditer(system):
            text = sentence.group().strip()
            if len(text) < LEAK_MIN_CHARS:
                continue
            start = output.find(text)
            if start >= 0:
                return Finding("system_prompt_leak", "prompt_injection", "high", 0.9, start, start + len(text))
    return None
