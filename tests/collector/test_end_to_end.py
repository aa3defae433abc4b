"""OpenTelemetry SDK → OTLP (HTTP and gRPC) → collector → chDB, every field read back from otel_traces."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.proto.trace.v1.trace_pb2 import Span as ProtoSpan
from opentelemetry.proto.trace.v1.trace_pb2 import TracesData
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags

from tests.conftest import RunningService, collector_yaml, query_store
from tests.connectors.genai_metrics.support import emitted_and_exposed
from tests.exporters.clickhouse.http_fixture import FakeClickHouse
from tests.exporters.prometheus_text import parse_metrics, total_of

WAIT_SECONDS = 60.0
ENQUEUE_FAILED = "otelcol_exporter_enqueue_failed_spans"
COLUMNS = (
    "SpanName, SpanKind, ServiceName, ResourceAttributes, ScopeName, ScopeVersion, SpanAttributes, "
    "StatusCode, StatusMessage, Events.Name, Events.Attributes, Links.TraceId, Links.SpanId, "
    "Links.TraceState, Links.Attributes, TraceId, SpanId, ParentSpanId, Duration, TraceState, "
    "toUnixTimestamp64Nano(Timestamp), arrayMap(t -> toUnixTimestamp64Nano(t), Events.Timestamp)"
)


def _send_with_sdk(exporter: SpanExporter) -> tuple[int, int, int]:
    """Emit one parent and one child span; returns (trace_id, child span_id, parent span_id)."""
    provider = TracerProvider(
        resource=Resource.create({"service.name": "support-bot", "deployment.environment": "test"})
    )
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("opentelemetry.instrumentation.openai_v2", "2.1b0")
    linked = SpanContext(trace_id=0xABC, span_id=0xDEF, is_remote=True, trace_flags=TraceFlags(1))
    with tracer.start_as_current_span("invoke_agent support", kind=SpanKind.INTERNAL) as parent:
        with tracer.start_as_current_span(
            "chat gpt-4o-mini",
            kind=SpanKind.CLIENT,
            links=[Link(linked, {"link.kind": "retry-of"})],
            attributes={
                "gen_ai.request.model": "gpt-4o-mini",
                "gen_ai.usage.input_tokens": 120,
                "gen_ai.request.temperature": 0.25,
                "gen_ai.request.stream": True,
                "gen_ai.response.finish_reasons": ("stop", "length"),
                "gen_ai.request.stop_sequences_count": (1, 2),
            },
        ) as child:
            child.add_event("gen_ai.choice", {"index": 0, "finish_reason": "stop"})
            child.set_status(Status(StatusCode.ERROR, "rate limited upstream"))
            ids = (
                child.get_span_context().trace_id,
                child.get_span_context().span_id,
                parent.get_span_context().span_id,
            )
    provider.shutdown()
    return ids


@pytest.mark.parametrize("transport", ["http", "grpc"])
def test_sdk_spans_land_in_otel_traces_with_every_field(transport: str, chdb_path: Path, tmp_path: Path) -> None:
    collector = RunningService(collector_yaml(chdb_path), tmp_path)
    try:
        port = collector.port("otlp", transport)
        exporter: SpanExporter
        if transport == "http":
            exporter = HttpSpanExporter(endpoint=f"http://127.0.0.1:{port}/v1/traces")
        else:
            exporter = GrpcSpanExporter(endpoint=f"127.0.0.1:{port}", insecure=True)
        trace_id, span_id, parent_id = _send_with_sdk(exporter)
    finally:
        collector.stop()

    rows = query_store(chdb_path, f"SELECT {COLUMNS} FROM otel_traces ORDER BY SpanName")
    assert [r[0] for r in rows] == ["chat gpt-4o-mini", "invoke_agent support"]
    child = dict(zip(COLUMNS.split(", ")[:20], rows[0][:20], strict=True))
    assert child["SpanKind"] == "Client"
    assert child["ServiceName"] == "support-bot"
    resource = child["ResourceAttributes"]
    assert resource["service.name"] == "support-bot"
    assert resource["deployment.environment"] == "test"
    assert resource["telemetry.sdk.language"] == "python"
    assert child["ScopeName"] == "opentelemetry.instrumentation.openai_v2"
    assert child["ScopeVersion"] == "2.1b0"
    assert child["SpanAttributes"] == {
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.usage.input_tokens": "120",
        "gen_ai.request.temperature": "0.25",
        "gen_ai.request.stream": "true",
        "gen_ai.response.finish_reasons": '["stop","length"]',
        "gen_ai.request.stop_sequences_count": "[1,2]",
    }
    assert child["StatusCode"] == "Error"
    assert child["StatusMessage"] == "rate limited upstream"
    assert child["Events.Name"] == ["gen_ai.choice"]
    assert child["Events.Attributes"] == [{"index": "0", "finish_reason": "stop"}]
    assert child["Links.TraceId"] == [f"{0xABC:032x}"]
    assert child["Links.SpanId"] == [f"{0xDEF:016x}"]
    assert child["Links.Attributes"] == [{"link.kind": "retry-of"}]
    assert child["TraceId"] == f"{trace_id:032x}"
    assert child["SpanId"] == f"{span_id:016x}"
    assert child["ParentSpanId"] == f"{parent_id:016x}"
    assert rows[1][17] == ""  # the root span has no parent
    assert child["Duration"] > 0
    start_ns, event_times = rows[0][20], rows[0][21]
    assert start_ns > 1_600_000_000 * 10**9
    assert len(event_times) == 1 and event_times[0] >= start_ns


def _every_field_request() -> TracesData:
    """A request with what the SDK cannot produce: kvlist and bytes values, trace state, nanosecond times."""
    traces = TracesData()
    rs = traces.resource_spans.add()
    rs.resource.attributes.add(key="service.name").value.string_value = "raw-client"
    rs.resource.attributes.add(key="host.cores").value.int_value = 2
    ss = rs.scope_spans.add()
    ss.scope.name, ss.scope.version = "raw", "1.0"
    span = ss.spans.add(
        trace_id=bytes(range(16)),
        span_id=bytes(range(8)),
        parent_span_id=bytes(range(8, 16)),
        trace_state="vendor=value",
        name="execute_tool get_weather",
        kind=ProtoSpan.SPAN_KIND_SERVER,
        start_time_unix_nano=1_700_000_000_123_456_789,
        end_time_unix_nano=1_700_000_002_123_456_790,
    )
    span.status.code, span.status.message = 1, ""
    attrs = span.attributes
    attrs.add(key="s").value.string_value = "text"
    attrs.add(key="b").value.bool_value = False
    attrs.add(key="i").value.int_value = -7
    attrs.add(key="d").value.double_value = 1e21
    attrs.add(key="bytes").value.bytes_value = b"\x00\xffraw"
    array = attrs.add(key="arr").value.array_value
    array.values.add().string_value = "x"
    array.values.add().int_value = 3
    kvlist = attrs.add(key="kv").value.kvlist_value
    kvlist.values.add(key="z").value.bool_value = True
    kvlist.values.add(key="a").value.double_value = 0.5
    attrs.add(key="empty")
    event = span.events.add(time_unix_nano=1_700_000_001_000_000_001, name="tool.result")
    event.attributes.add(key="size").value.int_value = 42
    link = span.links.add(trace_id=bytes(range(16, 32)), span_id=bytes(range(16, 24)), trace_state="k=v")
    link.attributes.add(key="why").value.string_value = "follows"
    return traces


def test_raw_otlp_protobuf_keeps_kvlist_bytes_and_nanoseconds(chdb_path: Path, tmp_path: Path) -> None:
    collector = RunningService(collector_yaml(chdb_path), tmp_path)
    try:
        body = _every_field_request().SerializeToString()
        response = httpx.post(
            f"http://127.0.0.1:{collector.port()}/v1/traces",
            content=body,
            headers={"Content-Type": "application/x-protobuf"},
        )
        assert response.status_code == 200
    finally:
        collector.stop()
    (row,) = query_store(chdb_path, f"SELECT {COLUMNS} FROM otel_traces")
    assert row[1] == "Server"
    assert row[2] == "raw-client"
    assert row[3] == {"service.name": "raw-client", "host.cores": "2"}
    assert (row[4], row[5]) == ("raw", "1.0")
    assert row[6] == {
        "s": "text",
        "b": "false",
        "i": "-7",
        "d": "1000000000000000000000",
        "bytes": base64.b64encode(b"\x00\xffraw").decode(),
        "arr": '["x",3]',
        "kv": json.dumps({"a": 0.5, "z": True}, separators=(",", ":")),
        "empty": "",
    }
    assert row[7] == "Ok"
    assert row[9] == ["tool.result"] and row[10] == [{"size": "42"}]
    assert row[11] == [bytes(range(16, 32)).hex()] and row[12] == [bytes(range(16, 24)).hex()]
    assert row[13] == ["k=v"] and row[14] == [{"why": "follows"}]
    assert (row[15], row[16], row[17]) == (bytes(range(16)).hex(), bytes(range(8)).hex(), bytes(range(8, 16)).hex())
    assert row[18] == 2_000_000_001
    assert row[19] == "vendor=value"
    assert row[20] == 1_700_000_000_123_456_789
    assert row[21] == [1_700_000_001_000_000_001]


def test_trace_id_lookup_table_is_filled_by_its_materialized_view(
    running_collector: RunningService, chdb_path: Path
) -> None:
    traces = _every_field_request()
    response = httpx.post(
        f"http://127.0.0.1:{running_collector.port()}/v1/traces",
        content=traces.SerializeToString(),
        headers={"Content-Type": "application/x-protobuf"},
    )
    assert response.status_code == 200
    running_collector.stop()
    rows = query_store(
        chdb_path, "SELECT TraceId, toUnixTimestamp(Start), toUnixTimestamp(End) FROM otel_traces_trace_id_ts"
    )
    assert rows == [[bytes(range(16)).hex(), 1_700_000_000, 1_700_000_000]]


def _chat_spans(count: int) -> list[ReadableSpan]:
    """``count`` chat calls as the openai instrumentation records them, made by the SDK."""
    recorded = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "support-bot"}))
    provider.add_span_processor(SimpleSpanProcessor(recorded))
    tracer = provider.get_tracer("opentelemetry.instrumentation.openai_v2", "2.1b0")
    for _ in range(count):
        attributes = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai"}
        with tracer.start_as_current_span("chat gpt-4o-mini", kind=SpanKind.CLIENT, attributes=attributes) as span:
            span.set_attribute("gen_ai.request.model", "gpt-4o-mini")
            span.set_attribute("gen_ai.usage.input_tokens", 10)
    provider.shutdown()
    return list(recorded.get_finished_spans())


def _calls_counted(collector: RunningService) -> float:
    samples, _ = parse_metrics(emitted_and_exposed(collector))
    return total_of(samples, "gen_ai_client_inference_duration_seconds_count")


def test_a_batch_the_store_queue_refused_is_counted_once_when_the_sdk_sends_it_again(
    chdb_path: Path, tmp_path: Path
) -> None:
    first, second = _chat_spans(4), _chat_spans(3)
    with FakeClickHouse(chdb_path, stall_inserts=1) as server:
        config = f"""
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:0
exporters:
  clickhouse:
    endpoint: {server.url}
    database: otel
    timeout: 60s
    sending_queue:
      storage: memory
      queue_size: {len(first)}   # the first request fills it while its insert is held
      batch:
        min_size: 1
        flush_timeout: 10ms
  prometheus:
    endpoint: 127.0.0.1:0
connectors:
  genai_metrics:
service:
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [clickhouse, genai_metrics]
    metrics:
      receivers: [genai_metrics]
      exporters: [prometheus]
"""
        collector = RunningService(config, tmp_path)
        try:
            exporter = HttpSpanExporter(endpoint=f"http://127.0.0.1:{collector.port()}/v1/traces", timeout=60)
            assert exporter.export(first) is SpanExportResult.SUCCESS
            assert server.wait_for_inserts(1, WAIT_SECONDS)  # in the store, its answer held: the queue stays full
            results: list[SpanExportResult] = []
            retrying = threading.Thread(target=lambda: results.append(exporter.export(second)))
            retrying.start()
            telemetry = collector.service.telemetry
            assert _wait(lambda: telemetry.value(ENQUEUE_FAILED, exporter="clickhouse") >= len(second))
            refused_so_far = _calls_counted(collector)
            server.release_stalled()  # the queue empties; the SDK's next try is accepted
            retrying.join(WAIT_SECONDS)
            counted = _calls_counted(collector)
        finally:
            collector.stop()
        stored = httpx.get(server.url, params={"query": "SELECT count() FROM otel.otel_traces"}).text

    assert results == [SpanExportResult.SUCCESS]
    assert refused_so_far == len(first)  # the refused request was not counted
    assert counted == len(first) + len(second)  # nor counted twice once it was sent again
    assert int(stored) == len(first) + len(second)


def _wait(condition: Callable[[], bool]) -> bool:
    """Whether ``condition()`` became true within WAIT_SECONDS (a counter in another thread, with no event)."""
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return False
