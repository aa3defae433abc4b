"""The prometheus exporter in a running collector: spans in over OTLP/HTTP, /metrics scraped and parsed.

Covers the counters and histograms of the newest conventions and of v1.41.0
(bucket counts, sums, labels), which spans count (the model-call allow-list,
duplicates left out), the cardinality bound and its overflow series, the admin
endpoint's self-metrics next to it, and config mistakes.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from exporters.prometheus.metrics import COST_BUCKETS, DURATION_BUCKETS, TOKEN_BUCKETS
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status, TracesData

from collector.component import ComponentID
from collector.config.decode import decode
from collector.config.problems import ConfigError
from collector.config.service import check_listeners, parse_config
from collector.pdata import set_any_value
from collector.registry import default_registry
from exporters.prometheus.config import PrometheusExporterConfig
from tests.conftest import RunningService, free_port

HTTP_TIMEOUT = 10.0
START_NANOS = 1_700_000_000_000_000_000
NANOS = 1_000_000_000
_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse_metrics(text: str) -> tuple[Samples, dict[str, str]]:
    """Samples by (name, labels), and the TYPE of each family, from the Prometheus text format."""
    samples: Samples = {}
    types: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            types[name] = kind
            continue
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        assert match, line
        name, labels, value = match.groups()
        pairs = frozenset(_LABEL.findall(labels or ""))
        key = (name, pairs)
        assert key not in samples, f"duplicate series {line}"
        samples[key] = float(value)
    return samples, types


def _call(
    traces: TracesData,
    service: str,
    attributes: dict[str, Any],
    seconds: float = 1.5,
    error: bool = False,
) -> None:
    resource_spans = next(
        (rs for rs in traces.resource_spans if rs.resource.attributes[0].value.string_value == service), None
    )
    if resource_spans is None:
        resource_spans = traces.resource_spans.add()
        set_any_value(resource_spans.resource.attributes.add(key="service.name").value, service)
        resource_spans.scope_spans.add().scope.name = "tests"
    span = resource_spans.scope_spans[0].spans.add(
        trace_id=b"\x01" * 16,
        span_id=len(traces.resource_spans).to_bytes(8, "big"),
        name="chat",
        kind=Span.SPAN_KIND_CLIENT,
        start_time_unix_nano=START_NANOS,
        end_time_unix_nano=START_NANOS + int(seconds * NANOS),
    )
    if error:
        span.status.code = Status.STATUS_CODE_ERROR
    for key, value in attributes.items():
        set_any_value(span.attributes.add(key=key).value, value)


def _openai(model: str, **extra: Any) -> dict[str, Any]:
    return {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": model,
        **extra,
    }


def _config(max_series: int = 100, semconv: str = "latest") -> str:
    return f"""
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:0
exporters:
  prometheus:
    endpoint: 127.0.0.1:0
    max_series: {max_series}
    semconv: {semconv}
extensions:
  admin:
    endpoint: 127.0.0.1:0
service:
  extensions: [admin]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [genai_normalize]
      exporters: [prometheus]
processors:
  genai_normalize:
"""


@pytest.fixture
def collector(tmp_path: Path) -> Iterator[RunningService]:
    running = RunningService(_config(), tmp_path)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def previous_collector(tmp_path: Path) -> Iterator[RunningService]:
    running = RunningService(_config(semconv="v1.41"), tmp_path)
    try:
        yield running
    finally:
        running.stop()


def _send(collector: RunningService, traces: TracesData) -> None:
    reply = httpx.post(
        f"http://127.0.0.1:{collector.port()}/v1/traces",
        content=traces.SerializeToString(),
        headers={"content-type": "application/x-protobuf"},
        timeout=HTTP_TIMEOUT,
    )
    assert reply.status_code == 200, reply.text


def _scrape(port: int, headers: dict[str, str] | None = None) -> tuple[Samples, dict[str, str], httpx.Response]:
    reply = httpx.get(f"http://127.0.0.1:{port}/metrics", headers=headers, timeout=HTTP_TIMEOUT)
    assert reply.status_code == 200
    samples, types = parse_metrics(reply.text)
    return samples, types, reply


def _exporter_port(collector: RunningService) -> int:
    return int(collector.service.exporters[ComponentID("prometheus")].port)  # type: ignore[attr-defined]


def _labels(model: str = "gpt-4o", service: str = "support-bot", tenant: str = "", **more: str) -> dict[str, str]:
    return {
        "gen_ai_operation_name": "chat",
        "gen_ai_provider_name": "openai",
        "gen_ai_request_model": model,
        "service_name": service,
        "tenant_id": tenant,
        **more,
    }


def _buckets(samples: Samples, name: str, labels: dict[str, str], bounds: tuple[float, ...]) -> list[float]:
    cumulative = []
    for bound in (*bounds, "+Inf"):
        le = str(bound) if not isinstance(bound, float) or not bound.is_integer() else str(int(bound))
        cumulative.append(samples[(f"{name}_bucket", frozenset({**labels, "le": le}.items()))])
    return cumulative


def _sample(samples: Samples, name: str, labels: dict[str, str]) -> float:
    return samples[(name, frozenset(labels.items()))]


def total_of(samples: Samples, name: str) -> float:
    """The sum of every series of one sample name."""
    return sum(value for (sample, _), value in samples.items() if sample == name)


def test_v1_41_token_usage_duration_ttfc_and_cost_from_llm_spans(previous_collector: RunningService) -> None:
    collector = previous_collector
    traces = TracesData()
    _call(
        traces,
        "support-bot",
        _openai(
            "gpt-4o",
            **{
                "gen_ai.usage.input_tokens": 100,
                "gen_ai.usage.output_tokens": 1000,
                "gen_ai.usage.cost": 0.25,
                "tenant.id": "team-a",
            },
        ),
        seconds=1.5,
    )
    _call(
        traces,
        "support-bot",
        _openai(
            "gpt-4o",
            **{
                "gen_ai.usage.input_tokens": 4,
                "gen_ai.usage.cost": 0.5,
                "tenant.id": "team-a",
                "gen_ai.response.time_to_first_chunk": 0.3,
            },
        ),
        seconds=0.02,
    )
    # No request model: the response model labels it. No tenant: an empty tenant_id.
    _call(
        traces,
        "support-bot",
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
        },
        seconds=0.5,
    )
    # Failures: with error.type, and with only an error status.
    _call(traces, "batch-job", _openai("gpt-4o", **{"error.type": "timeout"}), seconds=30.0, error=True)
    _call(traces, "batch-job", _openai("gpt-4o"), seconds=2.0, error=True)
    # Not LLM calls: no operation name, a tool execution, an agent.
    _call(traces, "support-bot", {"http.method": "GET"}, seconds=1.0)
    _call(traces, "support-bot", {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "search"})
    _call(traces, "support-bot", {"gen_ai.operation.name": "invoke_agent", "gen_ai.usage.input_tokens": 9})
    _send(collector, traces)

    samples, types, reply = _scrape(_exporter_port(collector))

    assert reply.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert types == {
        "gen_ai_client_token_usage": "histogram",
        "gen_ai_client_operation_duration_seconds": "histogram",
        "gen_ai_client_operation_time_to_first_chunk_seconds": "histogram",
        "gen_ai_client_cost_usd_total": "counter",
    }
    team_a = _labels(tenant="team-a")
    tokens = "gen_ai_client_token_usage"
    # input 100 and 4: the 4 in le=4, the 100 in le=256.
    assert (
        _buckets(samples, tokens, {**team_a, "gen_ai_token_type": "input"}, TOKEN_BUCKETS) == [0, 1, 1, 1, 2] + [2] * 10
    )
    assert _sample(samples, f"{tokens}_sum", {**team_a, "gen_ai_token_type": "input"}) == 104
    assert _sample(samples, f"{tokens}_count", {**team_a, "gen_ai_token_type": "input"}) == 2
    assert _buckets(samples, tokens, {**team_a, "gen_ai_token_type": "output"}, TOKEN_BUCKETS) == [0] * 5 + [1] * 10
    assert _sample(samples, f"{tokens}_count", {**team_a, "gen_ai_token_type": "output"}) == 1

    duration = "gen_ai_client_operation_duration_seconds"
    ok = {**team_a, "error_type": ""}
    assert _buckets(samples, duration, ok, DURATION_BUCKETS) == [0, 1, 1, 1, 1, 1, 1, 1, 2] + [2] * 6
    assert _sample(samples, f"{duration}_sum", ok) == pytest.approx(1.52)
    mini = _labels(model="gpt-4o-mini-2024-07-18", error_type="")
    assert _sample(samples, f"{duration}_count", mini) == 1
    timeout = _labels(service="batch-job", error_type="timeout")
    assert _buckets(samples, duration, timeout, DURATION_BUCKETS)[-4:] == [0, 1, 1, 1]  # 30 s: in le=40.96
    assert _sample(samples, f"{duration}_count", _labels(service="batch-job", error_type="_OTHER")) == 1

    ttfc = "gen_ai_client_operation_time_to_first_chunk_seconds"
    assert _buckets(samples, ttfc, team_a, DURATION_BUCKETS)[4:7] == [0, 1, 1]  # 0.3 s: in le=0.32
    assert _sample(samples, f"{ttfc}_count", team_a) == 1
    assert not [
        key for key in samples if key[0] == f"{ttfc}_count" and key != (f"{ttfc}_count", frozenset(team_a.items()))
    ]

    assert _sample(samples, "gen_ai_client_cost_usd_total", team_a) == 0.75
    # Five LLM calls observed a duration; the other three spans were left out.
    durations = sum(value for (name, _), value in samples.items() if name == f"{duration}_count")
    assert durations == 5


def test_newest_conventions_token_counters_histograms_durations_and_cost(collector: RunningService) -> None:
    traces = TracesData()
    usage = {
        "gen_ai.usage.input_tokens": 100,
        "gen_ai.usage.output_tokens": 1000,
        "gen_ai.usage.cache_read.input_tokens": 40,
        "gen_ai.usage.cache_write.input_tokens": 10,
        "gen_ai.usage.reasoning.output_tokens": 600,
        "gen_ai.usage.cost.amount": 0.25,
        "gen_ai.usage.cost.currency": "USD",
        "tenant.id": "team-a",
    }
    _call(traces, "support-bot", _openai("gpt-4o", **usage), seconds=1.5)
    # Per-modality counts split the input counter; v1.41.0's cache name still counts.
    modal = {
        "gen_ai.usage.input_tokens": 300,
        "gen_ai.usage.image.input_tokens": 200,
        "gen_ai.usage.text.input_tokens": 60,
        "gen_ai.usage.output_tokens": 4,
        "gen_ai.usage.cache_creation.input_tokens": 5,
        "gen_ai.response.time_to_first_chunk": 0.3,
        "tenant.id": "team-a",
    }
    _call(traces, "support-bot", _openai("gpt-4o", **modal), seconds=0.02)
    # A failed call without usage counts 0 tokens; a successful one without usage counts none.
    _call(traces, "batch-job", _openai("gpt-4o", **{"error.type": "timeout"}), seconds=30.0, error=True)
    _call(traces, "batch-job", _openai("gpt-4o-mini"), seconds=2.0)
    embeddings = {
        "gen_ai.operation.name": "embeddings",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "text-embedding-3-small",
        "gen_ai.usage.input_tokens": 8,
        "gen_ai.usage.cost.amount": 0.0001,
    }
    _call(traces, "support-bot", embeddings, seconds=0.1)
    # Not calls to a model: agents, workflows, turns, tools, planning, retrieval, memory, guardrails, fetches.
    for operation in (
        "invoke_agent", "invoke_workflow", "handle_conversation_turn", "create_agent", "execute_tool", "plan",
        "retrieval", "search_memory", "create_memory", "apply_guardrail", "fetch_response",
    ):  # fmt: skip
        _call(traces, "support-bot", {"gen_ai.operation.name": operation, "gen_ai.usage.input_tokens": 9})
    # The second record of one call (genai_dedup marked it): counted once, through the other.
    _call(traces, "support-bot", _openai("gpt-4o", **{**usage, "gen_ai.call.duplicate_of": "00000000000000aa"}))
    _send(collector, traces)

    samples, types, _ = _scrape(_exporter_port(collector))

    assert types == {
        "gen_ai_client_inference_usage_input_tokens_total": "counter",
        "gen_ai_client_inference_usage_output_tokens_total": "counter",
        "gen_ai_client_inference_usage_cache_read_input_tokens_total": "counter",
        "gen_ai_client_inference_usage_cache_write_input_tokens_total": "counter",
        "gen_ai_client_inference_usage_reasoning_output_tokens_total": "counter",
        "gen_ai_client_inference_operation_input_tokens": "histogram",
        "gen_ai_client_inference_operation_output_tokens": "histogram",
        "gen_ai_client_inference_duration_seconds": "histogram",
        "gen_ai_client_inference_time_to_first_chunk_seconds": "histogram",
        "gen_ai_client_embeddings_duration_seconds": "histogram",
        "gen_ai_client_embeddings_operation_input_tokens": "histogram",
        "gen_ai_client_operation_cost": "histogram",
        "gen_ai_invocation_duration_seconds": "histogram",
        "gen_ai_execute_tool_duration_seconds": "histogram",
    }
    team_a = _labels(tenant="team-a")
    inputs = "gen_ai_client_inference_usage_input_tokens_total"
    modalities = {
        dict(labels)["gen_ai_token_modality"]: value
        for (name, labels), value in samples.items()
        if name == inputs and dict(labels)["tenant_id"] == "team-a"
    }
    assert modalities == {"unknown": 100 + 40, "image": 200, "text": 60}
    failed = _labels(service="batch-job")
    assert _sample(samples, inputs, {**failed, "gen_ai_token_modality": "unknown"}) == 0
    assert not [key for key in samples if key[0] == inputs and dict(key[1])["gen_ai_request_model"] == "gpt-4o-mini"]
    unknown = {**team_a, "gen_ai_token_modality": "unknown"}
    assert _sample(samples, "gen_ai_client_inference_usage_output_tokens_total", unknown) == 1004
    assert _sample(samples, "gen_ai_client_inference_usage_cache_read_input_tokens_total", unknown) == 40
    assert _sample(samples, "gen_ai_client_inference_usage_cache_write_input_tokens_total", unknown) == 15
    assert _sample(samples, "gen_ai_client_inference_usage_reasoning_output_tokens_total", unknown) == 600

    per_call = "gen_ai_client_inference_operation_input_tokens"
    ok = {**team_a, "error_type": ""}
    # 100 in le=256, 300 in le=1024.
    assert _buckets(samples, per_call, ok, TOKEN_BUCKETS)[3:6] == [0, 1, 2]
    assert _sample(samples, f"{per_call}_count", {**failed, "error_type": "timeout"}) == 1
    assert _sample(samples, f"{per_call}_sum", {**failed, "error_type": "timeout"}) == 0

    duration = "gen_ai_client_inference_duration_seconds"
    assert _buckets(samples, duration, ok, DURATION_BUCKETS) == [0, 1, 1, 1, 1, 1, 1, 1, 2] + [2] * 6
    assert total_of(samples, f"{duration}_count") == 4
    ttfc = "gen_ai_client_inference_time_to_first_chunk_seconds"
    assert _buckets(samples, ttfc, team_a, DURATION_BUCKETS)[4:7] == [0, 1, 1]

    embedding = {**_labels(model="text-embedding-3-small"), "gen_ai_operation_name": "embeddings", "error_type": ""}
    assert _sample(samples, "gen_ai_client_embeddings_duration_seconds_count", embedding) == 1
    assert _sample(samples, "gen_ai_client_embeddings_operation_input_tokens_sum", embedding) == 8

    cost = "gen_ai_client_operation_cost"
    usd = {**team_a, "gen_ai_usage_cost_currency": "USD"}
    assert _sample(samples, f"{cost}_sum", usd) == 0.25
    assert _buckets(samples, cost, usd, COST_BUCKETS)[4:6] == [0, 1]  # 0.25: in le=1
    total = sum(value for (name, _), value in samples.items() if name == f"{cost}_sum")
    assert total == pytest.approx(0.25 + 0.0001)

    # Agents, workflows and conversation turns are invocations alike; tools have their own durations.
    invocations = {
        dict(labels)["gen_ai_operation_name"]: value
        for (name, labels), value in samples.items()
        if name == "gen_ai_invocation_duration_seconds_count"
    }
    assert invocations == {"invoke_agent": 1, "invoke_workflow": 1, "handle_conversation_turn": 1}
    assert total_of(samples, "gen_ai_execute_tool_duration_seconds_count") == 1


def test_the_admin_endpoint_shows_every_components_traffic(collector: RunningService) -> None:
    traces = TracesData()
    for _ in range(3):
        _call(traces, "support-bot", _openai("gpt-4o"))
    _send(collector, traces)
    samples, _, _ = _scrape(collector.admin_port(), collector.admin_headers())
    receiver = {"receiver": "otlp", "transport": "http"}
    assert _sample(samples, "otelcol_receiver_accepted_spans_total", receiver) == 3
    processor = {"processor": "genai_normalize"}
    assert _sample(samples, "otelcol_processor_incoming_spans_total", processor) == 3
    assert _sample(samples, "otelcol_processor_outgoing_spans_total", processor) == 3
    assert _sample(samples, "otelcol_exporter_sent_spans_total", {"exporter": "prometheus"}) == 3


def test_series_beyond_max_series_go_to_one_overflow_series_and_are_counted(tmp_path: Path) -> None:
    collector = RunningService(_config(max_series=2), tmp_path)
    try:
        traces = TracesData()
        for model in ("gpt-4o", "gpt-4o-mini", "o3", "o4-mini"):
            _call(traces, "support-bot", _openai(model, **{"gen_ai.usage.cost.amount": 1.0}))
        _send(collector, traces)
        samples, _, _ = _scrape(_exporter_port(collector))
        own, _, _ = _scrape(collector.admin_port(), collector.admin_headers())
    finally:
        collector.stop()
    cost = "gen_ai_client_operation_cost"
    costs = {
        dict(labels).get("gen_ai_request_model", "overflow"): value
        for (name, labels), value in samples.items()
        if name == f"{cost}_sum"
    }
    assert costs == {"gpt-4o": 1.0, "gpt-4o-mini": 1.0, "overflow": 2.0}
    assert _sample(samples, f"{cost}_count", {"otel_metric_overflow": "true"}) == 2
    overflowed = {"exporter": "prometheus", "metric": cost}
    assert _sample(own, "genai_prometheus_overflow_observations_total", overflowed) == 2


def test_label_values_are_escaped(collector: RunningService) -> None:
    traces = TracesData()
    _call(traces, 'bot "quoted"\\path\nline', _openai("gpt-4o", **{"gen_ai.usage.cost": 1.0}))
    _send(collector, traces)
    reply = httpx.get(f"http://127.0.0.1:{_exporter_port(collector)}/metrics", timeout=HTTP_TIMEOUT)
    assert 'service_name="bot \\"quoted\\"\\\\path\\nline"' in reply.text


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ({"max_series": 0}, "exporters.prometheus.max_series: must be at least 1"),
        ({"endpoint": "8889"}, "exporters.prometheus.endpoint: expected host:port"),
        ({"path": "/m"}, "exporters.prometheus.path: unknown key"),
        ({"semconv": "1.38"}, "exporters.prometheus.semconv: "),
    ],
)
def test_config_mistakes(raw: dict[str, Any], problem: str) -> None:
    with pytest.raises(ConfigError) as error:
        decode(PrometheusExporterConfig, raw, "exporters.prometheus")
    [line] = [str(p) for p in error.value.problems]
    assert line.startswith(problem), line


def test_a_port_shared_with_another_listener_is_a_config_problem() -> None:
    port = free_port()
    document = yaml.safe_load(_config())
    document["exporters"]["prometheus"]["endpoint"] = f"127.0.0.1:{port}"
    document["extensions"]["admin"]["endpoint"] = f"127.0.0.1:{port}"
    config = parse_config(document, default_registry())
    with pytest.raises(ConfigError) as error:
        check_listeners(config)
    [line] = [str(p) for p in error.value.problems]
    assert line == f"extensions.admin.endpoint: 127.0.0.1:{port} is also used by exporters.prometheus.endpoint"


def test_a_port_taken_by_another_process_is_a_config_problem() -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        document = yaml.safe_load(_config())
        document["exporters"]["prometheus"]["endpoint"] = f"127.0.0.1:{port}"
        config = parse_config(document, default_registry())
        with pytest.raises(ConfigError) as error:
            check_listeners(config)
    [line] = [str(p) for p in error.value.problems]
    assert line == f"exporters.prometheus.endpoint: 127.0.0.1:{port} is already in use"


def test_defaults() -> None:
    config = decode(PrometheusExporterConfig, None, "exporters.prometheus")
    assert (str(config.endpoint), config.max_series, config.semconv) == ("127.0.0.1:8889", 2000, "latest")


def test_non_finite_amounts_are_not_observed_and_long_labels_are_cut() -> None:
    from exporters.prometheus.spans import MAX_LABEL_CHARS, call_facts
    from opentelemetry.proto.trace.v1.trace_pb2 import Span as ProtoSpan

    from collector.pdata import set_any_value

    span = ProtoSpan(start_time_unix_nano=1, end_time_unix_nano=2)
    for key, value in (
        ("gen_ai.operation.name", "chat"),
        ("gen_ai.request.model", "m" * 100_000),
        ("gen_ai.usage.cost.amount", float("nan")),
        ("gen_ai.usage.input_tokens", float("inf")),
        ("gen_ai.usage.output_tokens", 7),
    ):
        set_any_value(span.attributes.add(key=key).value, value)
    facts = call_facts(span, "svc")
    assert facts is not None
    assert (facts.cost, facts.input_tokens, facts.output_tokens) == (None, None, 7.0)
    assert facts.labels[2] == "m" * MAX_LABEL_CHARS
