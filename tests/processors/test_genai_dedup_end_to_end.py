"""An instrumented app's calls through the proxy, into one collector: each call counted once, both spans kept.

The app (tests/processors/app_through_proxy.py: the openai SDK, the openai-v2
instrumentation, the OpenTelemetry SDK's OTLP exporter) sends its spans to the
collector's OTLP receiver; its calls go through the collector's genai_proxy
receiver to the mock upstream, which records them again. genai_dedup marks
one span of each pair; genai_calls, the hourly rollup and the Prometheus
metrics then count each call once.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from collector.component import ComponentID
from tests.conftest import REPO_ROOT, RunningService, query_store
from tests.connectors.genai_metrics.support import exposed
from tests.exporters.prometheus_text import parse_metrics, total_of
from tests.proxy.mock_upstream import MockUpstream, serve

CALLS = 3  # a chat call, a streamed chat call, an embeddings call


def _config(chdb_dir: Path, upstream_url: str) -> str:
    return f"""
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:0
  genai_proxy:
    endpoint: 127.0.0.1:0
    upstreams:
      - name: openai
        kind: openai
        base_url: {upstream_url}/v1
processors:
  genai_normalize:
  genai_dedup:
  genai_cost:
exporters:
  clickhouse:
    endpoint: chdb://{chdb_dir}
    sending_queue:
      batch:
        flush_timeout: 50ms
  prometheus:
    endpoint: 127.0.0.1:0
connectors:
  genai_metrics:
service:
  pipelines:
    traces:
      receivers: [otlp, genai_proxy]
      processors: [genai_normalize, genai_dedup, genai_cost]
      exporters: [clickhouse, genai_metrics]
    metrics:
      receivers: [genai_metrics]
      exporters: [prometheus]
"""


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The store after the app ran, and the /metrics text of the Prometheus exporter genai_metrics feeds."""
    work = tmp_path_factory.mktemp("genai-dedup")
    chdb_dir = work / "clickhouse"
    with serve(MockUpstream()) as upstream:
        collector = RunningService(_config(chdb_dir, upstream), work)
        try:
            proxy = collector.service.receivers[ComponentID("genai_proxy")]
            result = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "tests.processors.app_through_proxy",
                    f"http://127.0.0.1:{proxy.port}",  # type: ignore[attr-defined]
                    f"http://127.0.0.1:{collector.port()}/v1/traces",
                ],
                cwd=REPO_ROOT,
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert result.returncode == 0, result.stderr
        finally:
            collector.stop()  # drains the proxy's spans and the queues
        metrics = exposed(collector)  # what the connector flushed at shutdown
    return chdb_dir, metrics


def _rows(chdb_dir: Path, sql: str) -> list[list[Any]]:
    return query_store(chdb_dir, sql)


def test_both_spans_of_every_call_are_kept_and_one_of_each_pair_is_marked(stored: tuple[Path, str]) -> None:
    chdb_dir, _ = stored
    spans = _rows(
        chdb_dir,
        "SELECT ServiceName, SpanId, ParentSpanId, SpanAttributes['gen_ai.call.duplicate_of'] FROM otel_traces "
        "WHERE SpanAttributes['gen_ai.operation.name'] IN ('chat', 'embeddings') ORDER BY Timestamp",
    )
    by_service = {
        service: [row for row in spans if row[0] == service] for service in ("app-through-proxy", "genai-proxy")
    }
    assert [len(rows) for rows in by_service.values()] == [CALLS, CALLS]
    app_ids = {row[1] for row in by_service["app-through-proxy"]}
    # Every proxy span is the child of the app's span of the same call (traceparent).
    assert {row[2] for row in by_service["genai-proxy"]} == app_ids
    # Exactly one of each pair is marked, and it names the other.
    pairs = {row[1]: row[2] for row in by_service["genai-proxy"]}  # proxy span -> app span
    for proxy_id, app_id in pairs.items():
        marks = [row[3] for row in spans if row[1] in (proxy_id, app_id)]
        assert sorted(marks) in (["", proxy_id], ["", app_id]), marks


def test_genai_calls_and_the_rollup_count_each_call_once(stored: tuple[Path, str]) -> None:
    chdb_dir, _ = stored
    [[calls, traces, input_tokens]] = _rows(
        chdb_dir, "SELECT count(), uniqExact(TraceId), sum(InputTokens) FROM genai_calls"
    )
    [[proxied_tokens]] = _rows(
        chdb_dir,
        "SELECT sum(toUInt64OrZero(SpanAttributes['gen_ai.usage.input_tokens'])) FROM otel_traces "
        "WHERE ServiceName = 'genai-proxy'",
    )
    [[hourly_calls]] = _rows(chdb_dir, "SELECT sum(Calls) FROM genai_calls_hourly")
    assert (calls, traces, hourly_calls) == (CALLS, CALLS, CALLS)
    assert input_tokens == proxied_tokens > 0


def test_the_prometheus_metrics_count_each_call_once(stored: tuple[Path, str]) -> None:
    _, metrics = stored
    samples, _ = parse_metrics(metrics)
    assert total_of(samples, "gen_ai_client_inference_duration_seconds_count") == 2
    assert total_of(samples, "gen_ai_client_embeddings_duration_seconds_count") == 1
