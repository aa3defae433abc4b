"""Jaeger's Remote Storage API v2 over gRPC, driven by a client written from jaeger-idl (storage_v2_client.py).

What the answers must be: jaegertracing/jaeger-idl proto/storage/v2/*.proto at 74be5630 (one TracesData per
trace and never empty, unknown ids skipped, FindTraceSummaries' fields, Capabilities), and how Jaeger's client
uses them: jaegertracing/jaeger internal/storage/v2/grpc/tracereader.go and capabilities.go at 8498073f.
"""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from opentelemetry.proto.trace.v1.trace_pb2 import Span, TracesData

from collector.extensions.api.jaeger.grpc import chunks
from tests.collector.extensions.api.compat_world import CHECKOUT_START, compat_world
from tests.collector.extensions.api.jaeger.storage_v2_client import StorageClient, new, spans_of, timestamp
from tests.collector.extensions.api.world import HOUR, HOUR_END, MINUTE, SECOND, World

HOUR_QUERY = {"start_time_min": timestamp(HOUR), "start_time_max": timestamp(HOUR_END)}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    yield from compat_world(tmp_path_factory.mktemp("remote-storage"))


@pytest.fixture(scope="module")
def channel(world: World) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(f"127.0.0.1:{world.api.grpc_port}") as opened:
        yield opened


def client(channel: grpc.Channel, world: World, key: str | None = "viewer") -> StorageClient:
    return StorageClient(channel, world.keys[key] if key else None)


def trace_ids(chunks_: list[TracesData]) -> list[str]:
    return list(dict.fromkeys(span.trace_id.hex() for span in spans_of(chunks_)))


def test_services_and_operations(channel: grpc.Channel, world: World) -> None:
    reader = client(channel, world)
    assert reader.get_services() == ["backend", "batch-job", "cron", "db", "frontend", "genai-proxy", "support-bot"]
    assert reader.get_operations("frontend") == [("GET /checkout", "server"), ("POST backend", "client")]
    assert reader.get_operations("frontend", "client") == [("POST backend", "client")]
    assert reader.get_operations("support-bot", "internal") == [
        ("execute_tool lookup", "internal"),
        ("invoke_agent support", "internal"),
    ]


def test_find_traces_streams_one_trace_per_message(channel: grpc.Channel, world: World) -> None:
    answer = client(channel, world).find_traces(service_name="support-bot", **HOUR_QUERY)
    assert [trace_ids([chunk]) for chunk in answer] == [
        [world.traces["chat gpt-4o globex"]],
        [world.traces["invoke_agent support"]],
    ]
    spans = {span.name: span for span in spans_of(answer)}
    tool = spans["execute_tool lookup"]
    assert tool.span_id.hex() == world.spans["execute_tool lookup"]
    assert tool.parent_span_id.hex() == world.spans["invoke_agent support"]
    assert tool.start_time_unix_nano == HOUR + MINUTE + 4 * SECOND
    assert tool.end_time_unix_nano == HOUR + MINUTE + 5 * SECOND
    assert tool.status.code == 2 and tool.status.message == "tool failed"
    assert tool.links[0].trace_id.hex() == f"{0x1234:032x}" and tool.links[0].span_id.hex() == f"{0x5678:016x}"
    chat = {kv.key: kv.value for kv in spans["chat gpt-4o"].attributes}
    assert chat["gen_ai.usage.input_tokens"].int_value == 100
    assert chat["gen_ai.request.temperature"].double_value == 0.5


def test_search_conditions_hold_on_one_span(channel: grpc.Channel, world: World) -> None:
    reader = client(channel, world)

    def found(**query: object) -> list[str]:
        return trace_ids(reader.find_traces(**HOUR_QUERY, **query))

    checkout, acme = world.traces["GET /checkout"], world.traces["invoke_agent support"]
    status_200 = new("KeyValue", key="http.response.status_code", value=new("AnyValue", int_value=200))
    assert found(attributes=[status_200]) == [checkout]  # a typed value compares as the text the store keeps
    assert found(service_name="db", operation_name="SELECT orders") == [checkout]
    assert found(service_name="db", operation_name="GET /checkout") == []  # not one span
    assert found(duration_min=timestamp(4 * SECOND)) == [world.traces["chat claude-3-5-sonnet"], acme]
    error = new("KeyValue", key="error", value=new("AnyValue", string_value="true"))
    assert found(attributes=[error], service_name="support-bot") == [world.traces["chat gpt-4o globex"], acme]
    assert found(search_depth=1) == [checkout]


def test_find_trace_ids_with_their_first_match(channel: grpc.Channel, world: World) -> None:
    answer = client(channel, world).find_trace_ids(service_name="frontend", **HOUR_QUERY)
    [found] = answer.trace_ids
    assert found.trace_id.hex() == world.traces["GET /checkout"]
    assert found.start.seconds * SECOND + found.start.nanos == CHECKOUT_START


def test_find_trace_summaries(channel: grpc.Channel, world: World) -> None:
    [response] = client(channel, world).find_trace_summaries(service_name="db", **HOUR_QUERY)
    [summary] = response.summaries
    assert summary.trace_id.hex() == world.traces["GET /checkout"]
    assert (summary.root_service_name, summary.root_operation_name) == ("frontend", "GET /checkout")
    assert (summary.min_start_time_unix_nano, summary.max_end_time_unix_nano) == (
        CHECKOUT_START,
        CHECKOUT_START + 2 * SECOND,
    )
    assert (summary.span_count, summary.error_span_count, summary.orphan_span_count) == (4, 1, 0)
    assert [(s.name, s.span_count, s.error_span_count) for s in summary.services] == [
        ("backend", 1, 1),
        ("db", 1, 0),
        ("frontend", 2, 0),
    ]
    assert client(channel, world).find_trace_summaries(service_name="nobody", **HOUR_QUERY) == []


def test_get_traces_skips_unknown_ids(channel: grpc.Channel, world: World) -> None:
    known = bytes.fromhex(world.traces["chat gpt-4o-mini"])
    answer = client(channel, world).get_traces(bytes(15) + b"\x01", known)
    assert trace_ids(answer) == [world.traces["chat gpt-4o-mini"]]
    assert sorted(span.name for span in spans_of(answer)) == ["chat gpt-4o-mini", "chat gpt-4o-mini app"]
    assert client(channel, world).get_traces(bytes(15) + b"\x01") == []


def test_dependencies(channel: grpc.Channel, world: World) -> None:
    reader = client(channel, world)
    assert reader.get_dependencies(timestamp(HOUR), timestamp(HOUR_END)) == [
        ("backend", "db", 1),
        ("frontend", "backend", 1),
    ]
    assert reader.get_dependencies(timestamp(HOUR), timestamp(HOUR + 45 * MINUTE)) == []


def test_capabilities(channel: grpc.Channel, world: World) -> None:
    search = client(channel, world).get_capabilities().search
    assert search.without_service_name and search.same_span_conjunction
    assert list(search.filter.levels) == [] and list(search.filter.operators) == []


def test_a_tenant_key_reads_its_tenant_only(channel: grpc.Channel, world: World) -> None:
    globex = client(channel, world, "globex")
    assert globex.get_services() == ["genai-proxy", "support-bot"]  # its call through the proxy, and its bot
    assert trace_ids(globex.find_traces(**HOUR_QUERY)) == [world.traces["chat gpt-4o globex"]]
    assert globex.get_traces(bytes.fromhex(world.traces["invoke_agent support"])) == []
    assert globex.get_dependencies(timestamp(HOUR), timestamp(HOUR_END)) == []
    acme = client(channel, world, "acme")
    assert "cron" not in acme.get_services() and "frontend" in acme.get_services()
    assert acme.get_dependencies(timestamp(HOUR), timestamp(HOUR_END)) == [
        ("backend", "db", 1),
        ("frontend", "backend", 1),
    ]


@pytest.mark.parametrize(
    ("key", "code", "message"),
    [
        (None, grpc.StatusCode.UNAUTHENTICATED, "an API key is required"),
        ("proxy", grpc.StatusCode.UNAUTHENTICATED, "the API key is not valid"),
    ],
)
def test_calls_need_an_api_key(
    channel: grpc.Channel, world: World, key: str | None, code: grpc.StatusCode, message: str
) -> None:
    with pytest.raises(grpc.RpcError) as refused:
        client(channel, world, key).get_services()
    assert refused.value.code() == code and message in refused.value.details()


def test_a_wrong_key_is_refused(channel: grpc.Channel, world: World) -> None:
    wrong = StorageClient(channel, "gca_000000000000_not-a-key")
    with pytest.raises(grpc.RpcError) as refused:
        wrong.find_traces(**HOUR_QUERY)
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"filter": b"\x0a\x02eq", **HOUR_QUERY}, "structured filters (TraceQueryParameters.filter) are not supported"),
        ({"start_time_min": timestamp(HOUR_END), "start_time_max": timestamp(HOUR)}, "must be before"),
        ({"search_depth": 100_000, **HOUR_QUERY}, "search_depth must be from 0 to"),
    ],
)
def test_queries_it_cannot_serve_are_invalid_arguments(
    channel: grpc.Channel, world: World, query: dict[str, object], message: str
) -> None:
    with pytest.raises(grpc.RpcError) as refused:
        client(channel, world).find_traces(**query)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT and message in refused.value.details()


def test_a_malformed_request_is_an_invalid_argument(channel: grpc.Channel, world: World) -> None:
    with pytest.raises(grpc.RpcError) as refused:
        client(channel, world).raw("TraceReader/GetOperations", b"\xff\xff\xff")
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_a_large_trace_is_split_into_consecutive_chunks() -> None:
    traces = TracesData()
    for service in ("a", "b"):
        resource = traces.resource_spans.add()
        resource.resource.attributes.add(key="service.name").value.string_value = service
        scope = resource.scope_spans.add()
        scope.scope.name = f"scope-{service}"
        for index in range(50):
            span = scope.spans.add(trace_id=b"\x01" * 16, span_id=index.to_bytes(8, "big"), name=f"{service}{index}")
            span.kind = Span.SPAN_KIND_SERVER
            span.attributes.add(key="payload").value.string_value = "x" * 1000
    parts = list(chunks(traces, max_bytes=10_000))
    assert len(parts) > 5
    assert all(part.ByteSize() <= 10_000 + 2_000 and part.resource_spans for part in parts)
    assert [span.name for span in spans_of(parts)] == [span.name for span in spans_of([traces])]
    for part in parts:
        for resource in part.resource_spans:
            service = resource.resource.attributes[0].value.string_value
            assert all(scope.scope.name == f"scope-{service}" for scope in resource.scope_spans)
            assert all(span.name.startswith(service) for scope in resource.scope_spans for span in scope.spans)
