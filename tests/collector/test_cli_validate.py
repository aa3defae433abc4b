"""``genai-collector validate`` as a user runs it: one line per mistake naming its YAML path, exit 2, no traceback."""

from __future__ import annotations

import dataclasses
import os
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from collector.receivers.otlp.config import HttpSettings
from collector.registry import default_registry
from tests.conftest import MINIMAL_CONFIG, free_ports

REPO_ROOT = Path(__file__).resolve().parents[2]
EXIT_USAGE = 2

VALID = MINIMAL_CONFIG

WITH_CLICKHOUSE = """
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:0
exporters:
  clickhouse:
    ttl: {ttl}
service:
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [clickhouse]
"""


def _environ(**extra: str) -> dict[str, str]:
    """The test's environment without the variables the shipped config reads, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GENAI_COLLECTOR_")}
    env.update(extra)
    return env


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "otel-config.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def _validate(config: Path, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "collector", "validate", "--config", str(config)],
        cwd=cwd,
        env=_environ() if env is None else env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _assert_problems(result: subprocess.CompletedProcess[str], lines: list[str]) -> None:
    assert "Traceback" not in result.stderr
    assert (result.returncode, result.stdout) == (EXIT_USAGE, "")
    assert result.stderr.splitlines() == lines


@pytest.fixture
def held_port() -> Iterator[int]:
    """A loopback port another program is listening on while the test runs."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        yield int(sock.getsockname()[1])


def test_valid_config_exits_zero(tmp_path: Path) -> None:
    path = _write(tmp_path, VALID)
    result = _validate(path, tmp_path)
    assert (result.returncode, result.stdout, result.stderr) == (0, f"{path}: configuration is valid\n", "")


def test_shipped_config_is_valid() -> None:
    grpc, http, admin, proxy = free_ports(4)
    env = _environ(
        GENAI_COLLECTOR_PROXY_ENDPOINT=f"127.0.0.1:{proxy}",
        GENAI_COLLECTOR_OTLP_GRPC_ENDPOINT=f"127.0.0.1:{grpc}",
        GENAI_COLLECTOR_OTLP_HTTP_ENDPOINT=f"127.0.0.1:{http}",
        GENAI_COLLECTOR_ADMIN_ENDPOINT=f"127.0.0.1:{admin}",
    )
    result = _validate(Path("otel-config.yaml"), REPO_ROOT, env)
    assert (result.returncode, result.stdout, result.stderr) == (0, "otel-config.yaml: configuration is valid\n", "")


def test_unknown_component_type(tmp_path: Path) -> None:
    path = _write(tmp_path, VALID.replace("  debug:\n", "  debug:\n  kafka:\n    brokers: [localhost:9092]\n"))
    known = ", ".join(sorted(default_registry().kind("exporters")))
    _assert_problems(_validate(path, tmp_path), [f'exporters.kafka: unknown exporter type "kafka"; known: {known}'])


def test_unknown_key_inside_a_component(tmp_path: Path) -> None:
    path = _write(tmp_path, VALID.replace("endpoint: 127.0.0.1:0\n", "endpoint: 127.0.0.1:0\n        cors: {}\n"))
    known = ", ".join(sorted(f.name for f in dataclasses.fields(HttpSettings)))
    _assert_problems(
        _validate(path, tmp_path), [f"receivers.otlp.protocols.http.cors: unknown key; expected one of {known}"]
    )


def test_wrong_type(tmp_path: Path) -> None:
    path = _write(tmp_path, WITH_CLICKHOUSE.format(ttl="72h\n    sending_queue:\n      queue_size: lots"))
    _assert_problems(
        _validate(path, tmp_path), ['exporters.clickhouse.sending_queue.queue_size: expected an integer, got "lots"']
    )


def test_bad_duration(tmp_path: Path) -> None:
    path = _write(tmp_path, WITH_CLICKHOUSE.format(ttl="banana"))
    _assert_problems(
        _validate(path, tmp_path), ['exporters.clickhouse.ttl: expected a duration like 72h, got "banana"']
    )


def test_pipeline_names_an_undefined_component(tmp_path: Path) -> None:
    path = _write(tmp_path, VALID.replace("exporters: [debug]", "exporters: [debug, clickhouse/archive]"))
    _assert_problems(
        _validate(path, tmp_path),
        [
            'service.pipelines.traces.exporters[1]: exporter "clickhouse/archive" '
            "is not defined in the exporters section"
        ],
    )


def test_port_in_use(tmp_path: Path, held_port: int) -> None:
    path = _write(tmp_path, VALID.replace("127.0.0.1:0", f"127.0.0.1:{held_port}"))
    _assert_problems(
        _validate(path, tmp_path),
        [f"receivers.otlp.protocols.http.endpoint: 127.0.0.1:{held_port} is already in use"],
    )


def test_missing_config_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"
    _assert_problems(_validate(path, tmp_path), [f"config file {path} does not exist"])


def test_default_config_path_missing(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "collector", "validate"],
        cwd=tmp_path,
        env=_environ(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    _assert_problems(result, ["config file otel-config.yaml does not exist"])


def test_invalid_yaml(tmp_path: Path) -> None:
    path = _write(tmp_path, VALID.replace("endpoint: 127.0.0.1:0", "{endpoint: 127.0.0.1:0"))
    _assert_problems(_validate(path, tmp_path), [f"{path}: expected ',' or '}}', but got ':' at line 7, column 10"])


def test_unknown_pipeline_signal(tmp_path: Path) -> None:
    path = _write(tmp_path, VALID + "    metric:\n      receivers: [otlp]\n      exporters: [debug]\n")
    _assert_problems(
        _validate(path, tmp_path),
        ['service.pipelines.metric: unknown signal "metric"; expected one of traces, logs, metrics'],
    )


def test_env_variable_provides_the_value(tmp_path: Path) -> None:
    path = _write(tmp_path, WITH_CLICKHOUSE.format(ttl="${env:GENAI_TEST_TTL}"))
    result = _validate(path, tmp_path, _environ(GENAI_TEST_TTL="banana"))
    _assert_problems(result, ['exporters.clickhouse.ttl: expected a duration like 72h, got "banana"'])


def test_env_default_applies_when_the_variable_is_unset(tmp_path: Path) -> None:
    path = _write(tmp_path, WITH_CLICKHOUSE.format(ttl="${env:GENAI_TEST_TTL:-someday}"))
    result = _validate(path, tmp_path, _environ())
    _assert_problems(result, ['exporters.clickhouse.ttl: expected a duration like 72h, got "someday"'])


def test_env_values_and_defaults_make_a_valid_config(tmp_path: Path, held_port: int) -> None:
    # The port comes from the environment (an integer inside a longer string), the ttl from a default.
    text = WITH_CLICKHOUSE.format(ttl="${env:GENAI_TEST_TTL:-720h}").replace(
        "127.0.0.1:0", "127.0.0.1:${env:GENAI_TEST_PORT}"
    )
    path = _write(tmp_path, text)
    free = _validate(path, tmp_path, _environ(GENAI_TEST_PORT="0"))
    assert (free.returncode, free.stdout, free.stderr) == (0, f"{path}: configuration is valid\n", "")
    # The same file with the variable pointing at a taken port proves the value was read.
    taken = _validate(path, tmp_path, _environ(GENAI_TEST_PORT=str(held_port)))
    _assert_problems(taken, [f"receivers.otlp.protocols.http.endpoint: 127.0.0.1:{held_port} is already in use"])


def test_bad_env_reference(tmp_path: Path) -> None:
    path = _write(tmp_path, WITH_CLICKHOUSE.format(ttl="${TTL}"))
    _assert_problems(
        _validate(path, tmp_path),
        ["exporters.clickhouse.ttl: cannot expand ${TTL}; write ${env:NAME} or ${env:NAME:-default}"],
    )


def test_several_mistakes_give_several_lines(tmp_path: Path) -> None:
    text = """
    receivers:
      otlp:
        protocols:
          http:
            endpoint: 127.0.0.1:0
            traces_url_path: v1/traces
    exporters:
      clickhouse:
        ttl: banana
        sending_queue:
          queue_size: lots
    service:
      telemetry:
        logs:
          level: verbose
      pipelines:
        traces:
          receivers: [otlp]
          exporters: [clickhouse, debug]
        metric:
          receivers: [otlp]
          exporters: [clickhouse]
    """
    _assert_problems(
        _validate(_write(tmp_path, text), tmp_path),
        [
            'receivers.otlp.protocols.http.traces_url_path: must start with "/", got "v1/traces"',
            'exporters.clickhouse.ttl: expected a duration like 72h, got "banana"',
            'exporters.clickhouse.sending_queue.queue_size: expected an integer, got "lots"',
            'service.pipelines.traces.exporters[1]: exporter "debug" is not defined in the exporters section',
            'service.pipelines.metric: unknown signal "metric"; expected one of traces, logs, metrics',
            'service.telemetry.logs.level: expected one of debug, info, warn, error, got "verbose"',
        ],
    )


def test_config_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "otel-config.yaml"
    path.write_bytes(VALID.replace("debug:", "debug: # café").encode("latin-1"))
    result = _validate(path, tmp_path)
    assert "Traceback" not in result.stderr
    assert result.returncode == EXIT_USAGE
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and str(path) in lines[0]
