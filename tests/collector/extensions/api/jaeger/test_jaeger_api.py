"""Jaeger's HTTP query APIs on a running collector fed by the OpenTelemetry SDK: the UI's JSON API and api_v3.

Shapes are checked field by field against jaegertracing/jaeger's own sources:
- the JSON API's envelope and search parameters: cmd/jaeger/internal/extension/jaegerquery/internal/
  http_handler.go and query_parser.go at 83f312167ee91c5e1299616011f33bde6f87bb75 (the last commit with
  search, services and operations, which Grafana's Jaeger data source calls); the trace's JSON:
  internal/uimodel/model.go and converter/v1/json/fixtures/ui_01.json at 8498073ff809b1a3923521920a9b1b017ea97ecf;
- api_v3: cmd/jaeger/internal/extension/jaegerquery/internal/apiv3/http_gateway.go, query_parser.go and
  snapshots/{GetServices,GetOperations,FindTraceSummaries,GetTrace}.json at 8498073f.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.collector.extensions.api.compat_world import CHECKOUT_START, compat_world
from tests.collector.extensions.api.world import HOUR, HOUR_END, MINUTE, ROOTS, SECOND, World

MICRO = 1_000
ALL = ["checkout", "cron", "globex-support", "acme-batch", "acme-support"]
NAMES = {**ROOTS, "GET /checkout": "checkout"}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    yield from compat_world(tmp_path_factory.mktemp("jaeger"))


def trace_name(world: World, ui_trace_id: str) -> str:
    full = ui_trace_id.rjust(32, "0")
    return next(NAMES[name] for name, trace_id in world.traces.items() if trace_id == full and name in NAMES)


def hour(**params: Any) -> dict[str, Any]:
    return {"start": HOUR // MICRO, "end": HOUR_END // MICRO, **params}


def search(world: World, **params: Any) -> list[str]:
    answer = world.json("/api/traces", **hour(**params))
    assert (answer["total"], answer["limit"], answer["offset"], answer["errors"]) == (0, 0, 0, None)
    return [trace_name(world, trace["traceID"]) for trace in answer["data"]]


# ------------------------------------------------------------------------------------------------------------
# The UI's JSON API


def test_services_in_the_envelope(world: World) -> None:
    assert world.json("/api/services") == {
        "data": ["backend", "batch-job", "cron", "db", "frontend", "genai-proxy", "support-bot"],
        "total": 7,
        "limit": 0,
        "offset": 0,
        "errors": None,
    }


def test_operation_names_of_a_service(world: World) -> None:
    assert world.json("/api/services/frontend/operations") == {
        "data": ["GET /checkout", "POST backend"],
        "total": 2,
        "limit": 0,
        "offset": 0,
        "errors": None,
    }
    assert world.json("/api/services/nobody/operations")["data"] is None  # Jaeger's nil slice


def test_operations_with_their_kinds(world: World) -> None:
    assert world.json("/api/operations", service="frontend")["data"] == [
        {"name": "GET /checkout", "spanKind": "server"},
        {"name": "POST backend", "spanKind": "client"},
    ]
    assert world.json("/api/operations", service="frontend", spanKind="client")["data"] == [
        {"name": "POST backend", "spanKind": "client"}
    ]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, ALL),
        ({"service": "support-bot"}, ["globex-support", "acme-support"]),
        ({"service": "support-bot", "operation": "execute_tool lookup"}, ["acme-support"]),
        ({"tags": json.dumps({"error": "true"})}, ["checkout", "globex-support", "acme-support"]),
        ({"tags": json.dumps({"span.kind": "server"})}, ["checkout"]),
        ({"tags": json.dumps({"otel.status_code": "ERROR", "service.name": "backend"})}, ["checkout"]),
        ({"tags": json.dumps({"otel.status_description": "tool failed"})}, ["acme-support"]),
        ({"tags": json.dumps({"otel.scope.name": "tests.compat"})}, ["checkout"]),
        ({"tags": json.dumps({"gen_ai.request.model": "gpt-4o"})}, ["globex-support", "acme-support"]),
        ({"tags": json.dumps({"tenant.id": "globex"})}, ["globex-support"]),  # a resource attribute
        ({"tags": json.dumps({"http.response.status_code": "200"})}, ["checkout"]),  # an int, as stored text
        ({"tag": "db.system:postgresql"}, ["checkout"]),
        ({"tag": ["gen_ai.operation.name:chat", "gen_ai.provider.name:anthropic"]}, ["acme-batch"]),
        ({"minDuration": "4s"}, ["acme-batch", "acme-support"]),
        ({"maxDuration": "600ms"}, ["checkout", "acme-batch"]),
        ({"minDuration": "1.5s", "maxDuration": "2s"}, ["checkout", "acme-support"]),
        ({"limit": 2}, ["checkout", "cron"]),
        ({"service": "nobody"}, []),
        ({"start": (HOUR + 30 * MINUTE) // MICRO, "end": (HOUR + 45 * MINUTE) // MICRO}, ["cron", "globex-support"]),
    ],
)  # fmt: skip
def test_search_finds_the_traces_with_a_span_meeting_every_condition(
    world: World, params: dict[str, Any], expected: list[str]
) -> None:
    assert search(world, **params) == expected


def test_search_without_start_looks_back_the_lookback(world: World) -> None:
    answer = world.json("/api/traces", end=(HOUR + 25 * MINUTE) // MICRO, lookback="10m")
    assert [trace_name(world, trace["traceID"]) for trace in answer["data"]] == ["acme-batch"]


def test_search_by_trace_ids_reports_the_ones_not_found(world: World) -> None:
    known, unknown = world.traces["chat gpt-4o-mini"], "00000000000000000000000000abcdef"
    answer = world.json("/api/traces", traceID=[known, unknown])
    assert [trace_name(world, trace["traceID"]) for trace in answer["data"]] == ["cron"]
    assert answer["errors"] == [{"msg": "trace not found", "traceID": "0000000000abcdef"}]


def test_a_trace_as_the_jaeger_ui_reads_it(world: World) -> None:
    trace_id = world.traces["invoke_agent support"]
    answer = world.json(f"/api/traces/{trace_id}")
    assert (answer["total"], answer["errors"]) == (0, None)
    [trace] = answer["data"]
    assert trace["traceID"] == trace_id and trace["warnings"] is None
    spans = {span["operationName"]: span for span in trace["spans"]}
    assert sorted(spans) == ["chat gpt-4o", "execute_tool lookup", "invoke_agent support"]
    root = world.spans["invoke_agent support"]
    assert spans["execute_tool lookup"] == {
        "traceID": trace_id,
        "spanID": world.spans["execute_tool lookup"],
        "operationName": "execute_tool lookup",
        "references": [
            {"refType": "CHILD_OF", "traceID": trace_id, "spanID": root},
            {"refType": "FOLLOWS_FROM", "traceID": "0000000000001234", "spanID": "0000000000005678"},
        ],
        "startTime": (HOUR + MINUTE + 4 * SECOND) // MICRO,
        "duration": 1_000_000,
        "tags": [
            {"key": "otel.scope.name", "type": "string", "value": "tests.api"},
            {"key": "otel.scope.version", "type": "string", "value": "1.2.3"},
            {"key": "tenant.id", "type": "string", "value": "acme"},
            {"key": "gen_ai.operation.name", "type": "string", "value": "execute_tool"},
            {"key": "gen_ai.tool.name", "type": "string", "value": "lookup"},
            {"key": "span.kind", "type": "string", "value": "internal"},
            {"key": "otel.status_code", "type": "string", "value": "ERROR"},
            {"key": "error", "type": "bool", "value": True},
            {"key": "otel.status_description", "type": "string", "value": "tool failed"},
        ],
        "logs": [],
        "processID": "p1",
        "warnings": None,
    }
    chat = spans["chat gpt-4o"]
    tags = {tag["key"]: (tag["type"], tag["value"]) for tag in chat["tags"]}
    assert tags["gen_ai.usage.input_tokens"] == ("int64", 100)  # typed as the conventions say
    assert tags["gen_ai.request.temperature"] == ("float64", 0.5)
    assert tags["gen_ai.request.stream"] == ("bool", True)
    assert tags["gen_ai.response.finish_reasons"] == ("string", '["stop"]')  # Jaeger shows arrays as JSON text
    assert tags["app.retry.count"] == ("string", "3")  # no convention names its type: the stored text
    assert chat["logs"][0]["timestamp"] == (HOUR + MINUTE + 2 * SECOND) // MICRO
    assert chat["logs"][0]["fields"][0] == {"key": "event", "type": "string", "value": "gen_ai.security.finding"}
    root_span = spans["invoke_agent support"]
    assert root_span["references"] == [] and root_span["duration"] == 10_000_000
    assert root_span["logs"] == [
        {
            "timestamp": (HOUR + MINUTE + 5 * SECOND) // MICRO,
            "fields": [
                {"key": "event", "type": "string", "value": "note"},
                {"key": "detail", "type": "string", "value": "started"},
                {"key": "attempt", "type": "string", "value": "2"},
            ],
        }
    ]
    [process] = trace["processes"].values()
    assert process["serviceName"] == "support-bot"
    assert {tag["key"] for tag in process["tags"]} == {
        "telemetry.sdk.language", "telemetry.sdk.name", "telemetry.sdk.version", "service.instance.id",
    }  # fmt: skip


def test_a_trace_across_services_has_a_process_per_service(world: World) -> None:
    [trace] = world.json(f"/api/traces/{world.traces['GET /checkout']}")["data"]
    services = {key: process["serviceName"] for key, process in trace["processes"].items()}
    assert sorted(services) == ["p1", "p2", "p3"] and sorted(services.values()) == ["backend", "db", "frontend"]
    by_name = {span["operationName"]: services[span["processID"]] for span in trace["spans"]}
    assert by_name == {
        "GET /checkout": "frontend", "POST backend": "frontend", "POST /orders": "backend", "SELECT orders": "db",
    }  # fmt: skip


def test_dependencies_between_services(world: World) -> None:
    params = {"endTs": HOUR_END // 1_000_000, "lookback": 3_600_000}
    assert world.json("/api/dependencies", **params) == {
        "data": [
            {"parent": "backend", "child": "db", "callCount": 1},
            {"parent": "frontend", "child": "backend", "callCount": 1},
        ],
        "total": 0,
        "limit": 0,
        "offset": 0,
        "errors": None,
    }
    assert world.json("/api/dependencies", **params, service="db")["data"] == [
        {"parent": "backend", "child": "db", "callCount": 1}
    ]
    before = {"endTs": (HOUR + 45 * MINUTE) // 1_000_000, "lookback": 3_600_000}
    assert world.json("/api/dependencies", **before)["data"] == []


def jaeger_error(answer: httpx.Response, status: int) -> str:
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert body["data"] is None and (body["total"], body["limit"], body["offset"]) == (0, 0, 0)
    [error] = body["errors"]
    assert error["code"] == status
    return str(error["msg"])


@pytest.mark.parametrize(
    ("path", "params", "status", "message"),
    [
        ("/api/traces", {"limit": "many"}, 400, 'limit: expected a whole number'),
        ("/api/traces", {"minDuration": "3x"}, 400, 'minDuration: "3x": unknown unit "x"'),
        ("/api/traces", {"minDuration": "3s", "maxDuration": "1s"}, 400, "'maxDuration' should be greater"),
        ("/api/traces", {"tags": "{not json"}, 400, "malformed 'tags' parameter, cannot unmarshal JSON"),
        ("/api/traces", {"tag": "nocolon"}, 400, "malformed 'tag' parameter, expecting key:value"),
        ("/api/traces", {"start": "yesterday"}, 400, "start: expected a whole number"),
        ("/api/operations", {}, 400, "parameter 'service' is required"),
        ("/api/operations", {"service": "db", "spanKind": "sideways"}, 400, 'unsupported span kind: "sideways"'),
        ("/api/traces/nothex!", {}, 400, "a trace id is 1 to 32 hex digits"),
        ("/api/traces/abcdef", {}, 404, "trace not found"),
        ("/api/dependencies", {"lookback": "0"}, 400, "lookback: must be more than 0"),
    ],
)  # fmt: skip
def test_errors_come_in_the_envelope(
    world: World, path: str, params: dict[str, Any], status: int, message: str
) -> None:
    assert message in jaeger_error(world.get(path, **params), status)


def test_reads_need_an_api_key_of_the_viewer_role(world: World) -> None:
    assert world.get("/api/services", key=None).status_code == 401
    assert world.get("/api/services", key="proxy").status_code == 401  # a proxy key opens no endpoint
    assert world.get("/api/services", key="viewer").status_code == 200


# ------------------------------------------------------------------------------------------------------------
# api_v3

V3_HOUR = {"query.startTimeMin": "2025-06-02T10:00:00Z", "query.startTimeMax": "2025-06-02T11:00:00Z"}


def v3_error(answer: httpx.Response, status: int) -> str:
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert list(body) == ["error"] and body["error"]["httpCode"] == status
    return str(body["error"]["message"])


def test_v3_services_and_operations(world: World) -> None:
    assert world.json("/api/v3/services") == {
        "services": ["backend", "batch-job", "cron", "db", "frontend", "genai-proxy", "support-bot"]
    }
    assert world.json("/api/v3/operations", service="frontend") == {
        "operations": [{"name": "GET /checkout", "spanKind": "server"}, {"name": "POST backend", "spanKind": "client"}]
    }
    assert world.json("/api/v3/operations", service="frontend", span_kind="server") == {
        "operations": [{"name": "GET /checkout", "spanKind": "server"}]
    }
    assert world.json("/api/v3/operations", service="nobody") == {}  # proto3 JSON leaves an empty list out


def test_v3_find_traces_answers_otlp_json(world: World) -> None:
    answer = world.json("/api/v3/traces", **V3_HOUR, **{"query.serviceName": "db"})
    spans = [
        span
        for resource in answer["result"]["resourceSpans"]
        for scope in resource["scopeSpans"]
        for span in scope["spans"]
    ]
    trace_id = world.traces["GET /checkout"]
    by_name = {span["name"]: span for span in spans}
    assert sorted(by_name) == ["GET /checkout", "POST /orders", "POST backend", "SELECT orders"]
    orders = by_name["POST /orders"]
    assert orders["traceId"] == trace_id and orders["spanId"] == world.spans["POST /orders"]
    assert orders["parentSpanId"] == world.spans["POST backend"]
    assert orders["kind"] == 2 and orders["status"] == {"code": 2, "message": "db down"}
    assert orders["startTimeUnixNano"] == str(CHECKOUT_START + 300_000_000)
    assert orders["endTimeUnixNano"] == str(CHECKOUT_START + 1_300_000_000)
    root_attributes = {a["key"]: a["value"] for a in by_name["GET /checkout"]["attributes"]}
    assert root_attributes["http.response.status_code"] == {"intValue": "200"}


def test_v3_trace_summaries(world: World) -> None:
    answer = world.json(
        "/api/v3/trace-summaries", **V3_HOUR, **{"query.attributes": json.dumps({"db.system": "postgresql"})}
    )
    assert answer == {
        "summaries": [
            {
                "traceId": world.traces["GET /checkout"],
                "rootServiceName": "frontend",
                "rootOperationName": "GET /checkout",
                "minStartTimeUnixNano": str(CHECKOUT_START),
                "maxEndTimeUnixNano": str(CHECKOUT_START + 2 * SECOND),
                "spanCount": 4,
                "errorSpanCount": 1,
                "services": [
                    {"name": "backend", "spanCount": 1, "errorSpanCount": 1},
                    {"name": "db", "spanCount": 1},
                    {"name": "frontend", "spanCount": 2},
                ],
            }
        ]
    }


def test_v3_search_parameters_and_their_aliases(world: World) -> None:
    def names(**params: Any) -> list[str]:
        answer = world.json("/api/v3/trace-summaries", **params)
        return [trace_name(world, summary["traceId"]) for summary in answer.get("summaries", [])]

    assert names(**V3_HOUR, **{"query.serviceName": "support-bot"}) == ["globex-support", "acme-support"]
    assert names(**V3_HOUR, **{"query.service_name": "support-bot", "query.operation_name": "chat gpt-4o"}) == [
        "acme-support"
    ]
    assert names(**V3_HOUR, **{"query.durationMin": "4s"}) == ["acme-batch", "acme-support"]
    assert names(**V3_HOUR, **{"query.duration_max": "600ms"}) == ["checkout", "acme-batch"]
    assert names(**V3_HOUR, **{"query.searchDepth": "1"}) == ["checkout"]
    legacy = {"query.start_time_min": "2025-06-02T10:30:00Z", "query.start_time_max": "2025-06-02T10:45:00Z"}
    assert names(**legacy) == ["cron", "globex-support"]


def test_v3_get_trace(world: World) -> None:
    trace_id = world.traces["chat gpt-4o-mini"]
    answer = world.json(f"/api/v3/traces/{trace_id}")
    names = sorted(s["name"] for r in answer["result"]["resourceSpans"] for sc in r["scopeSpans"] for s in sc["spans"])
    assert names == ["chat gpt-4o-mini", "chat gpt-4o-mini app"]
    hinted = world.json(f"/api/v3/traces/{trace_id}", startTime="2025-06-02T10:39:00Z", endTime="2025-06-02T10:41:00Z")
    assert hinted == answer


@pytest.mark.parametrize(
    ("path", "params", "status", "message"),
    [
        ("/api/v3/traces", {}, 400, "query.startTimeMin and query.startTimeMax are required"),
        ("/api/v3/traces", {**V3_HOUR, "query.serviceName": "nobody"}, 404, "No traces found"),
        ("/api/v3/traces", {**V3_HOUR, "query.filter": '{"op":"eq"}'}, 400, "structured filters are not supported"),
        ("/api/v3/traces", {**V3_HOUR, "query.attributes": "[1]"}, 400, "malformed parameter query.attributes"),
        ("/api/v3/traces", {**V3_HOUR, "query.durationMin": "x"}, 400, 'query.durationMin: "x"'),
        ("/api/v3/trace-summaries", {"query.startTimeMin": "2025-06-02T11:00:00Z",
                                     "query.startTimeMax": "2025-06-02T10:00:00Z"}, 400, "must be before end"),
        ("/api/v3/traces/xyz", {}, 400, "malformed parameter trace_id"),
        ("/api/v3/traces/00000000000000000000000000abcdef", {}, 404, "No traces found"),
        ("/api/v3/operations", {}, 400, "the service parameter is required"),
    ],
)  # fmt: skip
def test_v3_errors(world: World, path: str, params: dict[str, Any], status: int, message: str) -> None:
    assert message in v3_error(world.get(path, **params), status)
