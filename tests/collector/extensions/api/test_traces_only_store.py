"""A store set up for traces only (create_schema off, no log or evaluation tables): the trace and calls views
still answer, without event-borne content or evaluations."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import httpx

from collector import semconv
from exporters.clickhouse.config import ClickHouseConfig
from exporters.clickhouse.store import ClickHouseStore
from tests.conftest import RunningService, query_store, send_span

CLIENT_TIMEOUT_SECONDS = 30.0
WAIT_SECONDS = 30.0
POLL_SECONDS = 0.05


def _traces_only_store(chdb: Path) -> None:
    """The schema as an older, traces-only version made it: without the logs, metrics and evaluation tables."""
    store = ClickHouseStore(ClickHouseConfig(endpoint=f"chdb://{chdb}"), logging.getLogger("test.store"))
    store.start()
    try:
        client = store._connect()
        names = client.query("SELECT name FROM system.tables WHERE database = 'default'").result_rows
        for [name] in sorted(names, key=lambda row: not str(row[0]).endswith("_mv")):  # views first
            if str(name).startswith(("otel_logs", "otel_metrics", "genai_evaluations")):
                client.command(f"DROP TABLE default.`{name}`")
        client.close()
    finally:
        store.close()


def _config(chdb: Path, keys_file: Path) -> str:
    return f"""
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:0
exporters:
  clickhouse:
    endpoint: chdb://{chdb}
    create_schema: false
    sending_queue:
      batch:
        flush_timeout: 50ms
extensions:
  api:
    endpoint: 127.0.0.1:0
    grpc_endpoint: 127.0.0.1:0
    keys_file: {keys_file}
service:
  extensions: [api]
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [clickhouse]
"""


def test_trace_and_calls_views_answer_without_log_or_evaluation_tables(chdb_path: Path, tmp_path: Path) -> None:
    _traces_only_store(chdb_path)
    assert query_store(chdb_path, "SELECT count() FROM system.tables WHERE name LIKE 'otel_logs%'") == [[0]]
    collector = RunningService(_config(chdb_path, tmp_path / "keys.json"), tmp_path)
    try:
        attributes = {semconv.OPERATION_NAME: "chat", semconv.PROVIDER_NAME: "openai", semconv.REQUEST_MODEL: "gpt-4o"}
        send_span(collector, "chat gpt-4o", attributes)
        api = f"http://127.0.0.1:{collector.api_port()}/api/v1"
        calls: list[dict[str, object]] = []
        deadline = time.monotonic() + WAIT_SECONDS
        while not calls and time.monotonic() < deadline:
            answer = httpx.get(
                f"{api}/calls", params={"content": "true", "evaluations": "true"}, timeout=CLIENT_TIMEOUT_SECONDS
            )
            assert answer.status_code == 200, answer.text
            calls = answer.json()["calls"]
            time.sleep(POLL_SECONDS)
        [call] = calls
        assert (call["content"], call["evaluations"]) == ({}, [])
        trace = httpx.get(f"{api}/traces/{call['trace_id']}", timeout=CLIENT_TIMEOUT_SECONDS)
    finally:
        collector.stop()
    assert trace.status_code == 200, trace.text
    assert trace.json()["evaluations"] == []
