"""The whole otel-config.yaml against the built-in registry: components by ID, pipelines, extensions, listeners."""

from __future__ import annotations

import logging
import socket
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from collector.component import ComponentID
from collector.config.problems import ConfigError
from collector.config.service import CollectorConfig, PipelineConfig, check_listeners, load_config, parse_config
from collector.config.types import HostPort
from collector.registry import Registry, default_registry
from tests.conftest import MINIMAL_CONFIG, free_port

PIPELINE = MINIMAL_CONFIG

MULTI_PIPELINE = """
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:0
  otlp/second:
    protocols:
      grpc:
        endpoint: 127.0.0.1:0
processors:
  batch:
  batch/fast:
    timeout: 50ms
exporters:
  clickhouse:
    ttl: 72h
  debug:
  debug/verbose:
    verbosity: detailed
  debug/unused:
extensions:
  admin:
    endpoint: 127.0.0.1:0
service:
  extensions: [admin]
  telemetry:
    logs:
      level: debug
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [clickhouse, debug]
    traces/second:
      receivers: [otlp/second, otlp]
      processors: [batch/fast]
      exporters: [debug/verbose, debug]
"""


@pytest.fixture(scope="module")
def registry() -> Registry:
    return default_registry()


@pytest.fixture
def held_port() -> Iterator[int]:
    """A port some other program is listening on for the duration of the test."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        yield int(sock.getsockname()[1])


def _doc(text: str) -> dict[str, Any]:
    document = yaml.safe_load(textwrap.dedent(text))
    assert isinstance(document, dict)
    return document


def _parse(text: str, registry: Registry) -> CollectorConfig:
    return parse_config(_doc(text), registry)


def _problems(text: str, registry: Registry) -> list[str]:
    with pytest.raises(ConfigError) as error:
        _parse(text, registry)
    return [str(p) for p in error.value.problems]


def _listener_problems(config: CollectorConfig) -> list[str]:
    with pytest.raises(ConfigError) as error:
        check_listeners(config)
    return [str(p) for p in error.value.problems]


def _with_http_endpoint(endpoint: str) -> str:
    return PIPELINE.replace("127.0.0.1:0", endpoint)


def test_registry_has_the_builtin_components(registry: Registry) -> None:
    assert {"otlp"} <= set(registry.kind("receivers"))
    assert {"batch"} <= set(registry.kind("processors"))
    assert {"clickhouse", "debug"} <= set(registry.kind("exporters"))
    assert {"admin"} <= set(registry.kind("extensions"))


def test_multi_pipeline_config_is_parsed(registry: Registry) -> None:
    config = _parse(MULTI_PIPELINE, registry)
    otlp, otlp_second = ComponentID("otlp"), ComponentID("otlp", "second")
    debug, verbose = ComponentID("debug"), ComponentID("debug", "verbose")
    assert config.pipelines == {
        "traces": PipelineConfig("traces", (otlp,), (ComponentID("batch"),), (ComponentID("clickhouse"), debug)),
        "traces/second": PipelineConfig(
            "traces/second", (otlp_second, otlp), (ComponentID("batch", "fast"),), (verbose, debug)
        ),
    }
    assert config.extensions == (ComponentID("admin"),)


def test_components_are_keyed_by_type_and_name(registry: Registry) -> None:
    config = _parse(MULTI_PIPELINE, registry)
    verbose = config.components["exporters"][ComponentID("debug", "verbose")]
    assert (verbose.section, verbose.path, verbose.config.verbosity) == (
        "exporters",
        "exporters.debug/verbose",
        "detailed",
    )
    assert config.components["exporters"][ComponentID("debug")].config.verbosity == "basic"
    assert float(config.components["exporters"][ComponentID("clickhouse")].config.ttl) == 72 * 3600.0
    assert float(config.components["processors"][ComponentID("batch", "fast")].config.timeout) == pytest.approx(0.05)
    assert str(ComponentID("debug", "verbose")) == "debug/verbose"
    assert ComponentID.parse("debug/verbose") == ComponentID("debug", "verbose")


def test_used_lists_what_the_pipelines_run_in_a_stable_order(registry: Registry) -> None:
    config = _parse(MULTI_PIPELINE, registry)
    assert [str(c.id) for c in config.used("receivers")] == ["otlp", "otlp/second"]
    assert [str(c.id) for c in config.used("processors")] == ["batch", "batch/fast"]
    # debug/unused is defined but in no pipeline: it does not run.
    assert [str(c.id) for c in config.used("exporters")] == ["clickhouse", "debug", "debug/verbose"]
    assert [str(c.id) for c in config.used("extensions")] == ["admin"]


def test_listeners_are_named_by_their_yaml_path(registry: Registry) -> None:
    config = _parse(MULTI_PIPELINE, registry)
    assert [(lst.path, lst.endpoint) for lst in config.listeners()] == [
        ("receivers.otlp.protocols.http.endpoint", HostPort("127.0.0.1", 0)),
        ("receivers.otlp/second.protocols.grpc.endpoint", HostPort("127.0.0.1", 0)),
        ("extensions.admin.endpoint", HostPort("127.0.0.1", 0)),
    ]


@pytest.mark.parametrize(
    ("level", "expected"),
    [("debug", logging.DEBUG), ("info", logging.INFO), ("warn", logging.WARNING), ("error", logging.ERROR)],
)
def test_log_level(registry: Registry, level: str, expected: int) -> None:
    config = _parse(PIPELINE + f"  telemetry:\n    logs:\n      level: {level}\n", registry)
    assert config.log_level == expected


def test_log_level_defaults_to_info(registry: Registry) -> None:
    assert _parse(PIPELINE, registry).log_level == logging.INFO


def test_component_with_no_settings_gets_its_defaults(registry: Registry) -> None:
    config = _parse(PIPELINE, registry)
    otlp = config.components["receivers"][ComponentID("otlp")].config
    assert otlp.protocols.grpc is None
    assert otlp.protocols.http.endpoint == HostPort("127.0.0.1", 0)
    assert otlp.protocols.http.traces_url_path == "/v1/traces"


def test_shipped_config_parses(registry: Registry) -> None:
    shipped = Path(__file__).resolve().parents[3] / "otel-config.yaml"
    config = load_config(shipped, registry, environ={})
    assert list(config.pipelines) == ["traces", "metrics", "logs", "metrics/app"]
    assert [str(c.id) for c in config.used("exporters")] == ["clickhouse", "prometheus"]
    assert [str(c.id) for c in config.used("connectors")] == ["genai_metrics"]
    assert config.pipelines["traces"].exporters == (ComponentID("clickhouse"), ComponentID("genai_metrics"))
    assert config.pipelines["metrics"].receivers == (ComponentID("genai_metrics"),)
    # Apps' logs and metrics go to the store; the GenAI metrics derived from spans to Prometheus only.
    for name in ("logs", "metrics/app"):
        assert config.pipelines[name].receivers == (ComponentID("otlp"),)
        assert config.pipelines[name].exporters == (ComponentID("clickhouse"),)
    assert [str(c.id) for c in config.used("processors")] == [
        "memory_limiter",
        "genai_normalize",
        "genai_dedup",
        "genai_cost",
        "genai_security",
        "genai_loop_detection",
    ]
    assert [lst.path for lst in config.listeners()] == [
        "receivers.otlp.protocols.grpc.endpoint",
        "receivers.otlp.protocols.http.endpoint",
        "receivers.genai_proxy.endpoint",
        "exporters.prometheus.endpoint",
        "extensions.admin.endpoint",
        "extensions.api.endpoint",
        "extensions.api.grpc_endpoint",
    ]
    proxy = config.components["receivers"][ComponentID("genai_proxy")].config
    assert [(u.name, u.kind, u.base_url) for u in proxy.upstreams] == [
        ("openai", "openai", "https://api.openai.com/v1"),
        ("anthropic", "anthropic", "https://api.anthropic.com"),
    ]
    assert proxy.capture_content is True


def test_load_config_expands_the_given_environment(tmp_path: Path, registry: Registry) -> None:
    path = tmp_path / "otel-config.yaml"
    path.write_text(PIPELINE.replace("127.0.0.1:0", "${env:EP}") + "  telemetry: {logs: {level: '${env:LVL:-warn}'}}\n")
    config = load_config(path, registry, environ={"EP": "127.0.0.1:7001"})
    assert config.components["receivers"][ComponentID("otlp")].config.protocols.http.endpoint == HostPort(
        "127.0.0.1", 7001
    )
    assert config.telemetry.logs.level == "warn"


def test_load_config_reports_a_missing_file(tmp_path: Path, registry: Registry) -> None:
    with pytest.raises(ConfigError) as error:
        load_config(tmp_path / "absent.yaml", registry)
    assert [str(p) for p in error.value.problems] == [f"config file {tmp_path / 'absent.yaml'} does not exist"]


def test_load_config_reports_a_bad_reference_with_its_path(tmp_path: Path, registry: Registry) -> None:
    path = tmp_path / "otel-config.yaml"
    path.write_text(PIPELINE.replace("127.0.0.1:0", "${HTTP_ENDPOINT}"))
    with pytest.raises(ConfigError) as error:
        load_config(path, registry, environ={})
    assert [str(p) for p in error.value.problems] == [
        "receivers.otlp.protocols.http.endpoint: cannot expand ${HTTP_ENDPOINT}; "
        "write ${env:NAME} or ${env:NAME:-default}"
    ]


PROBLEM_CASES: list[tuple[str, str, list[str]]] = [
    (
        "unknown top-level key",
        PIPELINE + "connector: {}\n",
        ["connector: unknown key; expected one of receivers, processors, exporters, connectors, extensions, service"],
    ),
    (
        "section is not a mapping",
        PIPELINE.replace("exporters:\n  debug:\n", "exporters: [debug]\n"),
        [
            "exporters: expected a mapping of components, got a list",
            'service.pipelines.traces.exporters[0]: exporter "debug" is not defined in the exporters section',
        ],
    ),
    (
        "unknown component type",
        PIPELINE.replace("exporters:\n  debug:\n", "exporters:\n  debug:\n  kafka:\n"),
        [
            'exporters.kafka: unknown exporter type "kafka"; '
            "known: alerts, clickhouse, debug, loadbalancing, otlp, otlphttp, prometheus"
        ],
    ),
    (
        "invalid component id",
        PIPELINE.replace("exporters:\n  debug:\n", "exporters:\n  debug:\n  debug/:\n"),
        ['exporters.debug/: invalid component id "debug/"; expected type or type/name'],
    ),
    (
        "unknown key inside a component",
        PIPELINE.replace("  debug:\n", "  debug:\n    verbose: true\n"),
        ["exporters.debug.verbose: unknown key; expected one of verbosity"],
    ),
    (
        "wrong value inside a component",
        PIPELINE.replace("  debug:\n", "  debug:\n    verbosity: loud\n"),
        ['exporters.debug.verbosity: expected one of basic, normal, detailed, got "loud"'],
    ),
    (
        "bad duration",
        PIPELINE + "processors:\n  batch:\n    timeout: soon\n",
        ['processors.batch.timeout: expected a duration like 72h, got "soon"'],
    ),
    (
        "bad host:port",
        _with_http_endpoint("4318"),
        ["receivers.otlp.protocols.http.endpoint: expected host:port like 127.0.0.1:4318, got 4318"],
    ),
    (
        "component validate hook",
        PIPELINE.replace("endpoint: 127.0.0.1:0\n", "endpoint: 127.0.0.1:0\n        traces_url_path: v1/traces\n"),
        ['receivers.otlp.protocols.http.traces_url_path: must start with "/", got "v1/traces"'],
    ),
    (
        "no protocol enabled",
        PIPELINE.replace("    protocols:\n      http:\n        endpoint: 127.0.0.1:0\n", "    protocols: {}\n"),
        ["receivers.otlp.protocols: enable at least one of grpc, http"],
    ),
    (
        "service missing",
        PIPELINE.split("service:")[0],
        ["service: is required, with at least one pipeline"],
    ),
    (
        "service not a mapping",
        PIPELINE.split("service:")[0] + "service: [traces]\n",
        ["service: is required, with at least one pipeline"],
    ),
    (
        "workers not a number",
        PIPELINE + "  workers: many\n",
        ['service.workers: expected auto or a number from 0, got "many"'],
    ),
    (
        "workers below zero",
        PIPELINE + "  workers: -1\n",
        ["service.workers: expected auto or a number from 0, got -1"],
    ),
    (
        "a main-process processor between worker processors",
        PIPELINE.replace(
            "exporters: [debug]", "processors: [genai_normalize, batch, genai_cost]\n      exporters: [debug]"
        )
        + "processors:\n  genai_normalize:\n  batch:\n  genai_cost:\n",
        [
            'service.pipelines.traces.processors: processor "batch" runs in the main process, so it cannot sit '
            "between processors that run in the worker processes; put it before or after them"
        ],
    ),
    (
        "unknown service key",
        PIPELINE + "  connectors: {}\n",
        ["service.connectors: unknown key; expected one of extensions, pipelines, telemetry, workers"],
    ),
    (
        "no pipelines",
        PIPELINE.split("  pipelines:")[0] + "  pipelines: {}\n",
        ["service.pipelines: define at least one pipeline (traces, logs or metrics)"],
    ),
    (
        "unknown signal",
        PIPELINE.replace("    traces:\n", "    profiles:\n"),
        ['service.pipelines.profiles: unknown signal "profiles"; expected one of traces, logs, metrics'],
    ),
    (
        "an exporter without the URL of a signal it is used in",
        PIPELINE.replace(
            "exporters:\n  debug:\n",
            "exporters:\n  debug:\n  otlphttp:\n    traces_endpoint: http://t:4318/v1/traces\n",
        )
        + "    logs:\n      receivers: [otlp]\n      exporters: [otlphttp]\n",
        ["exporters.otlphttp.logs_endpoint: is required for a logs pipeline when endpoint is not set"],
    ),
    (
        "unknown signal with a name",
        PIPELINE + "    events/app:\n      receivers: [otlp]\n      exporters: [debug]\n",
        ['service.pipelines.events/app: unknown signal "events"; expected one of traces, logs, metrics'],
    ),
    (
        "a processor in a signal it does not support",
        PIPELINE
        + "    logs/app:\n      receivers: [otlp]\n      processors: [batch, genai_cost]\n      exporters: [debug]\n"
        + "processors:\n  batch:\n  genai_cost:\n",
        ["service.pipelines.logs/app.processors[1]: genai_cost does not support logs"],
    ),
    (
        "pipeline not a mapping",
        PIPELINE.split("    traces:")[0] + "    traces: [otlp, debug]\n",
        ["service.pipelines.traces: expected a mapping with receivers, processors and exporters"],
    ),
    (
        "unknown pipeline key",
        PIPELINE + "      connectors: []\n",
        ["service.pipelines.traces.connectors: unknown key; expected one of exporters, processors, receivers"],
    ),
    (
        "pipeline list is not a list",
        PIPELINE.replace("receivers: [otlp]", "receivers: otlp"),
        ['service.pipelines.traces.receivers: expected a list of component IDs, got "otlp"'],
    ),
    (
        "pipeline without receivers key",
        PIPELINE.replace("      receivers: [otlp]\n", ""),
        ["service.pipelines.traces.receivers: at least one receiver is required"],
    ),
    (
        "pipeline with an empty exporters list",
        PIPELINE.replace("exporters: [debug]", "exporters: []"),
        ["service.pipelines.traces.exporters: at least one exporter is required"],
    ),
    (
        "pipeline names an undefined component",
        PIPELINE.replace("exporters: [debug]", "exporters: [debug, debug/two]"),
        ['service.pipelines.traces.exporters[1]: exporter "debug/two" is not defined in the exporters section'],
    ),
    (
        "pipeline names an undefined processor",
        PIPELINE + "      processors: [batch]\n",
        ['service.pipelines.traces.processors[0]: processor "batch" is not defined in the processors section'],
    ),
    (
        "pipeline lists a component twice",
        PIPELINE.replace("receivers: [otlp]", "receivers: [otlp, otlp]"),
        ['service.pipelines.traces.receivers[1]: "otlp" is listed twice'],
    ),
    (
        "pipeline names an invalid id",
        PIPELINE.replace("receivers: [otlp]", "receivers: [otlp, /x]"),
        ['service.pipelines.traces.receivers[1]: invalid component id "/x"; expected type or type/name'],
    ),
    (
        "undefined extension",
        PIPELINE + "  extensions: [admin]\n",
        ['service.extensions[0]: extension "admin" is not defined in the extensions section'],
    ),
    (
        "bad log level",
        PIPELINE + "  telemetry:\n    logs:\n      level: verbose\n",
        ['service.telemetry.logs.level: expected one of debug, info, warn, error, got "verbose"'],
    ),
    (
        "unknown telemetry key",
        PIPELINE + "  telemetry:\n    metrics:\n      level: basic\n",
        ["service.telemetry.metrics: unknown key; expected one of logs"],
    ),
]


@pytest.mark.parametrize(
    ("text", "expected"), [case[1:] for case in PROBLEM_CASES], ids=[case[0] for case in PROBLEM_CASES]
)
def test_each_kind_of_problem_names_its_yaml_path(registry: Registry, text: str, expected: list[str]) -> None:
    assert _problems(text, registry) == expected


def test_a_broken_component_is_reported_once_not_again_by_the_pipeline(registry: Registry) -> None:
    text = PIPELINE.replace("  debug:\n", "  debug:\n    verbosity: 3\n")
    assert _problems(text, registry) == ["exporters.debug.verbosity: expected one of basic, normal, detailed, got 3"]


def test_every_problem_is_reported_at_once(registry: Registry) -> None:
    text = """
    receivers:
      otlp:
        protocols:
          http:
            endpoint: localhost
      zipkin:
    exporters:
      clickhouse:
        ttl: banana
        sending_queue:
          queue_size: lots
    service:
      pipelines:
        traces:
          receivers: [otlp]
          exporters: [clickhouse, debug]
        metric:
          receivers: [otlp]
          exporters: [clickhouse]
    """
    assert _problems(text, registry) == [
        'receivers.otlp.protocols.http.endpoint: expected host:port like 127.0.0.1:4318, got "localhost"',
        'receivers.zipkin: unknown receiver type "zipkin"; known: genai_proxy, otlp',
        'exporters.clickhouse.ttl: expected a duration like 72h, got "banana"',
        'exporters.clickhouse.sending_queue.queue_size: expected an integer, got "lots"',
        'service.pipelines.traces.exporters[1]: exporter "debug" is not defined in the exporters section',
        'service.pipelines.metric: unknown signal "metric"; expected one of traces, logs, metrics',
    ]


def test_check_listeners_accepts_free_and_any_ports(registry: Registry) -> None:
    check_listeners(_parse(MULTI_PIPELINE, registry))
    check_listeners(_parse(_with_http_endpoint(f"127.0.0.1:{free_port()}"), registry))


def test_check_listeners_reports_a_port_in_use(registry: Registry, held_port: int) -> None:
    config = _parse(_with_http_endpoint(f"127.0.0.1:{held_port}"), registry)
    assert _listener_problems(config) == [
        f"receivers.otlp.protocols.http.endpoint: 127.0.0.1:{held_port} is already in use"
    ]


def test_check_listeners_reports_every_port_in_use(registry: Registry, held_port: int) -> None:
    text = MULTI_PIPELINE.replace(
        "      grpc:\n        endpoint: 127.0.0.1:0", f"      grpc:\n        endpoint: 127.0.0.1:{held_port}"
    ).replace("  admin:\n    endpoint: 127.0.0.1:0", f"  admin:\n    endpoint: 127.0.0.1:{held_port}")
    assert _listener_problems(_parse(text, registry)) == [
        f"receivers.otlp/second.protocols.grpc.endpoint: 127.0.0.1:{held_port} is already in use",
        f"extensions.admin.endpoint: 127.0.0.1:{held_port} is also used by "
        "receivers.otlp/second.protocols.grpc.endpoint",
    ]


def test_check_listeners_reports_two_components_on_one_port(registry: Registry) -> None:
    port = free_port()
    text = f"""
    receivers:
      otlp:
        protocols:
          grpc:
            endpoint: 127.0.0.1:{port}
          http:
            endpoint: 127.0.0.1:{port}
    exporters:
      debug:
    service:
      pipelines:
        traces:
          receivers: [otlp]
          exporters: [debug]
    """
    assert _listener_problems(_parse(text, registry)) == [
        f"receivers.otlp.protocols.http.endpoint: 127.0.0.1:{port} is also used by "
        "receivers.otlp.protocols.grpc.endpoint"
    ]


def test_check_listeners_ignores_components_no_pipeline_uses(registry: Registry, held_port: int) -> None:
    idle = f"  otlp/idle:\n    protocols:\n      http:\n        endpoint: 127.0.0.1:{held_port}\n"
    text = PIPELINE.replace("\nexporters:\n", "\n" + idle + "exporters:\n", 1)
    config = _parse(text, registry)
    assert ComponentID("otlp", "idle") in config.components["receivers"]
    check_listeners(config)


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        ("receivers: [otlp]", "receivers:", "service.pipelines.traces.receivers: at least one receiver is required"),
        ("exporters: [debug]", "exporters:", "service.pipelines.traces.exporters: at least one exporter is required"),
    ],
)
def test_pipeline_with_an_empty_list_key_is_a_problem(registry: Registry, old: str, new: str, problem: str) -> None:
    assert _problems(PIPELINE.replace(old, new), registry) == [problem]


def test_invalid_pipeline_id_is_a_problem(registry: Registry) -> None:
    problems = _problems(PIPELINE.replace("    traces:\n", "    traces/:\n"), registry)
    assert len(problems) == 1
    assert problems[0].startswith("service.pipelines.traces/: ")


def test_empty_pipeline_entry_is_shown_the_yaml_way(registry: Registry) -> None:
    text = PIPELINE.replace("exporters: [debug]", "exporters:\n        - debug\n        -\n")
    problems = _problems(text, registry)
    assert len(problems) == 1
    assert problems[0].startswith("service.pipelines.traces.exporters[1]: ")
    assert "None" not in problems[0] and "nothing" in problems[0]


def test_check_listeners_reports_overlapping_addresses(registry: Registry) -> None:
    port = free_port()
    text = f"""
    receivers:
      otlp:
        protocols:
          grpc:
            endpoint: 0.0.0.0:{port}
          http:
            endpoint: 127.0.0.1:{port}
    exporters:
      debug:
    service:
      pipelines:
        traces:
          receivers: [otlp]
          exporters: [debug]
    """
    problems = _listener_problems(_parse(text, registry))
    assert len(problems) == 1
    assert problems[0].startswith("receivers.otlp.protocols.http.endpoint: ")


@pytest.mark.parametrize("password", ["0123", "12:30", "yes", "1.10"])
def test_env_value_for_a_string_field_is_kept_as_written(tmp_path: Path, registry: Registry, password: str) -> None:
    path = tmp_path / "otel-config.yaml"
    path.write_text(
        PIPELINE.replace(
            "exporters:\n  debug:\n",
            "exporters:\n  debug:\n  clickhouse:\n    endpoint: http://127.0.0.1:8123\n    password: ${env:PW}\n",
        )
    )
    config = load_config(path, registry, environ={"PW": password})
    assert config.components["exporters"][ComponentID("clickhouse")].config.password.reveal() == password


@pytest.mark.parametrize(("text", "workers"), [("auto", None), ("0", 0), ("3", 3)])
def test_workers_are_auto_or_a_number(text: str, workers: int | None, registry: Registry) -> None:
    config = parse_config(yaml.safe_load(PIPELINE + f"  workers: {text}\n"), registry)
    assert config.workers == workers
