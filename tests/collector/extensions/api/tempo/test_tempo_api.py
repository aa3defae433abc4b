"""Tempo's HTTP query API on a running collector fed by the OpenTelemetry SDK, and the TraceQL subset's answers.

Shapes from grafana/tempo at ad33aa8fafc41a4ea58519f7b7a88b1aa1383224: pkg/tempopb/tempo.proto (JSON keys are its
proto3 JSON names), pkg/api/http.go (parameters and their errors, the Accept rule), pkg/api/search_tags.go,
pkg/traceql/engine.go asTraceSearchMetadata (trace ids without leading zeros, 16-digit span ids, matched, spanSet
and spanSets), pkg/search/util.go, modules/frontend/combiner/trace_by_id*.go (404 with no body for an unknown
trace), cmd/tempo/app (echo, buildinfo). How Grafana reads the trace: grafana/grafana pkg/tsdb/tempo/trace.go
(Accept: application/protobuf on /api/v2/traces/{id}, then /api/traces/{id}; start and end in seconds).
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from opentelemetry.proto.trace.v1.trace_pb2 import TracesData

from tests.collector.extensions.api.compat_world import CHECKOUT_START, compat_world
from tests.collector.extensions.api.world import HOUR, HOUR_END, MINUTE, ROOTS, SECOND, World, store_rows

NAMES = {**ROOTS, "GET /checkout": "checkout"}
START, END = HOUR // SECOND, HOUR_END // SECOND
ALL = ["checkout", "cron", "globex-support", "acme-batch", "acme-support"]
PROTOBUF = {"Accept": "application/protobuf"}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    yield from compat_world(tmp_path_factory.mktemp("tempo"))


def get(world: World, path: str, key: str = "viewer", headers: dict[str, str] | None = None, **params: Any) -> Any:
    return httpx.get(
        world.base_url + path,
        params=params,
        headers={"Authorization": f"Bearer {world.keys[key]}", **(headers or {})},
        timeout=60,
    )


def name_of(world: World, tempo_trace_id: str) -> str:
    full = tempo_trace_id.rjust(32, "0")
    return next(NAMES[name] for name, trace_id in world.traces.items() if trace_id == full and name in NAMES)


def found(world: World, **params: Any) -> list[str]:
    answer = get(world, "/api/search", **{"start": START, "end": END, **params})
    assert answer.status_code == 200, answer.text
    return [name_of(world, trace["traceID"]) for trace in answer.json().get("traces", [])]


def text_error(answer: httpx.Response, status: int) -> str:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("text/plain")
    return answer.text


# ------------------------------------------------------------------------------------------------------------
# TraceQL: queries and the traces they find (in the hour; newest first), and the queries refused

TRACEQL = [
    ("{}", ALL),
    ('{ resource.service.name = "support-bot" }', ["globex-support", "acme-support"]),
    ('{ .service.name = "db" }', ["checkout"]),  # unscoped: the span's, else the resource's
    ('{ span.gen_ai.request.model = "gpt-4o" }', ["globex-support", "acme-support"]),
    ('{ span.gen_ai.request.model =~ "gpt-4o.*" }', ["cron", "globex-support", "acme-support"]),
    ('{ span.gen_ai.request.model =~ "gpt" }', []),  # anchored at both ends
    ('{ span.gen_ai.request.model !~ "gpt.*" }', ["acme-batch"]),
    ("{ span.gen_ai.usage.input_tokens > 150 }", ["globex-support", "acme-batch"]),
    ("{ span.gen_ai.usage.input_tokens >= 100 && span.gen_ai.usage.input_tokens < 300 }",
     ["globex-support", "acme-support"]),
    ("{ span.gen_ai.request.temperature = 0.5 }", ["acme-support"]),
    ("{ span.gen_ai.request.stream = true }", ["acme-support"]),
    ("{ span.app.retry.count = 3 }", ["acme-support"]),  # an int attribute, stored as text
    ("{ span.http.response.status_code = 200 }", ["checkout"]),
    ('{ name = "SELECT orders" }', ["checkout"]),
    ('{ name =~ "chat.*" && kind = client }', ["cron", "globex-support", "acme-batch", "acme-support"]),
    ("{ status = error }", ["checkout", "globex-support", "acme-support"]),
    ('{ status = error && resource.service.name = "backend" }', ["checkout"]),
    ("{ status = ok }", []),
    ("{ status = unset && kind = server }", ["checkout"]),
    ('{ statusMessage = "tool failed" }', ["acme-support"]),
    ('{ kind = server || name = "chat gpt-4o-mini" }', ["checkout", "cron"]),
    ("{ duration > 4s }", ["acme-batch", "acme-support"]),
    ("{ span:duration <= 500ms }", ["checkout", "acme-batch"]),
    ("{ (kind = client || kind = server) && duration > 1s }",
     ["checkout", "globex-support", "acme-batch", "acme-support"]),
    ("{ span.db.system != nil }", ["checkout"]),
    ('{ .tenant.id = "globex" }', ["globex-support"]),
    ('{ span.tenant.id = "globex" }', []),  # globex's tenant is on the resource
    ('{ resource.tenant.id = "globex" }', ["globex-support"]),
    ('{ span.gen_ai.tool.name = "lookup" && span:status = error }', ["acme-support"]),
    ('{ span.gen_ai.tool.name = "lookup" && kind = client }', []),  # both on one span
]  # fmt: skip


@pytest.mark.parametrize(("query", "expected"), TRACEQL)
def test_traceql_finds_the_traces_with_a_matching_span(world: World, query: str, expected: list[str]) -> None:
    assert found(world, q=query) == expected


REFUSED = [
    ("{ .a = 1 } | count() > 1", "unsupported TraceQL: pipelines (|)"),
    ("{ .a = 1 } && { .b = 2 }", "unsupported TraceQL: combining spansets with &&"),
    ("{ .a = 1 } >> { .b = 2 }", "unsupported TraceQL: the structural operator >>"),
    ('{ event.name = "x" }', "unsupported TraceQL: event attributes (event.)"),
    ("{ trace:duration > 1s }", "unsupported TraceQL: the intrinsic trace:duration"),
    ("{ !(.a = 1) }", "unsupported TraceQL: negation (!)"),
    ("{ .a }", "unsupported TraceQL: a field used alone as a condition (.a)"),
    ('{ .a = "x" ', "parse error at col 12: expected } or && or ||, found end of query"),
    ('{ duration = "x" }', "invalid comparison at col 3: duration is compared with a string; expected a duration"),
    ('{ .a =~ "(" }', "invalid regular expression at col 6"),
]


@pytest.mark.parametrize(("query", "message"), REFUSED)
def test_queries_outside_the_subset_are_a_400_naming_the_construct(world: World, query: str, message: str) -> None:
    body = text_error(get(world, "/api/search", q=query), 400)
    assert body.startswith(f"invalid TraceQL query: {message}")


# ------------------------------------------------------------------------------------------------------------
# Search


def test_search_metadata_field_by_field(world: World) -> None:
    answer = get(world, "/api/search", q='{ resource.service.name = "backend" }', start=START, end=END).json()
    orders = {
        "spanID": world.spans["POST /orders"],
        "name": "POST /orders",
        "startTimeUnixNano": str(CHECKOUT_START + 300_000_000),
        "durationNanos": "1000000000",
        "attributes": [{"key": "service.name", "value": {"stringValue": "backend"}}],
    }
    assert answer == {
        "traces": [
            {
                "traceID": world.traces["GET /checkout"].lstrip("0"),
                "rootServiceName": "frontend",
                "rootTraceName": "GET /checkout",
                "startTimeUnixNano": str(CHECKOUT_START),
                "durationMs": 2000,
                "spanSet": {"spans": [orders], "matched": 1},
                "spanSets": [{"spans": [orders], "matched": 1}],
                "serviceStats": {
                    "backend": {"spanCount": 1, "errorCount": 1},
                    "db": {"spanCount": 1},
                    "frontend": {"spanCount": 2},
                },
            }
        ],
        "metrics": {"inspectedTraces": 1, "completedJobs": 1, "totalJobs": 1},
    }


def test_matched_spans_report_the_attributes_the_query_names_typed(world: World) -> None:
    answer = get(world, "/api/search", q="{ span.gen_ai.usage.input_tokens >= 300 && kind = client }",
                 start=START, end=END).json()  # fmt: skip
    [trace] = answer["traces"]
    [span] = trace["spanSet"]["spans"]
    assert span["attributes"] == [
        {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "300"}},
        {"key": "kind", "value": {"stringValue": "client"}},
    ]


def test_spans_per_spanset_and_matched(world: World) -> None:
    answer = get(world, "/api/search", q='{ resource.service.name = "frontend" }', spss=1, start=START, end=END).json()
    [trace] = answer["traces"]
    assert trace["spanSet"]["matched"] == 2
    assert [span["name"] for span in trace["spanSet"]["spans"]] == ["GET /checkout"]  # the earliest


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"tags": "service.name=cron"}, ["cron"]),
        ({"tags": 'name="SELECT orders"'}, ["checkout"]),
        ({"tags": "status.code=error gen_ai.operation.name=execute_tool"}, ["acme-support"]),
        ({"tags": "gen_ai.request.model=gpt-4o"}, ["globex-support", "acme-support"]),
        ({"q": "{}", "minDuration": "5s"}, ["acme-batch", "acme-support"]),  # the trace's duration
        ({"q": "{}", "maxDuration": "1500ms"}, ["cron"]),
        ({"q": "{}", "limit": 2}, ["checkout", "cron"]),
        ({"q": "{}", "start": START + 30 * 60, "end": START + 45 * 60}, ["cron", "globex-support"]),
    ],
)
def test_search_parameters(world: World, params: dict[str, Any], expected: list[str]) -> None:
    assert found(world, **params) == expected


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"q": "{}", "tags": "a=b"}, "invalid request: can't specify tags and q in the same query"),
        ({"q": "{}", "limit": 0}, "invalid limit: must be a positive number"),
        ({"q": "{}", "limit": "x"}, "invalid limit: expected a whole number"),
        ({"q": "{}", "start": END, "end": START}, f"http parameter start must be before end. received start={END}"),
        ({"q": "{}", "minDuration": "2s", "maxDuration": "1s"},
         "invalid maxDuration: must be greater than minDuration"),
        ({"q": "{}", "minDuration": "fast"}, 'invalid minDuration: "fast"'),
        ({"tags": "a=1 a=2"}, "invalid tags: tag a has been set twice"),
        ({"tags": "root.name=x"}, "invalid tags: root.name (a property of the trace's root span) is not supported"),
    ],
)  # fmt: skip
def test_search_errors(world: World, params: dict[str, Any], message: str) -> None:
    assert text_error(get(world, "/api/search", **params), 400).startswith(message)


# ------------------------------------------------------------------------------------------------------------
# Trace by id


def _fields(data: bytes) -> dict[int, bytes]:
    """The length-delimited fields of a protobuf message (a reader independent of any generated code)."""
    fields, i = {}, 0
    while i < len(data):
        key, i = _varint(data, i)
        number, wire = key >> 3, key & 7
        if wire == 2:
            length, i = _varint(data, i)
            fields[number], i = data[i : i + length], i + length
        elif wire == 0:
            _, i = _varint(data, i)
        else:
            raise AssertionError(f"unexpected wire type {wire}")
    return fields


def _varint(data: bytes, i: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[i]
        i += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, i


def span_names(traces: TracesData) -> list[str]:
    return sorted(s.name for r in traces.resource_spans for sc in r.scope_spans for s in sc.spans)


def test_grafana_reads_a_trace_as_protobuf(world: World) -> None:
    trace_id = world.traces["GET /checkout"]
    v2 = get(world, f"/api/v2/traces/{trace_id}", headers=PROTOBUF, start=START, end=END)
    assert v2.status_code == 200 and v2.headers["content-type"] == "application/protobuf"
    trace = TracesData.FromString(_fields(v2.content)[1])  # TraceByIDResponse.trace: Tempo's Trace, OTLP's wire
    assert span_names(trace) == ["GET /checkout", "POST /orders", "POST backend", "SELECT orders"]
    v1 = get(world, f"/api/traces/{trace_id}", headers=PROTOBUF)
    assert v1.status_code == 200 and v1.headers["content-type"] == "application/protobuf"
    assert TracesData.FromString(v1.content) == trace


def test_v2_trace_as_json(world: World) -> None:
    trace_id = world.traces["GET /checkout"]
    answer = get(world, f"/api/v2/traces/{trace_id}").json()
    assert set(answer) == {"trace", "metrics"}
    spans = [s for r in answer["trace"]["resourceSpans"] for sc in r["scopeSpans"] for s in sc["spans"]]
    root = next(span for span in spans if span["name"] == "GET /checkout")
    # Tempo's jsonpb: ids as base64, enums by name, 64-bit integers as strings.
    assert base64.b64decode(root["traceId"]).hex() == trace_id
    assert base64.b64decode(root["spanId"]).hex() == world.spans["GET /checkout"]
    assert root["kind"] == "SPAN_KIND_SERVER"
    assert root["startTimeUnixNano"] == str(CHECKOUT_START)


def test_the_shared_path_answers_jaeger_json_unless_protobuf_is_asked_for(world: World) -> None:
    trace_id = world.traces["GET /checkout"]
    jaeger = get(world, f"/api/traces/{trace_id}", headers={"Accept": "application/json"}).json()
    assert set(jaeger) == {"data", "total", "limit", "offset", "errors"}
    assert len(jaeger["data"][0]["spans"]) == 4


@pytest.mark.parametrize(
    ("path", "headers", "params", "status", "body"),
    [
        ("/api/traces/0000000000000000000000000000abcd", PROTOBUF, {}, 404, ""),
        ("/api/v2/traces/0000000000000000000000000000abcd", PROTOBUF, {}, 404, "trace not found\n"),
        ("/api/v2/traces/xyz", {}, {}, 400, 'a trace id is 1 to 32 hex digits, got "xyz"\n'),
        ("/api/traces/xyz", PROTOBUF, {}, 400, 'a trace id is 1 to 32 hex digits, got "xyz"\n'),
        ("/api/v2/traces/abcd", {}, {"mode": "sideways"}, 400, "invalid value for mode sideways\n"),
        ("/api/v2/traces/abcd", {}, {"start": 10, "end": 5}, 400,
         "http parameter start must be before end. received start=10 end=5\n"),
    ],
)  # fmt: skip
def test_trace_by_id_errors(
    world: World, path: str, headers: dict[str, str], params: dict[str, Any], status: int, body: str
) -> None:
    answer = get(world, path, headers=headers, **params)
    assert (answer.status_code, answer.text) == (status, body)


def test_a_window_outside_the_trace_finds_nothing(world: World) -> None:
    trace_id = world.traces["GET /checkout"]
    answer = get(world, f"/api/v2/traces/{trace_id}", start=START, end=START + 60)
    assert answer.status_code == 404


# ------------------------------------------------------------------------------------------------------------
# Tags and their values


def stored_keys(world: World, column: str, where: str = "true") -> list[str]:
    rows = store_rows(
        world,
        f"SELECT DISTINCT arrayJoin(mapKeys({column})) AS k FROM otel_traces WHERE Timestamp >= "
        f"fromUnixTimestamp({START}) AND Timestamp < fromUnixTimestamp({END}) AND {where} ORDER BY k",
    )
    return [row[0] for row in rows]


INTRINSICS = [
    "duration", "kind", "name", "status", "statusMessage",
    "span:duration", "span:kind", "span:name", "span:status", "span:statusMessage",
]  # fmt: skip


def test_tag_names_by_scope(world: World) -> None:
    span, resource = stored_keys(world, "SpanAttributes"), stored_keys(world, "ResourceAttributes")
    assert "db.system" in span and "service.name" in resource
    assert get(world, "/api/v2/search/tags", start=START, end=END).json() == {
        "scopes": [
            {"name": "span", "tags": span},
            {"name": "resource", "tags": resource},
            {"name": "intrinsic", "tags": INTRINSICS},
        ],
        "metrics": {"totalJobs": 1, "completedJobs": 1},
    }
    assert get(world, "/api/search/tags", start=START, end=END).json()["tagNames"] == sorted({*span, *resource})
    intrinsic = get(world, "/api/v2/search/tags", scope="intrinsic", start=START, end=END).json()["scopes"]
    assert intrinsic == [{"name": "intrinsic", "tags": INTRINSICS}]


def test_tag_names_narrowed_by_a_query(world: World) -> None:
    query = '{ resource.service.name = "db" }'
    answer = get(world, "/api/v2/search/tags", scope="span", q=query, start=START, end=END).json()
    assert answer["scopes"] == [{"name": "span", "tags": ["db.system", "tenant.id"]}]
    unfinished = get(world, "/api/v2/search/tags", scope="span", q='{ resource.service.name = "db" && ', start=START,
                     end=END).json()  # fmt: skip
    assert unfinished["scopes"] == [{"name": "span", "tags": stored_keys(world, "SpanAttributes")}]


def values(world: World, path: str, **params: Any) -> Any:
    answer = get(world, path, start=START, end=END, **params)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_tag_values(world: World) -> None:
    services = ["backend", "batch-job", "cron", "db", "frontend", "support-bot"]
    assert values(world, "/api/search/tag/service.name/values")["tagValues"] == services
    assert values(world, "/api/v2/search/tag/resource.service.name/values")["tagValues"] == [
        {"type": "string", "value": service} for service in services
    ]
    assert values(world, "/api/v2/search/tag/span.gen_ai.usage.input_tokens/values")["tagValues"] == [
        {"type": "int", "value": value} for value in ("10", "100", "200", "300", "50")
    ]
    assert values(world, "/api/v2/search/tag/status/values")["tagValues"] == [
        {"type": "keyword", "value": "unset"},
        {"type": "keyword", "value": "error"},
    ]
    assert [v["value"] for v in values(world, "/api/v2/search/tag/kind/values")["tagValues"]] == [
        "internal", "server", "client",
    ]  # fmt: skip
    named = values(world, "/api/v2/search/tag/name/values", q='{ resource.service.name = "frontend" }')
    assert named["tagValues"] == [
        {"type": "string", "value": "GET /checkout"},
        {"type": "string", "value": "POST backend"},
    ]
    assert "tagValues" not in values(world, "/api/v2/search/tag/duration/values")
    assert values(world, "/api/search/tag/service.name/values", limit=2)["tagValues"] == services[:2]


@pytest.mark.parametrize(
    ("path", "params", "message"),
    [
        ("/api/v2/search/tags", {"scope": "everything"}, "invalid scope: everything"),
        ("/api/v2/search/tag/event.x/values", {}, "please provide a valid tagName: unsupported TraceQL: event"),
        ("/api/v2/search/tag/span.a%20=%201/values", {}, "please provide a valid tagName: parse error"),
        ("/api/search/tags", {"start": "yesterday"}, "invalid start: expected Unix seconds"),
    ],
)
def test_tag_errors(world: World, path: str, params: dict[str, Any], message: str) -> None:
    assert text_error(get(world, path, **params), 400).startswith(message)


# ------------------------------------------------------------------------------------------------------------
# Echo and build information


def test_echo_and_buildinfo(world: World) -> None:
    echo = get(world, "/api/echo")
    assert (echo.status_code, echo.text) == (200, "echo\n")
    info = get(world, "/api/status/buildinfo").json()
    assert list(info) == ["version", "revision", "branch", "buildUser", "buildDate", "goVersion"]
    # Below 2.2.0, Grafana's Tempo data source leaves gRPC streaming off (grafana/grafana
    # public/app/plugins/datasource/tempo/datasource.ts, featuresToTempoVersion): it is not served here.
    assert info["version"] == "2.1.0"
    assert info["revision"].startswith("genai-collector ")


def test_reads_need_an_api_key(world: World) -> None:
    answer = httpx.get(world.base_url + "/api/search", params={"q": "{}"}, timeout=60)
    assert answer.status_code == 401


def test_a_tenant_key_searches_its_tenant_only(world: World) -> None:
    answer = get(world, "/api/search", key="globex", q="{}", start=START, end=END).json()
    assert [name_of(world, trace["traceID"]) for trace in answer["traces"]] == ["globex-support"]
    tenants = get(world, "/api/v2/search/tag/.tenant.id/values", key="acme", start=START, end=END).json()
    assert tenants["tagValues"] == [{"type": "string", "value": "acme"}]
    hidden = get(world, f"/api/v2/traces/{world.traces['invoke_agent support']}", key="globex")
    assert hidden.status_code == 404
    assert MINUTE  # the hour's traces all lie within START and END
