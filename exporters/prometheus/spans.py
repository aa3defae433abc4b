"""What one span contributes to the GenAI metrics: its labels and the values it observes.

Only LLM calls count: spans with ``gen_ai.operation.name``, except the agent
and tool operations (``execute_tool``, ``invoke_agent``, ``create_agent``),
which are not calls to a model and whose durations span many calls. The model
label is the request model (what the caller chose, and what the semantic
conventions make conditionally required), or the response model when the span
has no request model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from collector.pdata import any_value, resource_attribute

OPERATION = "gen_ai.operation.name"
PROVIDER = "gen_ai.provider.name"
REQUEST_MODEL = "gen_ai.request.model"
RESPONSE_MODEL = "gen_ai.response.model"
INPUT_TOKENS = "gen_ai.usage.input_tokens"
OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
TIME_TO_FIRST_CHUNK = "gen_ai.response.time_to_first_chunk"
COST = "gen_ai.usage.cost"
ERROR_TYPE = "error.type"
TENANT = "tenant.id"
SERVICE_NAME = "service.name"
NOT_MODEL_CALLS = frozenset({"execute_tool", "invoke_agent", "create_agent"})
# The semantic conventions' value for an error whose type is not known.
OTHER_ERROR = "_OTHER"
NANOS_PER_SECOND = 1e9
_WANTED = frozenset(
    {
        OPERATION,
        PROVIDER,
        REQUEST_MODEL,
        RESPONSE_MODEL,
        INPUT_TOKENS,
        OUTPUT_TOKENS,
        TIME_TO_FIRST_CHUNK,
        COST,
        ERROR_TYPE,
        TENANT,
    }
)

# Label names in the order every family's label values are given.
# Longest label value kept: a model name or tenant is far shorter; a client's 100 KB one is cut, not repeated.
MAX_LABEL_CHARS = 256
LABEL_NAMES = ("gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_request_model", "service_name", "tenant_id")


@dataclass(frozen=True)
class CallFacts:
    """One LLM call's labels (in LABEL_NAMES order) and measurements; None where the span has none."""

    labels: tuple[str, ...]
    input_tokens: float | None
    output_tokens: float | None
    duration: float | None
    time_to_first_chunk: float | None
    cost: float | None
    error_type: str


def service_name(resource: Resource) -> str:
    return _text(resource_attribute(resource, SERVICE_NAME))


def call_facts(span: Span, service: str) -> CallFacts | None:
    """The facts of ``span`` when it is an LLM call, else None."""
    attributes: dict[str, Any] = {}
    for pair in span.attributes:
        if pair.key in _WANTED:
            attributes[pair.key] = any_value(pair.value)
    operation = _text(attributes.get(OPERATION))
    if not operation or operation in NOT_MODEL_CALLS:
        return None
    model = _text(attributes.get(REQUEST_MODEL)) or _text(attributes.get(RESPONSE_MODEL))
    labels = (operation, _text(attributes.get(PROVIDER)), model, service, _text(attributes.get(TENANT)))
    error_type = _text(attributes.get(ERROR_TYPE))
    if not error_type and span.status.code == Status.STATUS_CODE_ERROR:
        error_type = OTHER_ERROR
    duration = None
    if span.start_time_unix_nano and span.end_time_unix_nano >= span.start_time_unix_nano:
        duration = (span.end_time_unix_nano - span.start_time_unix_nano) / NANOS_PER_SECOND
    return CallFacts(
        labels=labels,
        input_tokens=_amount(attributes.get(INPUT_TOKENS)),
        output_tokens=_amount(attributes.get(OUTPUT_TOKENS)),
        duration=duration,
        time_to_first_chunk=_amount(attributes.get(TIME_TO_FIRST_CHUNK)),
        cost=_amount(attributes.get(COST)),
        error_type=error_type,
    )


def _text(value: Any) -> str:
    """A string attribute as a label value, cut to MAX_LABEL_CHARS: every series repeats it on every line."""
    return value[:MAX_LABEL_CHARS] if isinstance(value, str) else ""


def _amount(value: Any) -> float | None:
    """A finite non-negative number as a float; anything else (a string, a bool, a negative, NaN) is no value."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        return None
    return float(value)
