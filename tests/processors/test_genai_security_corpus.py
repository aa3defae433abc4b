"""The detectors against the labelled corpus in tests/data/security: precision and recall per detector.

Positives must be found (overlapping their labelled span), near misses must not
be, and ordinary chat messages must produce no finding at all. The table is
printed at the end of the test run.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from processors.genai_security.rules import BUILTIN_RULES
from processors.genai_security.scanner import Scanner

CORPUS = Path(__file__).resolve().parents[1] / "data" / "security" / "corpus.jsonl"
MIN_PRECISION = 0.85
MIN_RECALL = 0.8
REPORT: list[str] = []


def _entries() -> list[dict[str, Any]]:
    return [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="module")
def scores() -> dict[str, dict[str, int]]:
    scanner = Scanner(BUILTIN_RULES)
    counts: dict[str, dict[str, int]] = defaultdict(lambda: {"tp": 0, "fn": 0, "fp": 0})
    for entry in _entries():
        findings = scanner.scan(entry["text"], entry.get("role") or "user")
        expected_too = set(entry.get("also") or [])
        detector = entry["detector"]
        for finding in findings:
            if finding.rule_id in expected_too:
                continue
            if finding.rule_id == detector and entry["label"]:
                start, end = entry["span"]
                if finding.start < end and start < finding.end:
                    counts[detector]["tp"] += 1
                    continue
            counts[finding.rule_id]["fp"] += 1
        if detector is not None and entry["label"] and not any(f.rule_id == detector for f in findings):
            counts[detector]["fn"] += 1
    return counts


def test_ordinary_messages_produce_no_finding() -> None:
    scanner = Scanner(BUILTIN_RULES)
    noisy = [
        (entry["id"], [f.rule_id for f in scanner.scan(entry["text"], entry.get("role") or "user")])
        for entry in _entries()
        if entry["detector"] is None
    ]
    assert len(noisy) >= 40
    assert [item for item in noisy if item[1]] == []


def test_every_detector_meets_its_precision_and_recall(scores: dict[str, dict[str, int]]) -> None:
    REPORT.append(f"{'detector':<34} {'TP':>4} {'FN':>4} {'FP':>4} {'precision':>10} {'recall':>7}")
    below = []
    for detector in sorted(scores):
        tp, fn, fp = scores[detector]["tp"], scores[detector]["fn"], scores[detector]["fp"]
        precision = tp / (tp + fp) if tp + fp else 1.0
        recall = tp / (tp + fn) if tp + fn else 1.0
        REPORT.append(f"{detector:<34} {tp:>4} {fn:>4} {fp:>4} {precision:>10.2f} {recall:>7.2f}")
        if precision < MIN_PRECISION or recall < MIN_RECALL:
            below.append((detector, round(precision, 2), round(recall, 2)))
    assert below == []


def pytest_report_table() -> list[str]:
    """The table the test run prints (see tests/conftest.py's terminal summary)."""
    return REPORT
