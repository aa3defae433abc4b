"""The genai_proxy receiver inside the collector: an SDK call through it lands as a GenAI span in chDB."""

from __future__ import annotations

from pathlib import Path

import openai

from tests.conftest import RunningService, query_store
from tests.proxy.mock_upstream import MockUpstream, serve


def _config(chdb_dir: Path, upstream_url: str) -> str:
    return f"""
receivers:
  genai_proxy:
    endpoint: 127.0.0.1:0
    capture_content: true
    upstreams:
      - name: openai
        kind: openai
        base_url: {upstream_url}/v1
        models: ["gpt-*"]
exporters:
  clickhouse:
    endpoint: chdb://{chdb_dir}
    sending_queue:
      batch:
        flush_timeout: 50ms
service:
  pipelines:
    traces:
      receivers: [genai_proxy]
      exporters: [clickhouse]
"""


def test_a_streamed_call_through_the_receiver_is_stored_with_its_usage(chdb_path: Path, tmp_path: Path) -> None:
    mock = MockUpstream()
    with serve(mock) as url:
        service = RunningService(_config(chdb_path, url), tmp_path)
        try:
            port = service.service.receivers[next(iter(service.service.receivers))].port  # type: ignore[attr-defined]
            client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="sk-x", max_retries=0)
            stream = client.chat.completions.create(
                model="gpt-4o-mini",
                messages=[{"role": "user", "content": "Name a color."}],
                stream=True,
                stream_options={"include_usage": True},
            )
            usage = [chunk.usage for chunk in stream if chunk.usage][0]
        finally:
            service.stop()  # drains the proxy's spans into the pipeline, then the store

    rows = query_store(
        chdb_path,
        "SELECT SpanName, SpanKind, ServiceName, SpanAttributes['gen_ai.provider.name'], "
        "SpanAttributes['gen_ai.usage.input_tokens'], SpanAttributes['gen_ai.usage.output_tokens'], "
        "SpanAttributes['gen_ai.request.stream'], length(SpanAttributes['gen_ai.output.messages']) > 0 "
        "FROM otel_traces",
    )
    assert rows == [
        [
            "chat gpt-4o-mini",
            "Client",
            "genai-proxy",
            "openai",
            str(usage.prompt_tokens),
            str(usage.completion_tokens),
            "true",
            True,
        ]
    ]
