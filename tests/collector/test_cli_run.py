"""The ``run`` and ``query`` commands as users run them: a collector process on loopback, SIGTERM, the store."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import httpx
import pytest
from opentelemetry.proto.logs.v1.logs_pb2 import LogsData
from opentelemetry.proto.metrics.v1.metrics_pb2 import MetricsData

from tests.conftest import REPO_ROOT, admin_headers, free_port, make_traces, query_store

READY_LINE = "is running"


class CollectorProcess:
    """``python -m collector run`` in a subprocess, with its log lines on a queue.

    With ``config``, that file runs as it is, from ``tmp_path``, its endpoints moved to free ports through the
    environment variables it reads (as the shipped config does), and ``environment`` added to them; otherwise a
    minimal OTLP-to-chDB config. ``umask``, when given, is the process's umask at start.
    """

    def __init__(
        self, tmp_path: Path, config: Path | None = None, umask: int = -1, environment: Mapping[str, str] | None = None
    ) -> None:
        self.http_port, self.grpc_port, self.admin_port = free_port(), free_port(), free_port()
        self.proxy_port, self.api_port = free_port(), free_port()
        self.store = tmp_path / "clickhouse"
        # The minimal config names it; the shipped config's default, ./data/admin-token, is the same file from tmp_path.
        self.token_file = tmp_path / "data" / "admin-token"
        variables = dict(os.environ)
        if config is not None:
            self.config = config
            variables.update(
                GENAI_COLLECTOR_OTLP_GRPC_ENDPOINT=f"127.0.0.1:{self.grpc_port}",
                GENAI_COLLECTOR_OTLP_HTTP_ENDPOINT=f"127.0.0.1:{self.http_port}",
                GENAI_COLLECTOR_PROXY_ENDPOINT=f"127.0.0.1:{self.proxy_port}",
                GENAI_COLLECTOR_ADMIN_ENDPOINT=f"127.0.0.1:{self.admin_port}",
                GENAI_COLLECTOR_PROMETHEUS_ENDPOINT=f"127.0.0.1:{free_port()}",
                GENAI_COLLECTOR_CLICKHOUSE_ENDPOINT=f"chdb://{self.store}",
                GENAI_COLLECTOR_API_ENDPOINT=f"127.0.0.1:{self.api_port}",
                GENAI_COLLECTOR_API_GRPC_ENDPOINT=f"127.0.0.1:{free_port()}",
                **(environment or {}),
            )
        else:
            self.config = tmp_path / "otel-config.yaml"
            self.config.write_text(
                f"""
receivers:
  otlp:
    protocols:
      grpc: {{endpoint: "127.0.0.1:{self.grpc_port}"}}
      http: {{endpoint: "127.0.0.1:{self.http_port}"}}
exporters:
  clickhouse:
    endpoint: chdb://{self.store}
    sending_queue:
      batch: {{flush_timeout: 100ms, min_size: 2000}}
      directory: {tmp_path / "queue"}
extensions:
  admin:
    endpoint: "127.0.0.1:{self.admin_port}"
    keys_file: {tmp_path / "data" / "api-keys.json"}
    token_file: {tmp_path / "data" / "admin-token"}
service:
  extensions: [admin]
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [clickhouse]
"""
            )
        self.lines: queue.Queue[str] = queue.Queue()
        self.log: list[str] = []
        self.environment, self.cwd = variables, tmp_path if config is not None else REPO_ROOT
        self.process = subprocess.Popen(
            [sys.executable, "-m", "collector", "run", "--config", str(self.config)],
            cwd=self.cwd,
            env=self.environment,
            stderr=subprocess.PIPE,
            text=True,
            umask=umask,
        )
        threading.Thread(target=self._pump, daemon=True).start()
        self.wait_for_line(READY_LINE)

    def _pump(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.log.append(line)
            self.lines.put(line)

    def wait_for_line(self, text: str, timeout: float = 60.0) -> None:
        while True:
            try:
                line = self.lines.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"collector never logged {text!r}; log: {''.join(self.log)}") from None
            if text in line:
                return

    def wait_until_sent(self, spans: int, timeout: float = 30.0) -> None:
        """Wait until the exporter reports ``spans`` spans stored; there is no event to await across processes."""
        deadline = time.monotonic() + timeout
        pattern = re.compile(r'^otelcol_exporter_sent_spans_total\{exporter="clickhouse"\} (\d+)$', re.M)
        while time.monotonic() < deadline:
            match = pattern.search(self.admin_get("/metrics").text)
            if match and int(match.group(1)) >= spans:
                return
            time.sleep(0.05)
        raise AssertionError(f"the exporter did not store {spans} spans in {timeout}s")

    def admin_get(self, path: str) -> httpx.Response:
        return httpx.get(f"http://127.0.0.1:{self.admin_port}{path}", headers=admin_headers(self.token_file))

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=120)

    def query(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "collector", "query", "--config", str(self.config), *args],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )


@pytest.fixture
def collector_process(tmp_path: Path) -> Iterator[CollectorProcess]:
    process = CollectorProcess(tmp_path)
    try:
        yield process
    finally:
        process.stop()


def test_sigterm_while_traffic_flows_loses_no_acknowledged_span(collector_process: CollectorProcess) -> None:
    url = f"http://127.0.0.1:{collector_process.http_port}/v1/traces"
    acknowledged: list[str] = []
    some_acknowledged = threading.Event()

    def send_until_refused() -> None:
        with httpx.Client(timeout=30) as client:
            while True:
                traces = make_traces(spans=200)
                try:
                    response = client.post(
                        url, content=traces.SerializeToString(), headers={"Content-Type": "application/x-protobuf"}
                    )
                except httpx.TransportError:
                    return  # the collector stopped listening
                if response.status_code == 200:
                    acknowledged.extend(
                        s.span_id.hex() for rs in traces.resource_spans for ss in rs.scope_spans for s in ss.spans
                    )
                    if len(acknowledged) >= 20_000:
                        some_acknowledged.set()

    sender = threading.Thread(target=send_until_refused)
    sender.start()
    assert some_acknowledged.wait(60), "the collector acknowledged too little"
    assert collector_process.stop() == 0
    sender.join(60)
    assert not sender.is_alive()

    stored = {row[0] for row in query_store(collector_process.store, "SELECT SpanId FROM otel_traces")}
    missing = set(acknowledged) - stored
    assert not missing, f"{len(missing)} of {len(acknowledged)} acknowledged spans were lost"
    assert "draining" in "".join(collector_process.log)


def test_query_goes_through_the_running_collector_in_every_format(collector_process: CollectorProcess) -> None:
    traces = make_traces(spans=5, service="query-test")
    response = httpx.post(
        f"http://127.0.0.1:{collector_process.http_port}/v1/traces",
        content=traces.SerializeToString(),
        headers={"Content-Type": "application/x-protobuf"},
    )
    assert response.status_code == 200
    # The store is held by the running collector, so this answer came through its admin endpoint.
    sql = "SELECT ServiceName, count() AS spans FROM otel_traces GROUP BY ServiceName"
    collector_process.wait_until_sent(5)
    table = collector_process.query(sql)
    assert table.returncode == 0, table.stderr
    assert table.stdout.splitlines() == [
        "ServiceName | spans",
        "------------+------",
        "query-test  | 5",
        "(1 row)",
    ]
    as_json = collector_process.query(sql, "--format", "json")
    assert json.loads(as_json.stdout) == [{"ServiceName": "query-test", "spans": 5}]
    as_csv = collector_process.query(sql, "--format", "csv")
    assert as_csv.stdout == "ServiceName,spans\nquery-test,5\n"


def test_query_refuses_a_statement_that_writes(collector_process: CollectorProcess) -> None:
    result = collector_process.query("INSERT INTO otel_traces (SpanName) VALUES ('x')")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: only SELECT, WITH, EXPLAIN, SHOW TABLES, SHOW DATABASES and SHOW COLUMNS statements are accepted; "
        "got INSERT"
    ]
    response = httpx.post(
        f"http://127.0.0.1:{collector_process.admin_port}/query",
        json={"sql": "DROP TABLE otel_traces"},
        headers=admin_headers(collector_process.token_file),
    )
    assert response.status_code == 400
    assert response.json()["error"].endswith("statements are accepted; got DROP")


def test_query_opens_the_store_itself_when_no_collector_runs(collector_process: CollectorProcess) -> None:
    response = httpx.post(
        f"http://127.0.0.1:{collector_process.http_port}/v1/traces",
        content=make_traces(spans=7).SerializeToString(),
        headers={"Content-Type": "application/x-protobuf"},
    )
    assert response.status_code == 200
    assert collector_process.stop() == 0
    result = collector_process.query("SELECT count() FROM otel_traces", "--format", "csv")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "count()\n7\n"


def test_health_and_self_metrics(collector_process: CollectorProcess) -> None:
    base = f"http://127.0.0.1:{collector_process.admin_port}"
    assert httpx.get(f"{base}/health").json() == {"status": "Server available"}
    httpx.post(
        f"http://127.0.0.1:{collector_process.http_port}/v1/traces",
        content=make_traces(spans=4).SerializeToString(),
        headers={"Content-Type": "application/x-protobuf"},
    )
    metrics = collector_process.admin_get("/metrics").text
    assert 'otelcol_receiver_accepted_spans_total{receiver="otlp",transport="http"} 4' in metrics


def test_run_reports_a_port_in_use_in_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = tmp_path / "otel-config.yaml"
        config.write_text(
            f"""
receivers:
  otlp:
    protocols:
      http: {{endpoint: "127.0.0.1:{port}"}}
exporters:
  debug:
service:
  pipelines:
    traces: {{receivers: [otlp], exporters: [debug]}}
"""
        )
        result = subprocess.run(
            [sys.executable, "-m", "collector", "run", "--config", str(config)],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ},
        )
    assert result.returncode == 2
    assert result.stderr.strip() == f"receivers.otlp.protocols.http.endpoint: 127.0.0.1:{port} is already in use"


def test_the_shipped_config_masks_a_provider_key_before_it_is_stored(tmp_path: Path) -> None:
    """`make run`'s config as shipped: normalise, price, scan; a key in a prompt never reaches the store, whether
    the prompt came on a span or as a log event."""
    key = "sk-proj-" + "Q7vB2nX9kL4mR8tW1yZ6pD3f"
    process = CollectorProcess(tmp_path, config=REPO_ROOT / "otel-config.yaml")
    try:
        messages = [{"role": "user", "parts": [{"type": "text", "content": f"my key is {key}, mail ann@example.org"}]}]
        span = make_traces(spans=1)
        pair = span.resource_spans[0].scope_spans[0].spans[0].attributes.add()
        pair.key = "gen_ai.input.messages"
        pair.value.string_value = json.dumps(messages)
        response = httpx.post(
            f"http://127.0.0.1:{process.http_port}/v1/traces",
            content=span.SerializeToString(),
            headers={"Content-Type": "application/x-protobuf"},
        )
        assert response.status_code == 200
        # The same key in a GenAI event sent as a log record (an instrumentation's content events), and a metric.
        logs = LogsData()
        record = logs.resource_logs.add().scope_logs.add().log_records.add(event_name="gen_ai.user.message")
        record.body.kvlist_value.values.add(key="content").value.string_value = f"my key is {key}"
        metrics = MetricsData()
        metric = metrics.resource_metrics.add().scope_metrics.add().metrics.add(name="app.queue.depth")
        metric.gauge.data_points.add(as_int=7, time_unix_nano=1)
        for path, body in (("/v1/logs", logs), ("/v1/metrics", metrics)):
            answer = httpx.post(
                f"http://127.0.0.1:{process.http_port}{path}",
                content=body.SerializeToString(),
                headers={"Content-Type": "application/x-protobuf"},
            )
            assert answer.status_code == 200, (path, answer.text)
        process.wait_until_sent(1)
    finally:
        assert process.stop() == 0  # drains every signal's queue into the store

    stored_logs = query_store(process.store, "SELECT EventName, Body, LogAttributes FROM otel_logs")
    assert key not in repr(stored_logs) and "[REDACTED:openai_api_key]" in repr(stored_logs)
    assert query_store(process.store, "SELECT MetricName, Value FROM otel_metrics_gauge") == [["app.queue.depth", 7.0]]
    everything = query_store(process.store, "SELECT * FROM otel_traces")
    assert len(everything) == 1 and key not in repr(everything)
    (row,) = query_store(
        process.store,
        "SELECT SpanAttributes['gen_ai.input.messages'], SpanAttributes['gen_ai.security.findings.max_severity'],"
        " arrayMap(a -> a['gen_ai.security.detector.id'], `Events.Attributes`) FROM otel_traces",
    )
    stored_messages, severity, detectors = row
    assert "[REDACTED:openai_api_key]" in str(stored_messages) and "ann@example.org" in str(stored_messages)
    assert severity == "critical"
    assert sorted(detectors) == ["email", "openai_api_key"]  # type: ignore[call-overload]
    # The README's findings query, as printed there, reads them back.
    found = query_store(process.store, _readme_query("ARRAY JOIN Events.Name"))
    assert sorted((row[2], row[3]) for row in found) == [("email", "medium"), ("openai_api_key", "critical")]


def _readme_query(marker: str) -> str:
    """The SQL of the README's ``genai-collector query "..."`` example that contains ``marker``."""
    text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    for match in re.finditer(r'genai-collector query "(.*?)"\n', text, re.S):
        if marker in match.group(1):
            return match.group(1)
    raise AssertionError(f"no README query with {marker!r}")


def test_data_on_disk_is_for_its_owner_only_whatever_the_umask(tmp_path: Path) -> None:
    """The shipped config under umask 022: keys, queue, store, everything the commands write is 0700/0600."""
    shipped = REPO_ROOT / "otel-config.yaml"

    def command(*args: str, environment: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "collector", *args, "--config", str(shipped)],
            cwd=tmp_path,
            env=environment,
            capture_output=True,
            text=True,
            timeout=120,
            umask=0o022,
        )

    created = command("keys", "create", "--tenant", "team-a")
    assert created.returncode == 0, created.stderr
    process = CollectorProcess(tmp_path, config=shipped, umask=0o022)
    try:
        for _ in range(3):
            response = httpx.post(
                f"http://127.0.0.1:{process.http_port}/v1/traces",
                content=make_traces(spans=50).SerializeToString(),
                headers={"Content-Type": "application/x-protobuf"},
            )
            assert response.status_code == 200
    finally:
        assert process.stop() == 0  # drains the queue into the store
    counted = command("query", "SELECT count() FROM otel_traces", "--format", "csv", environment=process.environment)
    assert counted.returncode == 0, counted.stderr
    assert counted.stdout == "count()\n150\n"

    written = sorted(tmp_path.rglob("*"))
    assert {tmp_path / "data" / "proxy-keys.json", tmp_path / "data" / "queue", process.store} <= set(written)
    assert any(path.suffix == ".wal" for path in written) and any(path.is_file() for path in process.store.rglob("*"))
    # The engine links each table's name to its data; a link's own mode means nothing, its target is checked.
    links = [path for path in written if path.is_symlink()]
    assert all(link.resolve().is_relative_to(process.store) for link in links)
    open_to_others = [
        f"{path.relative_to(tmp_path)} {oct(path.stat().st_mode & 0o777)}"
        for path in written
        if path not in links and path.stat().st_mode & 0o077
    ]
    assert not open_to_others
