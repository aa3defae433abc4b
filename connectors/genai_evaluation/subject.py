"""What an evaluation looks at: one call (a span) or one agent run (its span and its steps), as plain values.

A subject is made the same way from a span as it passes (``from_span``) and from a row the store
kept (``from_row``): attributes as the store's string map holds them, so a backfill over stored calls
sees exactly what the connector saw live. Message content is read from the conventions'
``gen_ai.input.messages`` / ``gen_ai.output.messages`` / ``gen_ai.system_instructions`` (JSON parts).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from collector import semconv
from collector.findings import FINDING_EVENT
from collector.jsonvalues import parse_json
from exporters.clickhouse.rendering import attributes_map

EVALUATOR_CALL = semconv.EVALUATOR_CALL
TRUNCATED = " [...]"
NS_PER_SECOND = 1_000_000_000


@dataclass(frozen=True)
class Subject:
    """One evaluated span with what the dimensions read of it; ``steps`` are an agent run's other spans."""

    trace_id: bytes
    span_id: bytes
    name: str
    start_ns: int
    end_ns: int
    attributes: Mapping[str, str]
    resource: Mapping[str, str]
    failed: bool = False
    findings: int = 0
    steps: tuple[Subject, ...] = field(default=(), compare=False)

    @classmethod
    def from_span(cls, resource: Resource, span: Span) -> Subject:
        return cls(
            trace_id=span.trace_id,
            span_id=span.span_id,
            name=span.name,
            start_ns=span.start_time_unix_nano,
            end_ns=span.end_time_unix_nano,
            attributes=attributes_map(span.attributes),
            resource=attributes_map(resource.attributes),
            failed=span.status.code == Status.STATUS_CODE_ERROR,
            findings=sum(1 for event in span.events if event.name == FINDING_EVENT),
        )

    @classmethod
    def from_row(
        cls,
        trace_id_hex: str,
        span_id_hex: str,
        name: str,
        start_ns: int,
        duration_ns: int,
        attributes: Mapping[str, str],
        resource: Mapping[str, str],
        status_code: str,
        event_names: Sequence[str],
    ) -> Subject:
        """A subject from an otel_traces row (the clickhouseexporter's columns)."""
        return cls(
            trace_id=bytes.fromhex(trace_id_hex),
            span_id=bytes.fromhex(span_id_hex),
            name=name,
            start_ns=start_ns,
            end_ns=start_ns + duration_ns,
            attributes=dict(attributes),
            resource=dict(resource),
            failed=status_code == "Error",
            findings=sum(1 for event in event_names if event == FINDING_EVENT),
        )

    def with_steps(self, steps: Iterable[Subject]) -> Subject:
        return dataclasses.replace(self, steps=tuple(steps))

    # ---- what selection and records read

    @property
    def service(self) -> str:
        return self.resource.get(semconv.SERVICE_NAME, "")

    @property
    def operation(self) -> str:
        return self.attributes.get(semconv.OPERATION_NAME, "")

    @property
    def model(self) -> str:
        return self.attributes.get(semconv.RESPONSE_MODEL) or self.attributes.get(semconv.REQUEST_MODEL, "")

    @property
    def models(self) -> tuple[str, ...]:
        """The model asked for and the model that answered (often a dated name): a filter may name either."""
        return tuple(
            name
            for name in (self.attributes.get(semconv.REQUEST_MODEL), self.attributes.get(semconv.RESPONSE_MODEL))
            if name
        )

    @property
    def tenant(self) -> str:
        return self.attributes.get(semconv.TENANT_ID) or self.resource.get(semconv.TENANT_ID, "")

    @property
    def is_evaluator_call(self) -> bool:
        return self.attributes.get(EVALUATOR_CALL) == "true"

    @property
    def duration_seconds(self) -> float:
        return max(self.end_ns - self.start_ns, 0) / NS_PER_SECOND

    @property
    def cost(self) -> float | None:
        text = self.attributes.get(semconv.USAGE_COST_AMOUNT)
        try:
            return float(text) if text else None
        except ValueError:
            return None

    # ---- what prompts and rules read

    def input_text(self, limit: int) -> str:
        return _cut(_texts(self.attributes.get(semconv.INPUT_MESSAGES), roles=("user",)), limit)

    def output_text(self, limit: int) -> str:
        return _cut(_texts(self.attributes.get(semconv.OUTPUT_MESSAGES), roles=("assistant",)), limit)

    def system_text(self, limit: int) -> str:
        raw = self.attributes.get(semconv.SYSTEM_INSTRUCTIONS)
        parts = parse_json(raw)
        text = "\n".join(_part_texts(parts)) if isinstance(parts, list) else (raw or "")
        return _cut(text + "\n" + _texts(self.attributes.get(semconv.INPUT_MESSAGES), roles=("system",)), limit)

    def tool_results_text(self, limit: int) -> str:
        results = [_texts(self.attributes.get(semconv.INPUT_MESSAGES), roles=("tool",), kinds=("tool_call_response",))]
        results += [step.attributes.get(semconv.TOOL_CALL_RESULT, "") for step in self.steps]
        return _cut("\n".join(text for text in results if text), limit)

    def steps_text(self, limit: int) -> str:
        lines = []
        for number, step in enumerate(sorted(self.steps, key=lambda s: s.start_ns), start=1):
            if step.operation == semconv.EXECUTE_TOOL:
                name = step.attributes.get(semconv.TOOL_NAME, "?")
                arguments = step.attributes.get(semconv.TOOL_CALL_ARGUMENTS, "")
                result = step.attributes.get(semconv.TOOL_CALL_RESULT, "")
                lines.append(f"{number}. tool {name}({arguments}) -> {result}{' [failed]' if step.failed else ''}")
            else:
                lines.append(f"{number}. {step.operation or step.name} {step.model}: {step.output_text(limit)}")
        return _cut("\n".join(lines), limit)

    def evaluated_text(self, limit: int) -> str:
        """What the rules check: the output's text."""
        return self.output_text(limit)


def _cut(text: str, limit: int) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[:limit] + TRUNCATED


def _texts(raw: str | None, roles: tuple[str, ...], kinds: tuple[str, ...] = ("text",)) -> str:
    messages = parse_json(raw)
    if not isinstance(messages, list):
        return ""
    texts = []
    for message in messages:
        if isinstance(message, dict) and message.get("role") in roles:
            texts.extend(_part_texts(message.get("parts"), kinds))
    return "\n".join(texts)


def _part_texts(parts: Any, kinds: tuple[str, ...] = ("text",)) -> list[str]:
    if not isinstance(parts, list):
        return []
    texts = []
    for part in parts:
        if not isinstance(part, dict) or part.get("type") not in kinds:
            continue
        value = part.get("content") if part.get("type") == "text" else part.get("response")
        texts.append(value if isinstance(value, str) else str(value) if value is not None else "")
    return texts
