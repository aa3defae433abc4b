"""Self-metrics are declared, not written: what a running collector renders is declared and documented, and no
code names a metric in a string."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import openai

from collector.generated_metrics import EXPORTER_SENT_SPANS
from collector.telemetry import MetricSpec
from proxy.generated_metrics import PROXY_REQUESTS
from tests.collector.self_metrics import declared, documented, rendered_problems, source_files, source_problems
from tests.collector.test_cli_run import CollectorProcess
from tests.conftest import REPO_ROOT, make_traces
from tests.exporters.prometheus_text import parse_metrics
from tests.proxy.mock_upstream import MockUpstream, serve

PROVIDER_KEY = "sk-provider"
OTLP_SPANS = 3
PROXY_METRICS_DEADLINE_SECONDS = 30.0
POLL_SECONDS = 0.05
# Families a collector running the shipped config shows once it took spans over OTLP and one call through its
# proxy, whichever process counted them: the proxy's come from its own process, the processors' from the workers'.
EXPECTED = {
    "otelcol_receiver_accepted_spans_total",
    "otelcol_processor_incoming_spans_total",
    "otelcol_processor_outgoing_spans_total",
    "otelcol_exporter_sent_spans_total",
    "otelcol_exporter_queue_size",
    "otelcol_processor_memory_limiter_memory_bytes",
    "genai_listener_connections",
    "genai_collector_worker_bytes_in_flight",
    "genai_proxy_requests_total",
    "genai_proxy_spans_sent_total",
    "genai_api_requests_total",
}


def test_a_collector_running_the_shipped_config_renders_only_declared_documented_metrics(tmp_path: Path) -> None:
    with serve(MockUpstream(openai_key=PROVIDER_KEY)) as upstream_url:
        process = CollectorProcess(
            tmp_path, config=REPO_ROOT / "otel-config.yaml", environment={"OPENAI_BASE_URL": f"{upstream_url}/v1"}
        )
        try:
            answer = httpx.post(
                f"http://127.0.0.1:{process.http_port}/v1/traces",
                content=make_traces(OTLP_SPANS).SerializeToString(),
                headers={"Content-Type": "application/x-protobuf"},
            )
            assert answer.status_code == 200
            client = openai.OpenAI(
                base_url=f"http://127.0.0.1:{process.proxy_port}/v1", api_key=PROVIDER_KEY, max_retries=0
            )
            client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
            assert httpx.get(f"http://127.0.0.1:{process.api_port}/api/v1/services").status_code == 200
            process.wait_until_sent(OTLP_SPANS + 1)
            page = _page_with(process, PROXY_REQUESTS)
        finally:
            assert process.stop() == 0

    assert rendered_problems(page) == []
    _, families = parse_metrics(page)
    assert set(families) >= EXPECTED, sorted(EXPECTED - set(families))


def _page_with(process: CollectorProcess, metric: MetricSpec) -> str:
    """The admin endpoint's /metrics once it shows ``metric`` (the proxy process reports its series periodically)."""
    deadline = time.monotonic() + PROXY_METRICS_DEADLINE_SECONDS
    while time.monotonic() < deadline:
        page = process.admin_get("/metrics").text
        if f"# TYPE {metric.series_name} " in page:
            return page
        time.sleep(POLL_SECONDS)
    raise AssertionError(f"/metrics never showed {metric.series_name}")


def test_the_page_check_finds_undeclared_undocumented_and_mislabelled_series() -> None:
    specs = declared()
    sent = EXPORTER_SENT_SPANS.series_name
    page = (
        f"# TYPE {sent} counter\n"
        f'{sent}{{exporter="clickhouse"}} 1\n'
        f'{sent}{{exporter="clickhouse",tenant="a"}} 1\n'
        f"{sent} 1\n"
        "# TYPE genai_made_up_total counter\n"
        "genai_made_up_total 1\n"
        "otelcol_untyped 2\n"
    )
    assert rendered_problems(page, specs, documented() - {sent}) == [
        "genai_made_up_total: declared in no metadata.yaml",
        f"{sent}: missing from the self-metrics table of docs/components.md",
        f"{sent}: labels [], declared ['exporter'] + []",
        f"{sent}: labels ['exporter', 'tenant'], declared ['exporter'] + []",
        "otelcol_untyped: a sample without a TYPE line",
    ]
    assert rendered_problems(f"# TYPE {sent} gauge\n", specs) == [f"{sent}: rendered as a gauge, declared a counter"]


def _metric_names() -> set[str]:
    return {name for spec in declared().values() for name in (spec.name, spec.series_name)}


def test_no_code_names_a_self_metric_in_a_string() -> None:
    names = _metric_names()
    problems = []
    files = list(source_files())
    for path in files:
        problems += source_problems(path.read_text(), str(path.relative_to(REPO_ROOT)), names)
    assert len(files) > 100  # the packages were found
    assert problems == []


def test_the_source_check_finds_each_way_of_naming_a_metric_in_a_string() -> None:
    source = '''
"""Counts otelcol_exporter_sent_spans, in a docstring, which is fine."""
from collector.telemetry import MetricSpec

SENT = "otelcol_exporter_sent_spans"


class Exporter:
    """It counts genai_proxy_requests_total too."""

    def export(self) -> None:
        self._settings.telemetry.add("genai_new_thing", 1, exporter="x")
        self.rendered = "genai_proxy_requests_total"
        spec = MetricSpec("genai_another", "counter", "Help.")
        seen.add("otelcol_made_up")  # not a registry, not a declared name
'''
    assert source_problems(source, "sample.py", _metric_names()) == [
        "sample.py:5: the metric name 'otelcol_exporter_sent_spans' in a string",
        "sample.py:12: self._settings.telemetry.add() given a metric name in a string",
        "sample.py:13: the metric name 'genai_proxy_requests_total' in a string",
        "sample.py:14: a MetricSpec made outside a generated_metrics.py",
    ]
