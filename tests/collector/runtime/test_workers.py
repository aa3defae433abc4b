"""Worker processes in a running collector: the same results as one process, errors in OTLP's terms, backpressure,
a worker killed mid-load, and a proxied stream that does not wait for a batch held in a worker.

Every test runs real worker processes (forked from the fork server) behind a collector serving OTLP/HTTP into chDB.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from opentelemetry.proto.metrics.v1.metrics_pb2 import MetricsData
from opentelemetry.proto.trace.v1.trace_pb2 import TracesData

from collector.component import ComponentID
from collector.pipeline_graph import ConnectorInstance
from collector.runtime import pool as pool_module
from collector.runtime.generated_metrics import COLLECTOR_WORKER_REFUSED_SPANS, COLLECTOR_WORKER_RESTARTS
from collector.runtime.pool import WorkerPool
from tests.collector.runtime.gate import CRASH, HOLD, REFUSE, registry_with_gate
from tests.collector.runtime.support import WAIT_SECONDS, wait_until
from tests.conftest import RunningService, make_traces, query_store
from tests.data import agent_traces
from tests.proxy.mock_upstream import MockUpstream, serve

PROTOBUF = {"Content-Type": "application/x-protobuf"}
GENAI_PROCESSORS = "genai_normalize, genai_dedup, genai_cost, genai_security, genai_loop_detection"


def _config(store: Path, workers: int, processors: str = GENAI_PROCESSORS, gate: str = "", upstream: str = "") -> str:
    proxy = (
        f"""
  genai_proxy:
    endpoint: 127.0.0.1:0
    upstreams:
      - name: openai
        kind: openai
        base_url: {upstream}/v1"""
        if upstream
        else ""
    )
    return f"""
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:0{proxy}
processors:
  genai_normalize:
  genai_dedup:
  genai_cost:
  genai_security:
    actions:
      secret: mask
  genai_loop_detection:
  gate:
    fifo: "{gate}"
exporters:
  clickhouse:
    endpoint: chdb://{store}
    sending_queue:
      storage: memory
      batch:
        flush_timeout: 20ms
  debug:
    verbosity: basic
connectors:
  genai_metrics:
service:
  workers: {workers}
  pipelines:
    traces:
      receivers: [otlp{", genai_proxy" if upstream else ""}]
      processors: [{processors}]
      exporters: [clickhouse, genai_metrics]
    metrics:
      receivers: [genai_metrics]
      exporters: [debug]
"""


def _post(collector: RunningService, batch: TracesData) -> httpx.Response:
    url = f"http://127.0.0.1:{collector.port()}/v1/traces"
    return httpx.post(url, content=batch.SerializeToString(), headers=PROTOBUF, timeout=WAIT_SECONDS)


def _pool(collector: RunningService) -> WorkerPool:
    pool = collector.service._pool
    assert pool is not None
    return pool


def _genai_metrics(collector: RunningService) -> bytes:
    """What the genai_metrics connector would emit now, its times left out (they differ from run to run)."""
    instance = ConnectorInstance(ComponentID.parse("genai_metrics"), "traces", "metrics")
    metrics: MetricsData = collector.service.connectors[instance].metrics_data()  # type: ignore[attr-defined]
    for metric in metrics.resource_metrics[0].scope_metrics[0].metrics:
        for point in (*metric.sum.data_points, *metric.histogram.data_points):
            point.start_time_unix_nano = point.time_unix_nano = 0
    return metrics.SerializeToString()


def _stored(store: Path) -> list[Any]:
    """Every stored span as its name, attributes and events: what the processors made of it."""
    rows = query_store(
        store,
        "SELECT TraceId, SpanId, SpanName, toString(SpanAttributes), toString(Events.Name), "
        "toString(Events.Attributes) FROM otel_traces ORDER BY TraceId, SpanId",
    )
    return [row for row in rows if row[2] != "gen_ai.security.finding"]  # late findings get fresh span ids


def _agent_batches() -> list[TracesData]:
    """Every recorded agent trace, each split into three requests out of order, as exporters send them."""
    batches = []
    for recording in agent_traces.manifest():
        for part in agent_traces.split_shuffled(agent_traces.load(recording.name), parts=3, seed=11):
            batch = TracesData()
            batch.resource_spans.extend(part.resource_spans)
            batches.append(batch)
    return batches


def test_workers_make_of_every_span_what_one_process_makes(tmp_path: Path) -> None:
    results = {}
    for workers in (0, 2):
        store = tmp_path / f"store-{workers}"
        collector = RunningService(_config(store, workers), tmp_path / f"run-{workers}", registry_with_gate())
        try:
            if workers:
                assert len(_pool(collector).pids()) == 2
            for batch in _agent_batches():
                assert _post(collector, batch).status_code == 200
            metrics = _genai_metrics(collector)
        finally:
            collector.stop()
        results[workers] = (_stored(store), metrics)

    in_process, in_workers = results[0], results[2]
    assert len(in_process[0]) > 100
    assert in_workers[0] == in_process[0]
    assert in_workers[1] == in_process[1]
    assert "gen_ai.security.finding" in str(in_process[0])  # the loops were found, by both


@pytest.fixture
def gated(tmp_path: Path) -> Iterator[tuple[RunningService, Path]]:
    fifo = tmp_path / "gate"
    os.mkfifo(fifo)
    collector = RunningService(
        _config(tmp_path / "store", 1, processors="gate", gate=str(fifo)), tmp_path / "run", registry_with_gate()
    )
    try:
        yield collector, fifo
    finally:
        collector.stop()


def _open_gate(fifo: Path) -> None:
    with fifo.open("wb") as gate:  # blocks until the worker waits at the gate
        gate.write(b"x")


def test_a_processor_refusing_in_a_worker_is_answered_as_in_one_process(gated: tuple[RunningService, Path]) -> None:
    collector, _ = gated
    refused = _post(collector, make_traces(3, name=REFUSE))
    assert refused.status_code == 400  # permanent: the client drops it
    crashed = _post(collector, make_traces(3, name=CRASH))
    assert crashed.status_code == 503  # a bug: the client keeps its data and retries
    assert _pool(collector).pids()  # the worker survived both


def test_a_worker_holding_too_much_pushes_back(
    gated: tuple[RunningService, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    collector, fifo = gated
    held = make_traces(20, name=HOLD)
    monkeypatch.setattr(pool_module, "MAX_BYTES_IN_FLIGHT", held.ByteSize() + 10)
    answers: list[int] = []
    first = threading.Thread(target=lambda: answers.append(_post(collector, held).status_code))
    first.start()
    pool = _pool(collector)
    # The first batch is at the gate; the worker holds its bytes.
    assert wait_until(lambda: pool._workers[0].bytes_in_flight > 0)
    refused = _post(collector, make_traces(20))
    assert refused.status_code == 503
    assert refused.headers["Retry-After"] == "1"
    _open_gate(fifo)
    first.join(WAIT_SECONDS)
    assert answers == [200]
    assert collector.service.telemetry.value(COLLECTOR_WORKER_REFUSED_SPANS.name, reason="in_flight") == 20


def test_a_killed_worker_fails_what_it_held_for_retry_and_comes_back(gated: tuple[RunningService, Path]) -> None:
    collector, fifo = gated
    pool = _pool(collector)
    (pid,) = pool.pids()
    answers: list[int] = []
    held = threading.Thread(target=lambda: answers.append(_post(collector, make_traces(5, name=HOLD)).status_code))
    held.start()
    assert wait_until(lambda: pool._workers[0].bytes_in_flight > 0)

    os.kill(pid, signal.SIGKILL)
    held.join(WAIT_SECONDS)

    assert answers == [503]  # not acknowledged: the client sends it again
    # Until it is back (after a pause), /health says so.
    assert wait_until(lambda: "workers: worker 0 is restarting" in collector._call(collector.service.health()))
    assert wait_until(lambda: collector.service.telemetry.value(COLLECTOR_WORKER_RESTARTS.name, worker="0") == 1)
    assert pool.pids() and pool.pids() != [pid]
    assert _post(collector, make_traces(5)).status_code == 200


def test_a_proxied_stream_does_not_wait_for_a_batch_held_in_a_worker(tmp_path: Path) -> None:
    fifo = tmp_path / "gate"
    os.mkfifo(fifo)
    with serve(MockUpstream()) as upstream:
        config = _config(tmp_path / "store", 1, processors="gate", gate=str(fifo), upstream=upstream)
        collector = RunningService(config, tmp_path / "run", registry_with_gate())
        try:
            answers: list[int] = []
            big = threading.Thread(
                target=lambda: answers.append(_post(collector, make_traces(2000, name=HOLD)).status_code)
            )
            big.start()
            pool = _pool(collector)
            assert wait_until(lambda: pool._workers[0].bytes_in_flight > 0)

            port = collector.service.receivers[ComponentID.parse("genai_proxy")].port  # type: ignore[attr-defined]
            client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="sk-test", max_retries=0)
            stream = client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], stream=True
            )
            chunks = [chunk for chunk in stream]

            # The whole stream arrived while the batch was still held: nothing on the proxy's path waited for it.
            assert pool._workers[0].bytes_in_flight > 0 and not answers
            assert chunks and chunks[-1].choices[0].finish_reason == "stop"
            _open_gate(fifo)
            big.join(WAIT_SECONDS)
            assert answers == [200]
        finally:
            collector.stop()
