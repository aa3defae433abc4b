"""The GenAI proxy in a process of its own (a collector with workers): calls, spans, counters, a crash, a drain."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import openai

from collector.component import ComponentID
from collector.runtime.proxy_process import ProxyProcess
from tests.collector.runtime.support import wait_until
from tests.conftest import RunningService, query_store
from tests.proxy.mock_upstream import MockUpstream, serve


def _config(store: Path, upstream: str) -> str:
    return f"""
receivers:
  genai_proxy:
    endpoint: 127.0.0.1:0
    upstreams:
      - name: openai
        kind: openai
        base_url: {upstream}/v1
processors:
  genai_normalize:
exporters:
  clickhouse:
    endpoint: chdb://{store}
    sending_queue:
      storage: memory
      batch:
        flush_timeout: 20ms
service:
  workers: 1
  pipelines:
    traces:
      receivers: [genai_proxy]
      processors: [genai_normalize]
      exporters: [clickhouse]
"""


def _process(collector: RunningService) -> ProxyProcess:
    receiver = collector.service.receivers[ComponentID.parse("genai_proxy")]
    process = receiver._process  # type: ignore[attr-defined]
    assert isinstance(process, ProxyProcess), "with workers, the proxy runs in a process of its own"
    return process


def _chat(port: int, content: str) -> str:
    client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="sk-test", max_retries=0)
    reply = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": content}])
    return reply.choices[0].message.content or ""


def test_calls_through_the_proxy_process_are_answered_counted_and_stored(tmp_path: Path) -> None:
    with serve(MockUpstream()) as upstream:
        collector = RunningService(_config(tmp_path / "store", upstream), tmp_path / "run")
        try:
            process = _process(collector)
            assert process._process is not None and process._process.pid != os.getpid()
            answers = [_chat(process.port, f"question {n}") for n in range(3)]
            telemetry = collector.service.telemetry
            requests = 'genai_proxy_requests_total{api="chat_completions",code="200",upstream="openai"} 3'
            # The child reports its counters as they move (every second), absorbed into the main registry.
            assert wait_until(lambda: requests in telemetry.render())
        finally:
            collector.stop()  # the child hands its last spans over before the pipeline stops
    assert all(answers)
    rows = query_store(tmp_path / "store", "SELECT SpanName, ServiceName FROM otel_traces ORDER BY SpanName")
    assert rows == [["chat gpt-4o-mini", "genai-proxy"]] * 3


def test_a_killed_proxy_process_is_started_again_on_the_same_port(tmp_path: Path) -> None:
    with serve(MockUpstream()) as upstream:
        collector = RunningService(_config(tmp_path / "store", upstream), tmp_path / "run")
        try:
            process = _process(collector)
            port = process.port
            assert _chat(port, "before")
            assert process._process is not None and process._process.pid is not None
            os.kill(process._process.pid, signal.SIGKILL)

            health = lambda: collector._call(collector.service.health())  # noqa: E731
            assert wait_until(lambda: "receiver genai_proxy: the proxy process is restarting" in health())
            assert wait_until(lambda: health() == [])
            assert process.port == port
            assert _chat(port, "after")
        finally:
            collector.stop()
    stored = query_store(tmp_path / "store", "SELECT count() FROM otel_traces")
    assert stored[0][0] >= 1  # the call after the restart; the one before may have died with its span queue
