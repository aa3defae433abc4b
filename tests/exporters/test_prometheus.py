"""The prometheus exporter in a metrics pipeline: metrics in from the OpenTelemetry SDK's OTLP exporter, /metrics
scraped and parsed by Prometheus' own parser, every metric type, the exposition format's naming rules, delta
points added up, expiry, the series bound, and config mistakes."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.proto.metrics.v1.metrics_pb2 import MetricsData
from opentelemetry.sdk.metrics import Counter, Histogram, MeterProvider
from opentelemetry.sdk.metrics.export import AggregationTemporality, InMemoryMetricReader, MetricExportResult
from opentelemetry.sdk.metrics.view import (
    ExplicitBucketHistogramAggregation,
    ExponentialBucketHistogramAggregation,
    View,
)
from opentelemetry.sdk.resources import Resource

from collector.component import ComponentID, ComponentSettings
from collector.config.decode import decode
from collector.config.problems import ConfigError
from collector.config.service import check_listeners, parse_config
from collector.registry import default_registry
from collector.telemetry import Telemetry
from exporters.prometheus import PrometheusExporter
from exporters.prometheus import store as prometheus_store
from exporters.prometheus.config import PrometheusExporterConfig
from exporters.prometheus.naming import Kind, label_name, metric_name
from exporters.prometheus.store import MetricStore, Naming
from tests.conftest import ManualClock, RunningService, free_port
from tests.exporters.prometheus_text import families, samples, scrape

PROTOBUF = {"content-type": "application/x-protobuf"}
SCOPE = {"otel_scope_name": "shop.checkout", "otel_scope_version": "1.2"}
TARGET = {"job": "prod/shop", "instance": "i-1"}


def _config(extra: str = "") -> str:
    return f"""
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:0
exporters:
  prometheus:
    endpoint: 127.0.0.1:0
{extra}
extensions:
  admin:
    endpoint: 127.0.0.1:0
service:
  extensions: [admin]
  pipelines:
    metrics:
      receivers: [otlp]
      exporters: [prometheus]
"""


@pytest.fixture
def collector(tmp_path: Path) -> Iterator[RunningService]:
    running = RunningService(_config(), tmp_path)
    try:
        yield running
    finally:
        running.stop()


def _port(collector: RunningService) -> int:
    return int(collector.service.exporters_of("metrics")[ComponentID("prometheus")].port)  # type: ignore[attr-defined]


def _meter_provider(reader: InMemoryMetricReader) -> MeterProvider:
    resource = Resource(
        {"service.name": "shop", "service.namespace": "prod", "service.instance.id": "i-1", "host.name": "h1"}
    )
    views = [
        View(instrument_name="http.server.duration", aggregation=ExplicitBucketHistogramAggregation((0.1, 0.5, 1.0))),
        View(instrument_name="payload.size", aggregation=ExponentialBucketHistogramAggregation()),
    ]
    return MeterProvider(metric_readers=[reader], resource=resource, views=views)


def _export(collector: RunningService, reader: InMemoryMetricReader) -> None:
    """What ``reader`` collected, sent by the SDK's OTLP/HTTP metric exporter; accepted before this returns."""
    exporter = OTLPMetricExporter(endpoint=f"http://127.0.0.1:{collector.port()}/v1/metrics")
    try:
        data = reader.get_metrics_data()
        assert data is not None
        assert exporter.export(data) is MetricExportResult.SUCCESS
    finally:
        exporter.shutdown()


def _labels(**more: str) -> frozenset[tuple[str, str]]:
    return frozenset({**SCOPE, **TARGET, **more}.items())


def test_every_sdk_metric_type_is_exposed_with_the_exposition_formats_names(collector: RunningService) -> None:
    reader = InMemoryMetricReader()
    provider = _meter_provider(reader)
    meter = provider.get_meter("shop.checkout", "1.2")
    requests = meter.create_counter("http.server.requests", unit="{request}", description="Requests served.")
    requests.add(3, {"http.method": "GET", "1st.try": True})
    requests.add(2, {"http.method": "POST", "1st.try": False})
    meter.create_counter("queue.bytes.sent", unit="By", description="Bytes sent.").add(10)
    size = meter.create_up_down_counter("queue.size", unit="{item}", description="Items queued.")
    size.add(5)
    size.add(-2)
    duration = meter.create_histogram("http.server.duration", unit="s", description="Request duration.")
    for seconds in (0.05, 0.3, 2.0):
        duration.record(seconds)
    payload = meter.create_histogram("payload.size", unit="By", description="Payload sizes.")
    for size_bytes in (100, 200, 300):
        payload.record(size_bytes)

    def utilization(options: CallbackOptions) -> Iterable[Observation]:
        yield Observation(0.5, {"cpu": 0})

    meter.create_observable_gauge("cpu.utilization", [utilization], unit="1", description="CPU busy share.")
    _export(collector, reader)
    provider.shutdown()

    reply = scrape(_port(collector))
    assert reply.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert families(reply.text) == {
        "target_info": ("gauge", "Target metadata"),
        "http_server_requests": ("counter", "Requests served."),
        "queue_bytes_sent": ("counter", "Bytes sent."),
        "queue_size": ("gauge", "Items queued."),
        "http_server_duration_seconds": ("histogram", "Request duration."),
        "payload_size_bytes": ("histogram", "Payload sizes."),
        "cpu_utilization_ratio": ("gauge", "CPU busy share."),
    }
    assert samples(reply.text) == {
        ("target_info", frozenset({**TARGET, "host_name": "h1"}.items())): 1.0,
        ("http_server_requests_total", _labels(http_method="GET", key_1st_try="true")): 3.0,
        ("http_server_requests_total", _labels(http_method="POST", key_1st_try="false")): 2.0,
        ("queue_bytes_sent_total", _labels()): 10.0,
        ("queue_size", _labels()): 3.0,
        ("http_server_duration_seconds_bucket", _labels(le="0.1")): 1.0,
        ("http_server_duration_seconds_bucket", _labels(le="0.5")): 2.0,
        ("http_server_duration_seconds_bucket", _labels(le="1")): 2.0,
        ("http_server_duration_seconds_bucket", _labels(le="+Inf")): 3.0,
        ("http_server_duration_seconds_sum", _labels()): 2.35,
        ("http_server_duration_seconds_count", _labels()): 3.0,
        # A native histogram: the text format carries its count, sum and the +Inf bucket only.
        ("payload_size_bytes_bucket", _labels(le="+Inf")): 3.0,
        ("payload_size_bytes_sum", _labels()): 600.0,
        ("payload_size_bytes_count", _labels()): 3.0,
        ("cpu_utilization_ratio", _labels(cpu="0")): 0.5,
    }


def test_a_summary_is_exposed_by_quantile(collector: RunningService) -> None:
    data = MetricsData()
    scope_metrics = data.resource_metrics.add().scope_metrics.add()
    scope_metrics.scope.name = "legacy"
    metric = scope_metrics.metrics.add(name="rpc.latency", unit="ms", description="Latency quantiles.")
    point = metric.summary.data_points.add(count=4, sum=10.0, time_unix_nano=1)
    point.quantile_values.add(quantile=0.5, value=2.0)
    point.quantile_values.add(quantile=0.99, value=4.0)
    reply = httpx.post(
        f"http://127.0.0.1:{collector.port()}/v1/metrics", content=data.SerializeToString(), headers=PROTOBUF
    )
    assert reply.status_code == 200, reply.text
    text = scrape(_port(collector)).text
    scope = {"otel_scope_name": "legacy"}
    assert families(text) == {"rpc_latency_milliseconds": ("summary", "Latency quantiles.")}
    assert samples(text) == {
        ("rpc_latency_milliseconds", frozenset({**scope, "quantile": "0.5"}.items())): 2.0,
        ("rpc_latency_milliseconds", frozenset({**scope, "quantile": "0.99"}.items())): 4.0,
        ("rpc_latency_milliseconds_sum", frozenset(scope.items())): 10.0,
        ("rpc_latency_milliseconds_count", frozenset(scope.items())): 4.0,
    }


def test_delta_sums_and_histograms_add_up_to_cumulative_series(collector: RunningService) -> None:
    delta = {Counter: AggregationTemporality.DELTA, Histogram: AggregationTemporality.DELTA}
    reader = InMemoryMetricReader(preferred_temporality=delta)  # type: ignore[arg-type]
    provider = _meter_provider(reader)
    meter = provider.get_meter("shop.checkout", "1.2")
    counter = meter.create_counter("jobs.done")
    histogram = meter.create_histogram("http.server.duration", unit="s")
    counter.add(4)
    histogram.record(0.3)
    _export(collector, reader)
    counter.add(6)
    histogram.record(0.05)
    _export(collector, reader)
    provider.shutdown()

    found = samples(scrape(_port(collector)).text)
    assert found[("jobs_done_total", _labels())] == 10.0
    assert found[("http_server_duration_seconds_count", _labels())] == 2.0
    assert found[("http_server_duration_seconds_bucket", _labels(le="0.1"))] == 1.0
    assert found[("http_server_duration_seconds_bucket", _labels(le="0.5"))] == 2.0


def _store(max_series: int = 10, clock: ManualClock | None = None) -> tuple[MetricStore, list[str]]:
    dropped: list[str] = []
    store = MetricStore(Naming(), max_series, expiration=300.0, on_dropped=dropped.append, clock=clock or ManualClock())
    return store, dropped


def _gauge(name: str, value: float, time_unix_nano: int = 1, **attributes: str) -> MetricsData:
    data = MetricsData()
    metric = data.resource_metrics.add().scope_metrics.add().metrics.add(name=name)
    point = metric.gauge.data_points.add(as_double=value, time_unix_nano=time_unix_nano)
    for key, text in attributes.items():
        point.attributes.add(key=key).value.string_value = text
    return data


def test_resource_attributes_as_labels_and_names_without_suffixes() -> None:
    data = _gauge("disk.usage", 0.25)
    data.resource_metrics[0].resource.attributes.add(key="host.name").value.string_value = "h1"
    metric = data.resource_metrics[0].scope_metrics[0].metrics[0]
    metric.unit = "1"
    store = MetricStore(Naming(add_metric_suffixes=False, resource_to_telemetry=True), 10, 300.0, print)
    store.add(data)
    [(name, family)] = store.families.items()
    assert name == "disk_usage"
    assert list(family.series) == [
        (("host_name", "h1"), ("otel_scope_name", ""), ("otel_scope_schema_url", ""), ("otel_scope_version", ""))
    ]


def test_series_not_updated_within_metric_expiration_go() -> None:
    clock = ManualClock()
    store, _ = _store(clock=clock)
    store.add(_gauge("old", 1.0))
    clock.now += 200
    store.add(_gauge("fresh", 2.0))
    clock.now += 150  # "old" is 350 s old, "fresh" 150 s
    store.expire()
    assert list(store.families) == ["fresh"]


def test_an_older_point_does_not_replace_a_newer_one() -> None:
    store, _ = _store()
    store.add(_gauge("temperature", 20.0, time_unix_nano=2))
    store.add(_gauge("temperature", 10.0, time_unix_nano=1))
    [series] = store.families["temperature"].series.values()
    assert series.value == 20.0


def test_points_of_series_beyond_max_series_are_dropped_and_counted(make_settings: Any) -> None:
    telemetry = Telemetry()
    settings: ComponentSettings = make_settings("prometheus", telemetry=telemetry)
    exporter = PrometheusExporter(settings, PrometheusExporterConfig(max_series=2))
    for model in ("a", "b", "c", "a"):
        asyncio.run(exporter.consume(_gauge("calls", 1.0, model=model)))
    assert {dict(labels)["model"] for labels in exporter.store.families["calls"].series} == {"a", "b"}
    assert 'genai_prometheus_dropped_points_total{exporter="prometheus",metric="calls"} 1' in telemetry.render()


@pytest.mark.parametrize(
    ("name", "unit", "kind", "expected"),
    [
        ("http.server.duration", "s", Kind.HISTOGRAM, "http_server_duration_seconds"),
        ("requests.count", "1", Kind.COUNTER, "requests_count_total"),
        ("memory.usage", "By", Kind.GAUGE, "memory_usage_bytes"),
        ("system.network.io", "By/s", Kind.COUNTER, "system_network_io_bytes_per_second_total"),
        ("cpu.utilization", "1", Kind.GAUGE, "cpu_utilization_ratio"),
        ("total.requests", "", Kind.COUNTER, "requests_total"),
        ("queue.bytes", "By", Kind.GAUGE, "queue_bytes"),
        ("gen_ai.client.token.usage", "{token}", Kind.HISTOGRAM, "gen_ai_client_token_usage"),
        ("2xx.responses", "", Kind.GAUGE, "_2xx_responses"),
        ("a__b--c", "", Kind.GAUGE, "a_b_c"),
        ("queue.length", "1", Kind.NON_MONOTONIC_SUM, "queue_length"),
    ],
)
def test_metric_names(name: str, unit: str, kind: Kind, expected: str) -> None:
    assert metric_name(name, unit, kind) == expected


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("http.method", "http_method"),
        ("123invalid", "key_123invalid"),
        ("__reserved__", "__reserved__"),
        ("a..b", "a_b"),
        ("über", "_ber"),
        ("...", ""),
    ],
)
def test_label_names(key: str, expected: str) -> None:
    assert label_name(key) == expected


def test_the_admin_endpoint_counts_the_points_the_exporter_took(collector: RunningService) -> None:
    reader = InMemoryMetricReader()
    provider = _meter_provider(reader)
    provider.get_meter("shop.checkout", "1.2").create_counter("jobs.done").add(1)
    _export(collector, reader)
    provider.shutdown()
    own = httpx.get(f"http://127.0.0.1:{collector.admin_port()}/metrics", headers=collector.admin_headers())
    found = samples(own.text)
    assert found[("otelcol_exporter_sent_metric_points_total", frozenset({("exporter", "prometheus")}))] == 1.0


def test_prometheus_in_a_traces_pipeline_is_one_line_saying_how_to_move() -> None:
    document = yaml.safe_load(_config())
    document["service"]["pipelines"] = {"traces": {"receivers": ["otlp"], "exporters": ["prometheus"]}}
    with pytest.raises(ConfigError) as error:
        parse_config(document, default_registry())
    [line] = [str(p) for p in error.value.problems]
    assert line.startswith(
        "service.pipelines.traces.exporters[0]: prometheus does not support traces; prometheus exposes metrics "
        "pipelines now: export the traces to the genai_metrics connector and add a metrics pipeline"
    )


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ({"max_series": 0}, "exporters.prometheus.max_series: must be at least 1"),
        ({"endpoint": "8889"}, "exporters.prometheus.endpoint: expected host:port"),
        ({"path": "/m"}, "exporters.prometheus.path: unknown key"),
        ({"metric_expiration": "0s"}, "exporters.prometheus.metric_expiration: must be more than 0"),
        ({"const_labels": {"a.b": "x"}}, "exporters.prometheus.const_labels.a.b: is not a valid Prometheus label"),
        ({"semconv": "v1.41"}, "exporters.prometheus.semconv: moved to the genai_metrics connector"),
    ],
)
def test_config_mistakes(raw: dict[str, Any], problem: str) -> None:
    with pytest.raises(ConfigError) as error:
        decode(PrometheusExporterConfig, raw, "exporters.prometheus")
    [line] = [str(p) for p in error.value.problems]
    assert line.startswith(problem), line


def test_namespace_and_const_labels(tmp_path: Path) -> None:
    running = RunningService(_config('    namespace: shop\n    const_labels: {region: eu}'), tmp_path)
    try:
        reply = httpx.post(
            f"http://127.0.0.1:{running.port()}/v1/metrics",
            content=_gauge("queue.length", 7.0).SerializeToString(),
            headers=PROTOBUF,
        )
        assert reply.status_code == 200
        text = scrape(_port(running)).text
    finally:
        running.stop()
    assert samples(text) == {("shop_queue_length", frozenset({("region", "eu")})): 7.0}


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
    assert (str(config.endpoint), config.max_series, config.metric_expiration) == ("127.0.0.1:8889", 2000, 300.0)


def test_metric_names_and_targets_beyond_their_bounds_are_dropped_and_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(prometheus_store, "MAX_METRIC_NAMES", 2)
    monkeypatch.setattr(prometheus_store, "MAX_TARGETS", 1)
    store, dropped = _store()
    for name in ("one", "two", "three"):
        data = _gauge(name, 1.0)
        data.resource_metrics[0].resource.attributes.add(key="service.name").value.string_value = f"svc-{name}"
        store.add(data)
    assert sorted(store.families) == ["one", "two"] and len(store.targets) == 1
    assert dropped == [prometheus_store.OVER_MAX_METRIC_NAMES]


def test_series_expire_as_data_arrives_when_nobody_scrapes() -> None:
    clock = ManualClock()
    store, _ = _store(clock=clock)
    store.add(_gauge("old", 1.0))
    clock.now += 400  # past the expiration (300 s) and the expiry interval, no scrape in between
    store.add(_gauge("fresh", 2.0))
    assert list(store.families) == ["fresh"]
