"""What one span contributes to the GenAI metrics: its attributes and the values it observes.

Calls to a model are spans whose ``gen_ai.operation.name`` is in
``collector.semconv.MODEL_CALL_OPERATIONS``, the allow-list the ClickHouse
tables share (inference and embeddings; not agents, workflows, tools, planning,
retrieval, memory or guardrails, whose spans enclose or accompany the calls),
and not a span marked ``gen_ai.call.duplicate_of`` (the second record of a call,
see genai_dedup). Agent invocations (``invoke_agent``, ``invoke_workflow``,
``handle_conversation_turn``) and tool executions give their durations only.
The model label is the request model (what the caller chose, and what the
semantic conventions make conditionally required), or the response model when
the span has no request model.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status, TracesData

from collector import semconv
from collector.pdata import any_value, resource_attribute

NANOS_PER_SECOND = 1e9
_CACHE_WRITE_NAMES = (
    semconv.USAGE_CACHE_WRITE_INPUT_TOKENS,
    *semconv.previous_names(semconv.USAGE_CACHE_WRITE_INPUT_TOKENS),
)
_COST_NAMES = (semconv.USAGE_COST_AMOUNT, *semconv.previous_names(semconv.USAGE_COST_AMOUNT))
_WANTED = frozenset(
    {
        semconv.OPERATION_NAME,
        semconv.PROVIDER_NAME,
        semconv.REQUEST_MODEL,
        semconv.RESPONSE_MODEL,
        semconv.USAGE_INPUT_TOKENS,
        semconv.USAGE_OUTPUT_TOKENS,
        semconv.USAGE_CACHE_READ_INPUT_TOKENS,
        *_CACHE_WRITE_NAMES,
        semconv.USAGE_REASONING_OUTPUT_TOKENS,
        *semconv.USAGE_INPUT_TOKENS_BY_MODALITY.values(),
        *semconv.USAGE_OUTPUT_TOKENS_BY_MODALITY.values(),
        semconv.RESPONSE_TIME_TO_FIRST_CHUNK,
        *_COST_NAMES,
        semconv.USAGE_COST_CURRENCY,
        semconv.ERROR_TYPE,
        semconv.TENANT_ID,
        semconv.CALL_DUPLICATE_OF,
        semconv.AGENT_NAME,
        semconv.TOOL_NAME,
    }
)

# Attribute names in the order every family's attribute values are given.
# Longest label value kept: a model name or tenant is far shorter; a client's 100 KB one is cut, not repeated.
MAX_LABEL_CHARS = 256
LABEL_NAMES = (
    semconv.OPERATION_NAME, semconv.PROVIDER_NAME, semconv.REQUEST_MODEL, semconv.SERVICE_NAME, semconv.TENANT_ID,
)  # fmt: skip
# The attributes of agent invocations and tool executions, in the order StepFacts gives them.
STEP_LABEL_NAMES = (
    semconv.OPERATION_NAME, semconv.AGENT_NAME, semconv.TOOL_NAME, semconv.SERVICE_NAME, semconv.TENANT_ID,
)  # fmt: skip


@dataclass(frozen=True)
class CallFacts:
    """One model call's labels (in LABEL_NAMES order) and measurements; None where the span has none."""

    labels: tuple[str, ...]
    inference: bool  # an inference operation; else embeddings
    input_tokens: float | None
    output_tokens: float | None
    cache_read_tokens: float | None
    cache_write_tokens: float | None
    reasoning_tokens: float | None
    duration: float | None
    time_to_first_chunk: float | None
    cost: float | None
    cost_currency: str
    error_type: str
    # Tokens by gen_ai.token.modality, adding up to the totals ("unknown" holds what no modality claims).
    input_by_modality: dict[str, float] = field(default_factory=dict)
    output_by_modality: dict[str, float] = field(default_factory=dict)
    # The span's trace id and span id: which span these are, should the span be marked a duplicate later.
    key: bytes = b""


@dataclass(frozen=True)
class StepFacts:
    """An agent invocation (agent, workflow, conversation turn) or a tool execution: its labels and duration."""

    labels: tuple[str, ...]  # in STEP_LABEL_NAMES order
    tool: bool
    duration: float | None
    error_type: str


def service_name(resource: Resource) -> str:
    return _text(resource_attribute(resource, semconv.SERVICE_NAME))


def span_facts(span: Span, service: str) -> CallFacts | StepFacts | None:
    """What ``span`` adds to the metrics: a call to a model, an agent step, or nothing."""
    attributes: dict[str, Any] = {}
    for pair in span.attributes:
        if pair.key in _WANTED:
            attributes[pair.key] = any_value(pair.value)
    operation = _text(attributes.get(semconv.OPERATION_NAME))
    if semconv.CALL_DUPLICATE_OF in attributes:
        return None
    if semconv.is_model_call(operation):
        return _call_facts(span, service, operation, attributes)
    tool = operation == semconv.EXECUTE_TOOL
    if tool or operation in semconv.INVOCATION_OPERATIONS:
        tenant = _text(attributes.get(semconv.TENANT_ID))
        agent, tool_name = _text(attributes.get(semconv.AGENT_NAME)), _text(attributes.get(semconv.TOOL_NAME))
        labels = (operation, agent, tool_name, service, tenant)
        return StepFacts(labels, tool, _duration(span), _error_type(span, attributes))
    return None


def batch_facts(traces: TracesData) -> Iterator[CallFacts | StepFacts]:
    """What every span of ``traces`` adds to the metrics, in order."""
    for resource_spans in traces.resource_spans:
        service = service_name(resource_spans.resource)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                facts = span_facts(span, service)
                if facts is not None:
                    yield facts


def call_facts(span: Span, service: str) -> CallFacts | None:
    """The facts of ``span`` when it is a call to a model counted here, else None."""
    facts = span_facts(span, service)
    return facts if isinstance(facts, CallFacts) else None


def _call_facts(span: Span, service: str, operation: str, attributes: dict[str, Any]) -> CallFacts:
    model = _text(attributes.get(semconv.REQUEST_MODEL)) or _text(attributes.get(semconv.RESPONSE_MODEL))
    labels = (
        operation,
        _text(attributes.get(semconv.PROVIDER_NAME)),
        model,
        service,
        _text(attributes.get(semconv.TENANT_ID)),
    )
    input_tokens = _amount(attributes.get(semconv.USAGE_INPUT_TOKENS))
    output_tokens = _amount(attributes.get(semconv.USAGE_OUTPUT_TOKENS))
    return CallFacts(
        labels=labels,
        inference=operation in semconv.INFERENCE_OPERATIONS,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cache_read_tokens=_amount(attributes.get(semconv.USAGE_CACHE_READ_INPUT_TOKENS)),
        cache_write_tokens=_first_amount(attributes, _CACHE_WRITE_NAMES),
        reasoning_tokens=_amount(attributes.get(semconv.USAGE_REASONING_OUTPUT_TOKENS)),
        duration=_duration(span),
        time_to_first_chunk=_amount(attributes.get(semconv.RESPONSE_TIME_TO_FIRST_CHUNK)),
        cost=_first_amount(attributes, _COST_NAMES),
        cost_currency=_text(attributes.get(semconv.USAGE_COST_CURRENCY)) or semconv.COST_CURRENCY_USD,
        error_type=_error_type(span, attributes),
        input_by_modality=_by_modality(attributes, input_tokens, semconv.USAGE_INPUT_TOKENS_BY_MODALITY),
        output_by_modality=_by_modality(attributes, output_tokens, semconv.USAGE_OUTPUT_TOKENS_BY_MODALITY),
        key=span.trace_id + span.span_id,
    )


def _duration(span: Span) -> float | None:
    if span.start_time_unix_nano and span.end_time_unix_nano >= span.start_time_unix_nano:
        return (span.end_time_unix_nano - span.start_time_unix_nano) / NANOS_PER_SECOND
    return None


def _error_type(span: Span, attributes: dict[str, Any]) -> str:
    """The span's ``error.type``; ``_OTHER`` for an error status without one; empty for success."""
    error_type = _text(attributes.get(semconv.ERROR_TYPE))
    if not error_type and span.status.code == Status.STATUS_CODE_ERROR:
        return semconv.ERROR_OTHER
    return error_type


def _by_modality(attributes: dict[str, Any], total: float | None, names: dict[str, str]) -> dict[str, float]:
    """``total`` split by the span's per-modality counts; what they leave (or all of it) is ``unknown``."""
    if total is None:
        return {}
    parts = {modality: value for modality, name in names.items() if (value := _amount(attributes.get(name)))}
    if sum(parts.values()) > total:  # parts that do not fit the total are not trusted
        parts = {}
    rest = total - sum(parts.values())
    if rest or not parts:
        parts[semconv.TOKEN_MODALITY_UNKNOWN] = rest
    return parts


def _first_amount(attributes: dict[str, Any], names: tuple[str, ...]) -> float | None:
    for name in names:
        if name in attributes:
            return _amount(attributes[name])
    return None


def _text(value: Any) -> str:
    """A string attribute as a label value, cut to MAX_LABEL_CHARS: every series repeats it on every line."""
    return value[:MAX_LABEL_CHARS] if isinstance(value, str) else ""


def _amount(value: Any) -> float | None:
    """A finite non-negative number as a float; anything else (a string, a bool, a negative, NaN) is no value."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        return None
    return float(value)
