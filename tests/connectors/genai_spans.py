"""A fixed set of GenAI spans, as the OpenTelemetry SDK's exporters send them, for the metrics the spans make.

Calls to a model of every kind the genai_metrics connector counts (inference with and without usage, by
modality, cached and reasoning tokens, streamed, failed with and without ``error.type``, embeddings, a
duplicate record), agent steps and tools, and spans that are not calls. The same spans went through the
prometheus exporter of the release before connectors; what it exposed is in tests/data/genai_metrics.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

START_NANOS = 1_700_000_000_000_000_000
NANOS = 1_000_000_000
TRACE_ID = 0x0102030405060708090A0B0C0D0E0F10
SCOPE = InstrumentationScope("tests.genai_spans", "1.0")


def _openai(model: str, **extra: Any) -> dict[str, Any]:
    return {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": model, **extra}


_USAGE = {
    "gen_ai.usage.input_tokens": 100,
    "gen_ai.usage.output_tokens": 1000,
    "gen_ai.usage.cache_read.input_tokens": 40,
    "gen_ai.usage.cache_write.input_tokens": 10,
    "gen_ai.usage.reasoning.output_tokens": 600,
    "gen_ai.usage.cost.amount": 0.25,
    "gen_ai.usage.cost.currency": "USD",
    "tenant.id": "team-a",
}
_MODAL = {
    "gen_ai.usage.input_tokens": 300,
    "gen_ai.usage.image.input_tokens": 200,
    "gen_ai.usage.text.input_tokens": 60,
    "gen_ai.usage.output_tokens": 4,
    "gen_ai.usage.cache_creation.input_tokens": 5,
    "gen_ai.response.time_to_first_chunk": 0.3,
    "tenant.id": "team-a",
}
_EMBEDDINGS = {
    "gen_ai.operation.name": "embeddings",
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "text-embedding-3-small",
    "gen_ai.usage.input_tokens": 8,
    "gen_ai.usage.cost.amount": 0.0001,
}
_NOT_CALLS = (
    "invoke_agent", "invoke_workflow", "handle_conversation_turn", "create_agent", "execute_tool", "plan",
    "retrieval", "search_memory", "create_memory", "apply_guardrail", "fetch_response",
)  # fmt: skip

# (service, attributes, seconds, error status)
SPANS: tuple[tuple[str, dict[str, Any], float, bool], ...] = (
    ("support-bot", _openai("gpt-4o", **_USAGE), 1.5, False),
    ("support-bot", _openai("gpt-4o", **_MODAL), 0.02, False),
    ("batch-job", _openai("gpt-4o", **{"error.type": "timeout"}), 30.0, True),
    ("batch-job", _openai("gpt-4o"), 2.0, True),
    ("batch-job", _openai("gpt-4o-mini"), 2.0, False),
    # v1.41.0's names: the cost attribute, no request model (the response model labels it).
    ("support-bot", _openai("gpt-4o", **{"gen_ai.usage.input_tokens": 4, "gen_ai.usage.cost": 0.5}), 0.5, False),
    (
        "support-bot",
        {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.response.model": "gpt-4o-mini-x"},
        0.5,
        False,
    ),
    ("support-bot", _EMBEDDINGS, 0.1, False),
    *(("support-bot", {"gen_ai.operation.name": op, "gen_ai.usage.input_tokens": 9}, 1.0, False) for op in _NOT_CALLS),
    ("support-bot", {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "search"}, 0.25, False),
    ("support-bot", {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "planner"}, 3.0, True),
    ("support-bot", {"http.method": "GET"}, 1.0, False),
    # The second record of one call (genai_dedup marked it): counted once, through the other.
    ("support-bot", _openai("gpt-4o", **{**_USAGE, "gen_ai.call.duplicate_of": "00000000000000aa"}), 1.5, False),
)


def genai_spans(spans: Sequence[tuple[str, dict[str, Any], float, bool]] = SPANS) -> list[ReadableSpan]:
    """``spans`` as finished SDK spans, one trace, fixed ids and times."""
    resources = {service: Resource.create({"service.name": service}) for service, *_ in spans}
    finished = []
    for i, (service, attributes, seconds, error) in enumerate(spans, start=1):
        context = SpanContext(TRACE_ID, i, is_remote=False, trace_flags=TraceFlags(TraceFlags.SAMPLED))
        finished.append(
            ReadableSpan(
                name=str(attributes.get("gen_ai.operation.name", "GET")),
                context=context,
                resource=resources[service],
                attributes=attributes,
                kind=SpanKind.CLIENT,
                instrumentation_scope=SCOPE,
                status=Status(StatusCode.ERROR) if error else Status(StatusCode.UNSET),
                start_time=START_NANOS,
                end_time=START_NANOS + int(seconds * NANOS),
            )
        )
    return finished
