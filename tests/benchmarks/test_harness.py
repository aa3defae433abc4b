"""The benchmark harness's own logic: statistics, metric parsing, retry waits, fresh ids, derived configs.

Nothing here runs a benchmark or times anything; it checks what the scripts compute their figures with.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml
from opentelemetry.proto.trace.v1.trace_pb2 import TracesData

from tests.conftest import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "benchmarks"))

import harness  # noqa: E402
import llm_calls  # noqa: E402
import otlp_load  # noqa: E402
import report  # noqa: E402


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(100, 0, -1)]  # 100 .. 1, unordered on purpose
    assert report.percentile(values, 0.5) == 51.0
    assert report.percentile(values, 0.99) == 100.0
    assert report.percentile(values, 1.0) == 100.0  # the max
    assert report.percentile(values, 0.0) == 1.0
    assert report.percentile([7.0], 0.99) == 7.0
    with pytest.raises(ValueError):
        report.percentile([], 0.5)


def test_summary_and_per_round_ratios() -> None:
    assert report.summarize([3.0, 1.0, 2.0]) == report.Summary(2.0, 1.0, 3.0)
    assert report.summarize([1.0, 4.0]).median == 2.5
    assert report.ratios([10.0, 30.0], [5.0, 10.0]) == [2.0, 3.0]
    assert report.ratios([1.0], [0.0]) == [float("inf")]
    with pytest.raises(ValueError, match="rounds"):
        report.ratios([1.0, 2.0], [1.0])


def test_figures_print_median_range_and_rounds() -> None:
    figures = report.Figures()
    for value in (4.0, 1.0, 9.0):
        figures.add("spans/s", value)
    line = figures.line("spans/s", decimals=1)
    assert "median        4.0" in line
    assert "range 1.0 - 9.0" in line
    assert line.endswith("rounds: 4.0, 1.0, 9.0")
    ratio = report.ratio_line("a / b", [2.0, 6.0], [1.0, 2.0])
    assert "median      2.50x" in ratio and "range 2.00 - 3.00" in ratio
    shown = report.beside("req/s", [100.0, 200.0], [10.0, 40.0], "Peer", decimals=0)
    assert "genai-collector 150 (100 - 200), Peer 25 (10 - 40)" in shown
    assert "Peer / genai-collector 0.15x (0.10 - 0.20)" in shown


METRICS = """# HELP otelcol_exporter_sent_spans_total Spans sent.
# TYPE otelcol_exporter_sent_spans_total counter
otelcol_exporter_sent_spans_total{exporter="clickhouse"} 1536
otelcol_exporter_sent_spans_total{exporter="clickhouse",worker="1"} 512
otelcol_exporter_sent_spans_total{exporter="otlphttp/tempo"} 99
otelcol_exporter_sent_spans_total_created{exporter="clickhouse"} 1.7e9
otelcol_process_uptime 12.5
"""


def test_metric_total_sums_the_matching_series() -> None:
    assert harness.metric_total(METRICS, "otelcol_exporter_sent_spans_total", {"exporter": "clickhouse"}) == 2048
    assert harness.metric_total(METRICS, "otelcol_exporter_sent_spans_total") == 2147
    assert harness.metric_total(METRICS, "otelcol_process_uptime") == 12.5
    assert harness.metric_total(METRICS, "otelcol_exporter_sent_spans_total", {"exporter": "kafka"}) is None
    assert harness.metric_total(METRICS, "otelcol_receiver_accepted_spans_total") is None


def test_retry_waits_follow_retry_after_then_back_off() -> None:
    assert otlp_load.retry_after_seconds("0.5", 0) == 0.5
    assert otlp_load.retry_after_seconds("3600", 0) == otlp_load.MAX_BACKOFF_SECONDS  # capped: the bench keeps pushing
    assert otlp_load.retry_after_seconds("-1", 0) == 0.0
    assert otlp_load.retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", 0) == otlp_load.FIRST_BACKOFF_SECONDS
    waits = [otlp_load.retry_after_seconds(None, attempt) for attempt in range(8)]
    assert waits[0] == otlp_load.FIRST_BACKOFF_SECONDS and waits[1] == 2 * otlp_load.FIRST_BACKOFF_SECONDS
    assert waits == sorted(waits) and waits[-1] == otlp_load.MAX_BACKOFF_SECONDS


def _body() -> bytes:
    traces = TracesData()
    spans = traces.resource_spans.add().scope_spans.add().spans
    root = spans.add(trace_id=b"\x01" * 16, span_id=b"\x02" * 8, name="invoke_agent")
    spans.add(trace_id=root.trace_id, span_id=b"\x03" * 8, parent_span_id=root.span_id, name="chat")
    return traces.SerializeToString()


def test_fresh_ids_keep_the_tree_and_change_every_id() -> None:
    body = _body()
    assert otlp_load.span_count(body) == 2
    before = TracesData.FromString(body).resource_spans[0].scope_spans[0].spans
    after = TracesData.FromString(otlp_load.with_fresh_ids(body, 7)).resource_spans[0].scope_spans[0].spans
    assert [s.name for s in after] == [s.name for s in before]
    assert all(a.trace_id != b.trace_id and a.span_id != b.span_id for a, b in zip(after, before, strict=True))
    assert after[0].trace_id == after[1].trace_id and len(after[0].trace_id) == 16
    assert after[1].parent_span_id == after[0].span_id  # the child still points at its parent
    assert after[0].parent_span_id == b""  # a root stays a root
    assert otlp_load.with_fresh_ids(body, 8) != otlp_load.with_fresh_ids(body, 7)


def test_the_shipped_config_derived_for_a_run(tmp_path: Path) -> None:
    upstreams = llm_calls.proxy_upstreams("http://127.0.0.1:1", "http://127.0.0.1:2")
    derived = harness.derive_config(tmp_path, processors=[], proxy_upstreams=upstreams)
    config = yaml.safe_load(derived.path.read_text())
    shipped = yaml.safe_load(harness.SHIPPED_CONFIG.read_text())
    # Every listener of the shipped config is on its own free loopback port, and none is left where it was.
    assert {"receivers.otlp.protocols.http", "receivers.genai_proxy", "extensions.admin"} <= set(derived.ports)
    assert len(set(derived.ports.values())) == len(derived.ports)
    for where, port in derived.ports.items():
        node = config
        for key in where.split("."):
            node = node[key]
        assert node["endpoint"] == f"127.0.0.1:{port}"
    # Clients and stores keep their URLs; the rest is as shipped but for what the run replaced.
    assert config["exporters"]["clickhouse"]["endpoint"] == shipped["exporters"]["clickhouse"]["endpoint"]
    assert config["exporters"]["clickhouse"]["sending_queue"] == shipped["exporters"]["clickhouse"]["sending_queue"]
    assert config["processors"] == shipped["processors"]
    assert config["service"]["pipelines"]["traces"]["processors"] == []
    assert (
        config["service"]["pipelines"]["traces"]["exporters"] == shipped["service"]["pipelines"]["traces"]["exporters"]
    )
    assert config["receivers"]["genai_proxy"]["upstreams"] == upstreams
    assert "admin" in config["service"]["extensions"]
    assert derived.token_file == tmp_path / "admin-token"
    with pytest.raises(KeyError, match="no listener"):
        derived.port("receivers.zipkin")


def test_chunk_delays_pair_streams_event_by_event() -> None:
    direct = [[0.010, 0.030, 0.050], [0.011, 0.031]]
    proxied = [[0.012, 0.033, 0.056], [0.013, 0.032, 0.060]]
    delays = llm_calls.chunk_delays(direct, proxied)
    assert [round(d * 1000) for d in delays] == [2, 3, 6, 2, 1]
    assert [round(d * 1000) for d in llm_calls.last_chunk_delays(direct, proxied)] == [6, 29]
    assert llm_calls.traceparent(b"\xab" * 16, b"\xcd" * 8) == f"00-{'ab' * 16}-{'cd' * 8}-01"
