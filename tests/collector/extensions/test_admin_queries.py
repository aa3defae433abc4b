"""POST /query on a running collector with chDB: its own query pool, 503 when full, cancelled when the caller leaves,
and ingest that goes on while every query thread is busy."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from collector.component import ComponentID
from collector.query.generated_metrics import QUERIES_CANCELLED, QUERIES_REFUSED
from collector.query.pool import QueryPool
from exporters.clickhouse.store import ClickHouseStore
from tests.conftest import RunningService

WAIT = 30.0
SLOW = "SELECT count() FROM numbers(1000000000000) WHERE sipHash64(number) = 1"


def config(chdb_dir: Path) -> str:
    return f"""
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:0
      http:
        endpoint: 127.0.0.1:0
exporters:
  clickhouse:
    endpoint: chdb://{chdb_dir}
    sending_queue:
      batch:
        flush_timeout: 50ms
    query_limits:
      max_concurrent_queries: 2
      max_queued_queries: 1
      max_execution_time: 120s
extensions:
  admin:
    endpoint: 127.0.0.1:0
service:
  extensions: [admin]
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [clickhouse]
"""


@pytest.fixture
def collector(chdb_path: Path, tmp_path: Path) -> Iterator[RunningService]:
    service = RunningService(config(chdb_path), tmp_path)
    try:
        yield service
    finally:
        service.stop()


def query_pool(collector: RunningService) -> QueryPool:
    store = collector.service.exporters[ComponentID.parse("clickhouse")].sender  # type: ignore[attr-defined]
    assert isinstance(store, ClickHouseStore)
    return store.reader.pool


class Caller:
    """A client that posts a query over a raw socket and can hang up without reading the answer."""

    def __init__(self, collector: RunningService, sql: str) -> None:
        port = collector.admin_port()
        body = httpx.Request("POST", "http://x/query", json={"sql": sql}).read()
        self.socket = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
        authorization = collector.admin_headers()["Authorization"]
        head = (
            f"POST /query HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
            f"Authorization: {authorization}\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        self.socket.sendall(head.encode() + body)

    def hang_up(self) -> None:
        self.socket.close()


def test_a_query_stops_when_its_caller_disconnects(collector: RunningService) -> None:
    pool = query_pool(collector)
    caller = Caller(collector, SLOW)
    assert pool.wait_until(lambda p: p.running == 1, WAIT)
    caller.hang_up()
    assert pool.wait_until(lambda p: p.running == 0, WAIT)
    assert collector.service.telemetry.value(QUERIES_CANCELLED.name, exporter="clickhouse") == 1
    metrics = httpx.get(
        f"http://127.0.0.1:{collector.admin_port()}/metrics", headers=collector.admin_headers()
    ).text
    assert 'genai_queries_cancelled_total{exporter="clickhouse"} 1' in metrics
    assert 'genai_queries_running{exporter="clickhouse"} 0' in metrics


def _spans() -> list[object]:
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    with provider.get_tracer("app").start_as_current_span("chat gpt-4o") as span:
        span.set_attribute("gen_ai.request.model", "gpt-4o")
    provider.shutdown()
    return list(memory.get_finished_spans())


def test_ingest_goes_on_while_every_query_thread_is_busy(collector: RunningService) -> None:
    pool = query_pool(collector)
    admin = f"http://127.0.0.1:{collector.admin_port()}"
    callers = [Caller(collector, SLOW) for _ in range(3)]
    try:
        assert pool.wait_until(lambda p: p.running == 2 and p.queued == 1, WAIT)
        refused = httpx.post(
            f"{admin}/query", json={"sql": "SELECT 1"}, headers=collector.admin_headers(), timeout=WAIT
        )
        assert refused.status_code == 503
        assert refused.headers["Retry-After"] == "5"
        assert refused.json() == {"error": "too many queries: 2 running and 1 waiting; try again later"}
        assert collector.service.telemetry.value(QUERIES_REFUSED.name, exporter="clickhouse") == 1

        http = HttpSpanExporter(endpoint=f"http://127.0.0.1:{collector.port('otlp', 'http')}/v1/traces", timeout=10)
        grpc = GrpcSpanExporter(endpoint=f"127.0.0.1:{collector.port('otlp', 'grpc')}", insecure=True, timeout=10)
        for _ in range(5):
            assert http.export(_spans()) is SpanExportResult.SUCCESS  # type: ignore[arg-type]
            assert grpc.export(_spans()) is SpanExportResult.SUCCESS  # type: ignore[arg-type]
        http.shutdown()
        grpc.shutdown()
        assert pool.running == 2  # the queries were busy all along
    finally:
        for caller in callers:
            caller.hang_up()
    assert pool.wait_until(lambda p: p.running == 0 and p.queued == 0, WAIT)
    # The slots are free again: the next query runs.
    assert httpx.post(
        f"{admin}/query", json={"sql": "SELECT 1 AS one"}, headers=collector.admin_headers(), timeout=WAIT
    ).json()["rows"] == [[1]]
