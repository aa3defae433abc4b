"""Each recorded agent framework end to end: its model calls through the collector's proxy, its spans over OTLP, chDB.

A collector in the shipped shape (otlp and genai_proxy receivers; genai_normalize, genai_cost, genai_security
and genai_loop_detection; the clickhouse exporter on chDB) receives, per framework, a healthy run and the
looping run: their model calls go through the genai_proxy receiver to the mock upstream (each with the
traceparent the framework sent), then the framework's own spans arrive over OTLP/HTTP, as its SDK's batch
exporter sends them when the run ends. The figures are checked against what the upstream reported on the
wire (tokens) and the providers' list prices (cost).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from collector.component import ComponentID
from tests.collector.runtime.support import wait_until
from tests.conftest import RunningService, query_store
from tests.data import framework_traces
from tests.data.framework_traces.replay import Usage, replay
from tests.proxy.mock_upstream import MockUpstream, serve

FRAMEWORKS = sorted(framework_traces.frameworks())
HEALTHY_RUN = "parallel_retry"  # parallel tools, a failing tool and the retry: the busiest healthy run
LOOP_RUN = "loop"
PROXY_SERVICE = "genai-proxy"
# USD per token, the providers' list prices (gpt-4o-mini: $0.15 and $0.60 per million input and output
# tokens; Claude Sonnet 4: $3 and $15).
PRICES = {"gpt-4o-mini": (0.15e-6, 0.60e-6), "claude-sonnet-4-20250514": (3e-6, 15e-6)}
# OpenInference's CrewAI and OpenAI instrumentations record no tool call id on the tool's span.
WITHOUT_TOOL_CALL_ID = {"crewai"}
# The anthropic SDK traces its own calls: inside ADK's model call span, a second span for the same call.
CLIENT_SPAN_TOO = {"google_adk"}


PROCESSORS = ["genai_normalize", "genai_dedup", "genai_cost", "genai_security", "genai_loop_detection"]


def _config(chdb_dir: Path, upstream: str) -> str:
    declared = "".join(f"  {name}:\n" for name in PROCESSORS if name != "genai_security")
    return f"""
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:0
  genai_proxy:
    endpoint: 127.0.0.1:0
    capture_content: true
    upstreams:
      - name: openai
        kind: openai
        base_url: {upstream}/v1
        models: ["gpt-*"]
      - name: anthropic
        kind: anthropic
        base_url: {upstream}
        models: ["claude-*"]
processors:
{declared}  genai_security:
    actions:
      secret: mask
exporters:
  clickhouse:
    endpoint: chdb://{chdb_dir}
    sending_queue:
      batch:
        flush_timeout: 50ms
service:
  # As shipped: the processors in worker processes, traces sharded across them (two, whatever the machine).
  workers: 2
  pipelines:
    traces:
      receivers: [otlp, genai_proxy]
      processors: [{", ".join(PROCESSORS)}]
      exporters: [clickhouse]
"""


@dataclass
class Stored:
    framework: str
    runs: dict[str, framework_traces.Recording]
    usages: dict[str, list[Usage]]
    store: Path

    def query(self, sql: str) -> list[list[object]]:
        return query_store(self.store, sql)

    def traces(self, run: str) -> str:
        return ", ".join(f"'{trace_id}'" for trace_id in self.runs[run].trace_ids)


def _recording(framework: str, run: str) -> framework_traces.Recording:
    return next(r for r in framework_traces.manifest() if r.framework == framework and r.run == run)


@pytest.fixture(scope="module", params=FRAMEWORKS)
def stored(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stored]:
    framework = str(request.param)
    work = tmp_path_factory.mktemp(f"e2e-{framework}")
    runs = {run: _recording(framework, run) for run in (HEALTHY_RUN, LOOP_RUN)}
    usages: dict[str, list[Usage]] = {}
    with serve(MockUpstream()) as upstream:
        collector = RunningService(_config(work / "clickhouse", upstream), work)
        try:
            proxy = f"http://127.0.0.1:{_proxy_port(collector)}"
            otlp = f"http://127.0.0.1:{collector.port()}/v1/traces"
            for name, recording in runs.items():
                usages[name] = replay(framework_traces.calls_of(recording), proxy)
                # The SDK's batch exporter sends seconds after the run ends: by then the proxy's spans of
                # the run are in the pipeline (the proxy sends them within milliseconds).
                proxied = sum(len(u) for u in usages.values())
                assert wait_until(lambda expected=proxied: _proxy_spans_accepted(collector) >= expected)
                body = framework_traces.spans_of(recording).SerializeToString()
                answer = httpx.post(otlp, content=body, headers={"content-type": "application/x-protobuf"})
                assert answer.status_code == 200
        finally:
            collector.stop()  # drains the proxy's spans and every queue into the store
    yield Stored(framework, runs, usages, work / "clickhouse")


def _proxy_spans_accepted(collector: RunningService) -> float:
    return collector.service.telemetry.value(
        "otelcol_receiver_accepted_spans", receiver="genai_proxy", transport="http"
    )


def _proxy_port(collector: RunningService) -> int:
    return int(collector.service.receivers[ComponentID.parse("genai_proxy")].port)  # type: ignore[attr-defined]


def test_the_proxy_records_one_row_per_model_call_with_the_upstreams_tokens_and_the_list_price(stored: Stored) -> None:
    # The proxy's rows of both runs together: the runs' calls are the only calls this collector saw.
    calls = sum(len(u) for u in stored.usages.values())
    tokens_in = sum(u.input_tokens for usages in stored.usages.values() for u in usages)
    tokens_out = sum(u.output_tokens for usages in stored.usages.values() for u in usages)
    model = "claude-sonnet-4-20250514" if stored.framework in CLIENT_SPAN_TOO else "gpt-4o-mini"
    input_price, output_price = PRICES[model]
    (row,) = stored.query(
        "SELECT count(), sum(InputTokens), sum(OutputTokens), round(sum(Cost), 9), groupUniqArray(RequestModel) "
        f"FROM genai_calls WHERE ServiceName = '{PROXY_SERVICE}'"
    )
    assert row == [calls, tokens_in, tokens_out, round(tokens_in * input_price + tokens_out * output_price, 9), [model]]
    assert calls == sum(recording.model_calls for recording in stored.runs.values())


def test_the_frameworks_own_spans_describe_every_model_call(stored: Stored) -> None:
    for run, recording in stored.runs.items():
        (count,) = stored.query(
            f"SELECT count() FROM otel_traces WHERE ServiceName != '{PROXY_SERVICE}' AND TraceId IN "
            f"({stored.traces(run)}) AND SpanAttributes['gen_ai.operation.name'] IN ('chat', 'generate_content')"
        )[0]
        per_call = 2 if stored.framework in CLIENT_SPAN_TOO else 1
        assert count == per_call * recording.model_calls, run


def test_each_model_call_is_counted_once(stored: Stored) -> None:
    """One row per call, whichever records of it there are (the proxy's, the framework's, its client library's)."""
    calls = sum(recording.model_calls for recording in stored.runs.values())
    (total,) = stored.query("SELECT count() FROM genai_calls")[0]
    assert total == calls
    # The rows are the proxy's, priced as it recorded them: the cost asked is the upstream's tokens at list price.
    (services,) = stored.query("SELECT groupUniqArray(ServiceName) FROM genai_calls")[0]
    assert services == [PROXY_SERVICE]


def test_tool_spans_carry_name_arguments_and_call_id(stored: Stored) -> None:
    for run in stored.runs:
        rows = stored.query(
            "SELECT SpanAttributes['gen_ai.tool.name'], SpanAttributes['gen_ai.tool.call.arguments'], "
            "SpanAttributes['gen_ai.tool.call.id'] FROM otel_traces "
            f"WHERE SpanAttributes['gen_ai.operation.name'] = 'execute_tool' AND TraceId IN ({stored.traces(run)})"
        )
        assert rows, run
        for name, arguments, call_id in rows:
            assert name == "get_weather" and arguments, (run, name, arguments)
            assert bool(call_id) == (stored.framework not in WITHOUT_TOOL_CALL_ID), (run, call_id)


def test_the_looping_run_gets_its_loop_finding_and_the_healthy_run_none(stored: Stored) -> None:
    def findings(run: str) -> list[tuple[str, str]]:
        rows = stored.query(
            "SELECT Detector, Attributes['gen_ai.security.loop.scope'] FROM genai_findings "
            f"WHERE TraceId IN ({stored.traces(run)}) ORDER BY Detector"
        )
        return [(str(detector), str(scope)) for detector, scope in rows]

    loop = findings(LOOP_RUN)
    assert ("repeated_tool_call", "trace") in loop
    extra = [f for f in findings(HEALTHY_RUN) + loop if f[0] != "repeated_tool_call"]
    expected_extra = [
        (str(f["detector"]), str(f["scope"]))
        for f in stored.runs[LOOP_RUN].findings
        if f["detector"] != "repeated_tool_call"
    ]
    assert [f for f in extra if f not in expected_extra] == []
