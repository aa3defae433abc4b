"""The set pass's loosened patterns: wide ranges opened, anchors gone, everything else as written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import re2

from processors.genai_security.prefilter import loosened
from processors.genai_security.rules import BUILTIN_RULES


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        (r"a[^\n]{0,200}b", r"a[^\n]{0,}b"),
        (r"a{2,5}", r"a{2,5}"),  # narrow ranges stay
        (r"x{3}", r"x{3}"),
        (r"^key=\w+$", r"key=\w+"),
        (r"(?m:^)\[x\]", r"(?m:)\[x\]"),
        (r"\Afoo\z", r"foo"),
        (r"[\^$]{0,100}", r"[\^$]{0,}"),  # inside a class ^ and $ are characters
        (r"[]{0,99}]x", r"[]{0,99}]x"),  # a ] first in a class is a character, so the class runs on
        (r"[[:alpha:]]{1,50}", r"[[:alpha:]]{1,}"),
        (r"\Q{0,100}^\E", r"\Q{0,100}^\E"),  # a literal run is copied as it is
        (r"\x{200B}{0,30}\p{Greek}", r"\x{200B}{0,}\p{Greek}"),
        (r"a\{0,100}", r"a\{0,100}"),  # an escaped brace is no repetition
    ],
)
def test_loosened(pattern: str, expected: str) -> None:
    assert loosened(pattern) == expected


def test_every_built_in_loosens_to_a_valid_pattern_that_matches_more() -> None:
    # Every text of the labelled corpus a built-in matches, its loosened copy matches too.
    corpus = Path(__file__).resolve().parents[1] / "data" / "security" / "corpus.jsonl"
    texts = [json.loads(line)["text"] for line in corpus.read_text(encoding="utf-8").splitlines() if line.strip()]
    matched_rules = set()
    for rule in BUILTIN_RULES:
        wider = re2.compile(loosened(rule.pattern.pattern))
        for text in texts:
            if rule.pattern.search(text):
                matched_rules.add(rule.id)
                assert wider.search(text), (rule.id, text)
    assert matched_rules == {rule.id for rule in BUILTIN_RULES}  # the corpus exercises every rule
