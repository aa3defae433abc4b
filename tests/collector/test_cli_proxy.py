"""``genai-collector proxy`` and ``genai-collector keys`` as users run them."""

from __future__ import annotations

import json
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import openai

from tests.collector.self_metrics import rendered_problems
from tests.conftest import REPO_ROOT, RunningService, collector_yaml, free_port, query_store
from tests.proxy.mock_upstream import MockUpstream, serve

EXIT_USAGE = 2


def _proxy_config(path: Path, port: int, upstream_url: str, keys_file: Path) -> Path:
    path.write_text(
        f"""
receivers:
  genai_proxy:
    endpoint: 127.0.0.1:{port}
    auth:
      keys_file: {keys_file}
    upstreams:
      - name: openai
        kind: openai
        base_url: {upstream_url}/v1
        api_key: sk-provider
exporters:
  debug:
service:
  pipelines:
    traces:
      receivers: [genai_proxy]
      exporters: [debug]
"""
    )
    return path


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "collector", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60
    )


def _wait_listening(port: int, process: subprocess.Popen[str], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[1]
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("the proxy did not start listening")


def test_keys_create_prints_the_key_once_and_stores_its_hash(tmp_path: Path) -> None:
    keys_file = tmp_path / "keys.json"
    config = _proxy_config(tmp_path / "otel-config.yaml", 8080, "http://127.0.0.1:9", keys_file)

    created = _cli("keys", "create", "--tenant", "team-a", "--config", str(config))
    listed = _cli("keys", "list", "--config", str(config))

    assert created.returncode == 0, created.stderr
    key = created.stdout.splitlines()[0]
    assert key.startswith("gcx-")
    assert key not in keys_file.read_text()
    assert listed.returncode == 0 and "team-a" in listed.stdout and key not in listed.stdout
    # The first key makes the proxy managed for good: recorded beside the keys file, for the owner only.
    marker = tmp_path / "keys.json.managed"
    assert "managed since" in marker.read_text()
    assert stat.S_IMODE(marker.stat().st_mode) == 0o600


def test_proxy_command_without_a_proxy_receiver_is_one_line(tmp_path: Path) -> None:
    config = tmp_path / "otel-config.yaml"
    config.write_text(collector_yaml(tmp_path / "store"))
    result = _cli("proxy", "--config", str(config))
    assert (result.returncode, result.stderr) == (EXIT_USAGE, "error: the config defines no genai_proxy receiver\n")


def test_standalone_proxy_ships_spans_over_otlp_to_a_collector(chdb_path: Path, tmp_path: Path) -> None:
    collector = RunningService(collector_yaml(chdb_path), tmp_path)
    mock = MockUpstream(openai_key="sk-provider")
    port = free_port()
    keys_file = tmp_path / "keys.json"
    try:
        with serve(mock) as upstream_url:
            config = _proxy_config(tmp_path / "proxy.yaml", port, upstream_url, keys_file)
            key = _cli("keys", "create", "--tenant", "team-b", "--config", str(config)).stdout.splitlines()[0]
            endpoint = f"http://127.0.0.1:{collector.port()}"
            process = subprocess.Popen(
                [sys.executable, "-m", "collector", "proxy", "--config", str(config), "--otlp-endpoint", endpoint],
                cwd=REPO_ROOT,
                stderr=subprocess.PIPE,
                text=True,
            )
            try:
                _wait_listening(port, process)
                client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=key, max_retries=0)
                reply = client.chat.completions.create(
                    model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
                )
                metrics = httpx.get(f"http://127.0.0.1:{port}/metrics").text
            finally:
                process.send_signal(signal.SIGTERM)
                _, log = process.communicate(timeout=30)
    finally:
        collector.stop()

    assert reply.choices[0].message.content
    assert process.returncode == 0, log
    assert 'genai_proxy_requests_total{api="chat_completions",code="200",upstream="openai"} 1' in metrics
    assert rendered_problems(metrics) == []  # the standalone proxy's own metrics are declared and documented too
    assert key not in log
    rows = query_store(chdb_path, "SELECT SpanName, ServiceName, SpanAttributes['tenant.id'] FROM otel_traces")
    assert rows == [["chat gpt-4o-mini", "genai-proxy", "team-b"]]
    assert json.loads(keys_file.read_text())["keys"][0]["tenant"] == "team-b"
