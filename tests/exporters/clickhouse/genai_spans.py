"""A small, known set of GenAI spans for the GenAI tables and docs/queries.sql tests.

Two traces of LLM calls an hour ago, shaped as the shipped pipeline leaves them:
trace A (support-agent, tenant acme) makes three gpt-4o calls, one stream, one
with an agent-loop finding, plus a tool span and an embeddings call with no
known price; trace B (research-agent, tenant globex) makes one failing
claude-sonnet-4-5 stream with a secret finding, its attributes under the
previous conventions' names (v1.41.0's cache write, the former gen_ai.usage.cost).
"""

from __future__ import annotations

import time
from typing import Any

from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status, TracesData

from collector.findings import FINDINGS_COUNT, FINDINGS_MAX_SEVERITY, finding_event
from collector.pdata import set_any_value

SECONDS = 1_000_000_000
SECONDS_PER_HOUR = 3_600
TRACE_A = bytes.fromhex("aa" * 16)
TRACE_B = bytes.fromhex("bb" * 16)


def an_hour_ago() -> int:
    """The start of the previous hour in nanoseconds: every span falls in one hour and one day."""
    now = int(time.time())
    return (now - now % SECONDS_PER_HOUR - SECONDS_PER_HOUR) * SECONDS


def _span(spans: Any, trace: bytes, number: int, start: int, seconds: float, attributes: dict[str, Any]) -> Span:
    span: Span = spans.add(
        trace_id=trace,
        span_id=bytes([number]) * 8,
        name=f"{attributes.get('gen_ai.operation.name', 'op')} {attributes.get('gen_ai.request.model', '')}".strip(),
        kind=Span.SPAN_KIND_CLIENT,
        start_time_unix_nano=start,
        end_time_unix_nano=start + int(seconds * SECONDS),
    )
    for key, value in attributes.items():
        set_any_value(span.attributes.add(key=key).value, value)
    return span


def _resource(traces: TracesData, service: str) -> Any:
    resource_spans = traces.resource_spans.add()
    resource_spans.resource.attributes.add(key="service.name").value.string_value = service
    return resource_spans.scope_spans.add().spans


def _call(
    model: str, provider: str, tenant: str, conversation: str, cost: float | None, **extra: Any
) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": provider,
        "gen_ai.request.model": model,
        "gen_ai.response.model": f"{model}-2025-01-01",
        "gen_ai.usage.input_tokens": 1000,
        "gen_ai.usage.output_tokens": 100,
        "gen_ai.response.finish_reasons": ["stop"],
        "gen_ai.conversation.id": conversation,
        "tenant.id": tenant,
    }
    if cost is not None:
        attributes["gen_ai.usage.cost.amount"] = cost
        attributes["gen_ai.usage.cost.currency"] = "USD"
        attributes["gen_ai.usage.cost.source"] = "local"
    attributes.update(extra)
    return attributes


def previous_names(attributes: dict[str, Any]) -> dict[str, Any]:
    """``attributes`` as a v1.41.0 emitter and an older genai_cost named them."""
    renamed = {"gen_ai.usage.cost.amount": "gen_ai.usage.cost"}
    previous = {
        renamed.get(key, key): value for key, value in attributes.items() if key != "gen_ai.usage.cost.currency"
    }
    if previous.get("gen_ai.usage.cost.source") == "local":
        previous["gen_ai.usage.cost.source"] = "computed"
    return previous


def genai_traces(start: int) -> TracesData:
    """The two traces described above, every span starting at ``start`` (ns) or a second or so after."""
    traces = TracesData()
    support = _resource(traces, "support-agent")
    _span(
        support,
        TRACE_A,
        1,
        start,
        1.0,
        _call("gpt-4o", "openai", "acme", "conv-1", 0.01, **{"gen_ai.usage.cache_read.input_tokens": 500}),
    )
    _span(
        support,
        TRACE_A,
        2,
        start + SECONDS,
        2.0,
        _call(
            "gpt-4o",
            "openai",
            "acme",
            "conv-1",
            0.02,
            **{"gen_ai.request.stream": True, "gen_ai.response.time_to_first_chunk": 0.4},
        ),
    )
    looping = _span(
        support,
        TRACE_A,
        3,
        start + 2 * SECONDS,
        3.0,
        _call(
            "gpt-4o",
            "openai",
            "acme",
            "conv-1",
            0.03,
            **{"gen_ai.usage.reasoning.output_tokens": 40, FINDINGS_COUNT: 1, FINDINGS_MAX_SEVERITY: "high"},
        ),
    )
    loop = finding_event(
        "call_cycle",
        "agent_loop",
        "high",
        0.85,
        {
            "gen_ai.security.loop.scope": "trace",
            "gen_ai.security.loop.pattern": "chat gpt-4o -> execute_tool search",
            "gen_ai.security.loop.repetitions": 3,
            "gen_ai.security.loop.cost": 0.06,
        },
    )
    loop.time_unix_nano = start + 5 * SECONDS
    looping.events.append(loop)
    _span(
        support,
        TRACE_A,
        4,
        start + 3 * SECONDS,
        0.5,
        {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "search", "tenant.id": "acme"},
    )
    _span(
        support,
        TRACE_A,
        5,
        start + 4 * SECONDS,
        0.1,
        {
            "gen_ai.operation.name": "embeddings",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "text-embedding-3-small",
            "gen_ai.usage.input_tokens": 200,
            "tenant.id": "acme",
        },
    )
    research = _resource(traces, "research-agent")
    failing = _span(
        research,
        TRACE_B,
        6,
        start,
        10.0,
        # Written with the previous names: the tables read them too.
        previous_names(
            _call(
                "claude-sonnet-4-5",
                "anthropic",
                "globex",
                "conv-2",
                0.5,
                **{
                    "gen_ai.request.stream": True,
                    "gen_ai.response.time_to_first_chunk": 1.0,
                    "gen_ai.usage.cache_creation.input_tokens": 300,
                    FINDINGS_COUNT: 1,
                },
            )
        ),
    )
    failing.status.code = Status.STATUS_CODE_ERROR
    secret = finding_event("aws_access_key_id", "secret", "critical", 0.95, {"gen_ai.security.location": "input"})
    secret.time_unix_nano = start + SECONDS
    failing.events.append(secret)
    return traces


def add_app_record_of_the_stream(traces: TracesData, start: int) -> None:
    """The support agent's own span of its streamed call, whose span 2 is then the proxy's record of it.

    genai_dedup marks such a span with gen_ai.call.duplicate_of: it stays in otel_traces, and is no call.
    """
    attributes = _call("gpt-4o", "openai", "acme", "conv-1", None, **{"gen_ai.call.duplicate_of": "0202020202020202"})
    _span(traces.resource_spans[0].scope_spans[0].spans, TRACE_A, 7, start + SECONDS, 2.1, attributes)
