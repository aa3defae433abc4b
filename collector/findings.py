"""The one shape every finding takes on a span, whichever processor raised it.

A finding is a ``gen_ai.security.finding`` span event (the name the proposed
GenAI security conventions give it) carrying a detector id, a category, a
severity and a confidence, plus whatever the detector adds (a location in the
content, a loop's pattern and cost). The span carries a summary: how many
findings it holds and the worst severity among them. Processors write findings
through this module and exporters (alerts, stores) read them through it, so
the shape is defined once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from opentelemetry.proto.trace.v1.trace_pb2 import Span

from collector.pdata import SpanAttributes, any_value, set_any_value

Severity = Literal["low", "medium", "high", "critical"]
SEVERITY_RANK: dict[str, int] = {"low": 1, "medium": 2, "high": 3, "critical": 4}

FINDING_EVENT = "gen_ai.security.finding"
DETECTOR = "gen_ai.security.detector.id"
CATEGORY = "gen_ai.security.category"
SEVERITY = "gen_ai.security.severity"
CONFIDENCE = "gen_ai.security.confidence"
FINDINGS_COUNT = "gen_ai.security.findings.count"
FINDINGS_MAX_SEVERITY = "gen_ai.security.findings.max_severity"


def finding_event(
    detector: str, category: str, severity: str, confidence: float, details: Mapping[str, Any] | None = None
) -> Span.Event:
    """A finding event (its time is the caller's to set); ``details`` are further attributes."""
    event = Span.Event(name=FINDING_EVENT)
    for key, value in ((DETECTOR, detector), (CATEGORY, category), (SEVERITY, severity), (CONFIDENCE, confidence)):
        pair = event.attributes.add()
        pair.key = key
        set_any_value(pair.value, value)
    for key, value in (details or {}).items():
        pair = event.attributes.add()
        pair.key = key
        set_any_value(pair.value, value)
    return event


def add_to_summary(attributes: SpanAttributes, count: int, worst: str) -> None:
    """Count ``count`` more findings on the span, ``worst`` the highest severity among them.

    Adds to what an earlier processor recorded: a span can hold security findings and loop findings.
    """
    previous = attributes.get(FINDINGS_COUNT)
    attributes.set(FINDINGS_COUNT, (previous if isinstance(previous, int) else 0) + count)
    before = attributes.get(FINDINGS_MAX_SEVERITY)
    if SEVERITY_RANK.get(worst, 0) > SEVERITY_RANK.get(str(before), 0):
        attributes.set(FINDINGS_MAX_SEVERITY, worst)


def worst_severity(severities: list[str]) -> str:
    return max(severities, key=lambda severity: SEVERITY_RANK.get(severity, 0))


def findings_on(span: Span) -> list[dict[str, Any]]:
    """The attributes of every finding event on ``span``, as plain values."""
    return [
        {pair.key: any_value(pair.value) for pair in event.attributes}
        for event in span.events
        if event.name == FINDING_EVENT
    ]
