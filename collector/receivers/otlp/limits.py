"""Enforce the receiver's ``limits``: messages per request, and attributes, events and links per span.

A request with too many messages is refused whole (``TooManyMessages``): for
every signal, its resources, scopes and items (spans, log records, metrics) are
bounded by the three ``max_*_per_request`` settings. A span with too many
attributes, events or links is invalid on its own: it is cut out of the request
and reported in the OTLP partial-success response, while the other spans go on.
Log records and data points have no limits of their own: the request's bound them.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from opentelemetry.proto.trace.v1.trace_pb2 import Span

from collector.receivers.otlp import wire
from collector.receivers.otlp.codec import PROTOBUF, BodyTooLarge
from collector.receivers.otlp.config import RequestLimits
from collector.signals import LogsData, OtlpData, Signal, TracesData, signal_of

# What each signal's three levels are called, in a refusal's message.
LEVELS: dict[Signal, tuple[str, str, str]] = {
    "traces": wire.TRACES_LEVELS,
    "logs": ("resource logs", "scope logs", "log records"),
    "metrics": ("resource metrics", "scope metrics", "metrics"),
}
# The settings bounding the three levels, for every signal.
LEVEL_SETTINGS = ("max_resource_spans_per_request", "max_scope_spans_per_request", "max_spans_per_request")


class TooManyMessages(BodyTooLarge):
    """The request holds more resource spans, scope spans or spans than the receiver takes in one request."""


@dataclass(frozen=True)
class Rejection:
    """Spans cut out of a request for breaking a per-span limit."""

    spans: int
    message: str
    by_limit: dict[str, int]  # limit setting name -> spans rejected for it


def check_encoded_counts(body: bytes, content_type: str, limits: RequestLimits, signal: Signal = "traces") -> None:
    """Refuse a protobuf ``body`` of ``signal`` with too many messages before it is decoded (see ``wire``)."""
    smallest = min(
        limits.max_resource_spans_per_request, limits.max_scope_spans_per_request, limits.max_spans_per_request
    )
    if content_type != PROTOBUF or not wire.could_exceed(len(body), smallest):
        return
    try:
        wire.check_counts(
            body,
            limits.max_resource_spans_per_request,
            limits.max_scope_spans_per_request,
            limits.max_spans_per_request,
            LEVELS[signal],
        )
    except wire.CountExceeded as exc:
        raise _too_many(LEVELS[signal].index(exc.kind), exc.kind, exc.limit) from None


def check_counts(data: OtlpData, limits: RequestLimits) -> None:
    """Refuse a decoded request with too many messages (the check for JSON, and the exact one for protobuf)."""
    levels = LEVELS[signal_of(data)]
    for level, count in enumerate(_level_counts(data)):
        limit = getattr(limits, LEVEL_SETTINGS[level])
        if count > limit:
            raise _too_many(level, levels[level], limit)


def _level_counts(data: OtlpData) -> tuple[int, int, int]:
    """How many resources, scopes and items (spans, log records, metrics) ``data`` holds."""
    if isinstance(data, TracesData):
        scopes = [ss.spans for rs in data.resource_spans for ss in rs.scope_spans]
        return len(data.resource_spans), len(scopes), sum(map(len, scopes))
    if isinstance(data, LogsData):
        logs = [sl.log_records for rl in data.resource_logs for sl in rl.scope_logs]
        return len(data.resource_logs), len(logs), sum(map(len, logs))
    metrics = [sm.metrics for rm in data.resource_metrics for sm in rm.scope_metrics]
    return len(data.resource_metrics), len(metrics), sum(map(len, metrics))


def _too_many(level: int, kind: str, limit: int) -> TooManyMessages:
    return TooManyMessages(f"request holds more than {limit} {kind} ({LEVEL_SETTINGS[level]})")


def reject_oversized_spans(traces: TracesData, limits: RequestLimits) -> Rejection | None:
    """Remove every span over a per-span limit from ``traces``, in place; None when every span is within them."""
    by_limit: Counter[str] = Counter()
    for resource_spans in traces.resource_spans:
        for scope_spans in resource_spans.scope_spans:
            spans = scope_spans.spans
            broken = [(i, reason) for i, span in enumerate(spans) if (reason := _broken_limit(span, limits))]
            # Backwards, so the earlier indices stay valid while deleting.
            for index, reason in reversed(broken):
                del spans[index]
                by_limit[reason] += 1
    if not by_limit:
        return None
    total = sum(by_limit.values())
    parts = ", ".join(f"{count} over {name} ({getattr(limits, name)})" for name, count in sorted(by_limit.items()))
    return Rejection(total, f"{total} span(s) rejected as invalid: {parts}", dict(by_limit))


def _broken_limit(span: Span, limits: RequestLimits) -> str:
    """The name of the first per-span limit ``span`` breaks, or ""."""
    if len(span.attributes) > limits.max_attributes_per_span:
        return "max_attributes_per_span"
    if len(span.events) > limits.max_events_per_span:
        return "max_events_per_span"
    if len(span.links) > limits.max_links_per_span:
        return "max_links_per_span"
    return ""
