"""The pipeline tap: what a pipeline's exporters accepted reaches listeners, after the processors; what they
refused does not; a listener that fails never fails the pipeline."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from collector.component import TracesData
from collector.errors import RetryableError
from collector.tap import PipelineTap, TappedConsumer
from tests.conftest import RunningService, make_traces

CONFIG = """
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:0
processors:
  genai_normalize:
exporters:
  debug:
    verbosity: basic
service:
  pipelines:
    traces:
      receivers: [otlp]
      processors: [genai_normalize]
      exporters: [debug]
"""


def _post(collector: RunningService, traces: TracesData) -> None:
    answer = httpx.post(
        f"http://127.0.0.1:{collector.port()}/v1/traces",
        content=traces.SerializeToString(),
        headers={"Content-Type": "application/x-protobuf"},
        timeout=30,
    )
    assert answer.status_code == 200


def test_listeners_get_accepted_batches_and_a_failing_listener_is_harmless(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    collector = RunningService(CONFIG, tmp_path)
    seen: list[TracesData] = []

    def broken(traces: TracesData) -> None:
        raise RuntimeError("listener bug")

    try:
        unsubscribe = collector.service.tap.subscribe(seen.append)
        collector.service.tap.subscribe(broken)
        sent = make_traces(2)
        sent.resource_spans[0].scope_spans[0].spans[0].attributes.add(key="gen_ai.system").value.string_value = "openai"
        _post(collector, sent)
        unsubscribe()
        unsubscribe()  # twice is harmless
        _post(collector, make_traces(1))
    finally:
        collector.stop()
    assert [len(t.resource_spans[0].scope_spans[0].spans) for t in seen] == [2]
    # After the processors: genai_normalize has renamed the deprecated attribute.
    keys = {kv.key for kv in seen[0].resource_spans[0].scope_spans[0].spans[0].attributes}
    assert "gen_ai.provider.name" in keys and "gen_ai.system" not in keys
    assert "a pipeline tap listener failed" in caplog.text


def test_a_refused_batch_is_not_published() -> None:
    class Refusing:
        async def consume(self, traces: TracesData) -> None:
            raise RetryableError("queue full")

    tap = PipelineTap()
    seen: list[TracesData] = []
    tap.subscribe(seen.append)
    with pytest.raises(RetryableError):
        asyncio.run(TappedConsumer(Refusing(), tap).consume(make_traces(1)))
    assert seen == []
