"""GET /api/v1/traces and /api/v1/traces/{id} on a running collector: every filter, pages, bounds, summaries, OTLP."""

from __future__ import annotations

import json
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.trace.v1.trace_pb2 import TracesData

from collector.extensions.api.query.attribute_types import kind_of
from collector.pdata import any_value
from collector.receivers.otlp.codec import JSON, decode_traces
from tests.collector.extensions.api.world import HOUR, MINUTE, SECOND, World, rfc3339

ALL = ["cron", "globex-support", "acme-batch", "acme-support"]


def names(world: World, answer: dict[str, Any]) -> list[str]:
    return [world.root_of(trace["trace_id"]) for trace in answer["traces"]]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, ALL),
        ({"service": "support-bot"}, ["globex-support", "acme-support"]),
        ({"span_name": "chat gpt-4o"}, ["acme-support"]),
        ({"model": "gpt-4o"}, ["globex-support", "acme-support"]),
        ({"model": "gpt-4o-2024-08-06"}, ["acme-support"]),  # the responding model counts too
        ({"provider": "anthropic"}, ["acme-batch"]),
        ({"operation": "embeddings"}, ["acme-batch"]),
        ({"tenant": "acme"}, ["acme-batch", "acme-support"]),
        ({"tenant": "globex"}, ["globex-support"]),  # tenant.id on the resource
        ({"conversation": "c-acme-1"}, ["acme-support"]),
        ({"has_findings": "true"}, ["globex-support", "acme-batch", "acme-support"]),
        ({"has_findings": "false"}, ["cron", "acme-batch", "acme-support"]),
        ({"min_severity": "high"}, ["globex-support", "acme-support"]),
        ({"min_severity": "critical"}, ["globex-support"]),
        ({"error": "true"}, ["globex-support", "acme-support"]),
        ({"error": "false"}, ["cron", "acme-batch", "acme-support"]),
        ({"min_duration": "4s"}, ["acme-batch", "acme-support"]),
        ({"max_duration": "1s"}, ["cron", "acme-batch", "acme-support"]),
        ({"min_duration": "2s", "max_duration": "3s"}, ["globex-support", "acme-support"]),
        ({"attribute": "gen_ai.tool.name=lookup"}, ["acme-support"]),
        ({"attribute": "tenant.id=globex"}, ["globex-support"]),  # a resource attribute
        ({"attribute": ["gen_ai.operation.name=chat", "gen_ai.provider.name=openai"]},
         ["cron", "globex-support", "acme-support"]),
        ({"service": "support-bot", "error": "true", "model": "gpt-4o"}, ["globex-support"]),
        ({"service": "nobody"}, []),
    ],
)  # fmt: skip
def test_each_filter_finds_exactly_the_traces_with_a_matching_span(
    world: World, params: dict[str, Any], expected: list[str]
) -> None:
    assert names(world, world.json("/api/v1/traces", **world.window(), **params)) == expected


def test_the_window_includes_its_start_and_excludes_its_end(world: World) -> None:
    answer = world.json("/api/v1/traces", **world.window(HOUR + 20 * MINUTE, HOUR + 40 * MINUTE))
    assert names(world, answer) == ["globex-support", "acme-batch"]
    assert answer["start"] == "2025-06-02T10:20:00Z" and answer["end"] == "2025-06-02T10:40:00Z"
    # Unix seconds work as well as RFC 3339.
    unix = world.json("/api/v1/traces", start=str((HOUR + 20 * MINUTE) // SECOND), end="1748860800")
    assert names(world, unix) == ["globex-support", "acme-batch"]


def test_without_start_the_default_window_before_end_is_searched(world: World) -> None:
    answer = world.json("/api/v1/traces", end=rfc3339(HOUR + 40 * MINUTE + 1))
    assert answer["start"] == rfc3339(HOUR - 20 * MINUTE + 1)  # the default window is one hour
    assert names(world, answer) == ALL


def test_pages_follow_each_other_without_gaps_or_repeats(world: World) -> None:
    for limit in (1, 3):
        seen: list[str] = []
        cursor: str | None = None
        for _ in range(len(ALL) + 1):
            params = {**world.window(), "limit": str(limit), **({"cursor": cursor} if cursor else {})}
            page = world.json("/api/v1/traces", **params)
            seen.extend(names(world, page))
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == ALL


def test_a_summary_covers_every_span_of_the_trace(world: World) -> None:
    answer = world.json("/api/v1/traces", **world.window(), model="gpt-4o", tenant="acme")
    assert answer["traces"] == [
        {
            "trace_id": world.traces["invoke_agent support"],
            "root": {"service": "support-bot", "name": "invoke_agent support"},
            "start": "2025-06-02T10:01:00Z",
            "duration_ms": 10_000.0,
            "span_count": 3,
            "error": True,
            "error_count": 1,
            "llm_calls": 1,
            "tokens": {"input": 100, "output": 20, "cache_read": 10, "cache_creation": 0, "reasoning": 0},
            "cost_usd": 0.0125,
            "finding_count": 1,
            "max_severity": "high",
            "models": ["gpt-4o"],
            "providers": ["openai"],
            "services": ["support-bot"],
            "conversations": ["c-acme-1"],
        }
    ]


def test_a_duplicate_record_of_a_call_is_not_counted_twice(world: World) -> None:
    (cron,) = world.json("/api/v1/traces", **world.window(), service="cron")["traces"]
    assert (cron["span_count"], cron["llm_calls"], cron["tokens"]["input"]) == (2, 1, 10)


def test_spans_sent_through_the_proxy_are_found_with_their_tenant(world: World) -> None:
    start, end = world.live_window
    answer = world.json("/api/v1/traces", start=rfc3339(start), end=rfc3339(end), service="genai-proxy")
    assert {trace["trace_id"] for trace in answer["traces"]} == set(world.live.values())
    acme = world.json("/api/v1/traces", start=rfc3339(start), end=rfc3339(end), tenant="acme")
    assert [trace["trace_id"] for trace in acme["traces"]] == [world.live["acme"]]


def _sent(world: World, trace_id: str) -> TracesData:
    """What the SDK sent for ``trace_id``, as the OTLP protobuf its exporter puts on the wire."""
    spans = [span for span in world.sdk_spans if format(span.context.trace_id, "032x") == trace_id]
    sent = TracesData()
    sent.ParseFromString(encode_spans(spans).SerializeToString())
    return sent


def _expected_value(key: str, value: Any) -> Any:
    """What the API gives back for an attribute sent as ``value``: typed where the conventions type ``key``."""
    if isinstance(value, str) or kind_of(key) is not None:
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _attributes(pairs: Any, expected: bool = False) -> dict[str, Any]:
    return {
        pair.key: (_expected_value(pair.key, any_value(pair.value)) if expected else any_value(pair.value))
        for pair in pairs
    }


def test_a_trace_comes_back_as_the_sdk_sent_it_in_otlp_json(world: World) -> None:
    trace_id = world.traces["invoke_agent support"]
    answer = world.get(f"/api/v1/traces/{trace_id}")
    assert answer.status_code == 200
    body = answer.json()
    assert body["trace_id"] == trace_id and body["truncated"] is False
    assert body["summary"]["span_count"] == 3
    # The OTLP/JSON part decodes as any OTLP receiver would decode it.
    got = decode_traces(json.dumps(body["trace"]).encode(), JSON)
    sent = _sent(world, trace_id)

    def by_id(traces: TracesData) -> dict[bytes, Any]:
        return {
            span.span_id: (resource_spans.resource, scope_spans.scope, span)
            for resource_spans in traces.resource_spans
            for scope_spans in resource_spans.scope_spans
            for span in scope_spans.spans
        }

    got_spans, sent_spans = by_id(got), by_id(sent)
    assert set(got_spans) == set(sent_spans)
    for span_id, (sent_resource, sent_scope, want) in sent_spans.items():
        resource, scope, span = got_spans[span_id]
        assert _attributes(resource.attributes) == _attributes(sent_resource.attributes, expected=True)
        assert (scope.name, scope.version) == (sent_scope.name, sent_scope.version) == ("tests.api", "1.2.3")
        assert (span.trace_id, span.parent_span_id, span.name, span.kind) == (
            want.trace_id, want.parent_span_id, want.name, want.kind
        )  # fmt: skip
        assert (span.start_time_unix_nano, span.end_time_unix_nano) == (
            want.start_time_unix_nano, want.end_time_unix_nano
        )  # fmt: skip
        assert (span.status.code, span.status.message) == (want.status.code, want.status.message)
        assert _attributes(span.attributes) == _attributes(want.attributes, expected=True)
        assert [(e.name, e.time_unix_nano, _attributes(e.attributes)) for e in span.events] == [
            (e.name, e.time_unix_nano, _attributes(e.attributes, expected=True)) for e in want.events
        ]
        assert [(link.trace_id, link.span_id, _attributes(link.attributes)) for link in span.links] == [
            (link.trace_id, link.span_id, _attributes(link.attributes, expected=True)) for link in want.links
        ]


def test_attribute_types_the_conventions_give_are_recovered_and_the_rest_stay_strings(world: World) -> None:
    trace = world.json(f"/api/v1/traces/{world.traces['chat gpt-4o']}")["trace"]
    spans = [span for rs in trace["resourceSpans"] for ss in rs["scopeSpans"] for span in ss["spans"]]
    (chat,) = [span for span in spans if span["name"] == "chat gpt-4o"]
    values = {pair["key"]: pair["value"] for pair in chat["attributes"]}
    assert values["gen_ai.usage.input_tokens"] == {"intValue": "100"}
    assert values["gen_ai.usage.cost.amount"] == {"doubleValue": 0.0125}
    assert values["gen_ai.request.temperature"] == {"doubleValue": 0.5}
    assert values["gen_ai.request.stream"] == {"boolValue": True}
    assert values["gen_ai.response.finish_reasons"] == {"arrayValue": {"values": [{"stringValue": "stop"}]}}
    assert values["app.retry.count"] == {"stringValue": "3"}  # an integer the conventions do not name
    assert chat["kind"] == 3 and chat["parentSpanId"] == world.spans["invoke_agent support"]


@pytest.mark.parametrize(
    ("path", "status", "parameter"),
    [
        ("/api/v1/traces/0123", 400, "trace_id"),
        ("/api/v1/traces/zz" + "0" * 30, 400, "trace_id"),
        ("/api/v1/traces/" + "0" * 32, 404, None),
    ],
)
def test_trace_ids_that_are_not_ids_or_not_stored(world: World, path: str, status: int, parameter: str | None) -> None:
    answer = world.get(path)
    assert answer.status_code == status
    body = answer.json()
    assert body["code"] == ("bad_parameter" if status == 400 else "not_found")
    assert body.get("parameter") == parameter


def test_upper_case_trace_ids_are_accepted(world: World) -> None:
    trace_id = world.traces["chat claude-3-5-sonnet"]
    assert world.json(f"/api/v1/traces/{trace_id.upper()}")["trace_id"] == trace_id


@pytest.mark.parametrize(
    ("params", "parameter", "message"),
    [
        ({"limit": "0"}, "limit", "limit: must be from 1 to 1000, got 0"),
        ({"limit": "ten"}, "limit", 'limit: expected a whole number from 1 to 1000, got "ten"'),
        ({"start": "yesterday"}, "start",
         'start: expected an RFC 3339 time like 2025-01-31T12:00:00Z or Unix seconds, got "yesterday"'),
        ({"start": "2025-06-02T11:00:00Z", "end": "2025-06-02T10:00:00Z"}, "start", "start: must be before end"),
        ({"start": "2025-01-01T00:00:00Z", "end": "2025-06-02T10:00:00Z"}, "start",
         "start: the window from start to end is longer than 744h (max_time_window)"),
        ({"min_duration": "fast"}, "min_duration", 'min_duration: expected a duration like 72h, got "fast"'),
        ({"error": "maybe"}, "error", 'error: expected true or false, got "maybe"'),
        ({"min_severity": "huge"}, "min_severity",
         'min_severity: expected one of low, medium, high, critical, got "huge"'),
        ({"attribute": "no-equals"}, "attribute", 'attribute: expected key=value, got "no-equals"'),
        ({"cursor": "bm90IGEgY3Vyc29y"}, "cursor", "cursor: not a cursor this API handed out"),
        ({"model": ""}, "model", "model: is empty"),
        ({"model": ["a", "b"]}, "model", "model: given more than once"),
        ({"modle": "gpt-4o"}, "modle", None),
    ],
)  # fmt: skip
def test_a_bad_parameter_is_a_400_naming_it(
    world: World, params: dict[str, Any], parameter: str, message: str | None
) -> None:
    answer = world.get("/api/v1/traces", **params)
    assert answer.status_code == 400
    body = answer.json()
    assert (body["code"], body["parameter"]) == ("bad_parameter", parameter)
    if message is not None:
        assert body["error"] == message
    else:
        assert body["error"].startswith("modle: unknown parameter; this endpoint takes attribute, conversation,")
