"""The disk sending queue across processes: kill -9 under load, then a restart on the same data directory."""

from __future__ import annotations

import random
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

import httpx

from tests.collector.test_cli_run import CollectorProcess
from tests.conftest import REPO_ROOT, make_traces, query_store

SENDERS = 2
SPANS_PER_REQUEST = 100
# The kill comes once this many spans (drawn at random in the range) were acknowledged.
KILL_AFTER_SPANS = (2_000, 12_000)


def test_kill_9_under_load_loses_no_acknowledged_span_and_stores_none_twice(tmp_path: Path) -> None:
    first = CollectorProcess(tmp_path)
    _second_owner_is_refused(first, tmp_path)
    url = f"http://127.0.0.1:{first.http_port}/v1/traces"
    acknowledged: list[str] = []
    lock = threading.Lock()
    kill_after = random.randint(*KILL_AFTER_SPANS)
    enough = threading.Event()

    def send_until_killed() -> None:
        with httpx.Client(timeout=30) as client:
            while True:
                traces = make_traces(spans=SPANS_PER_REQUEST)
                try:
                    response = client.post(
                        url, content=traces.SerializeToString(), headers={"Content-Type": "application/x-protobuf"}
                    )
                except httpx.TransportError:
                    return  # the collector is gone
                if response.status_code == 200:
                    with lock:
                        acknowledged.extend(
                            s.span_id.hex() for rs in traces.resource_spans for ss in rs.scope_spans for s in ss.spans
                        )
                        if len(acknowledged) >= kill_after:
                            enough.set()

    senders = [threading.Thread(target=send_until_killed) for _ in range(SENDERS)]
    for sender in senders:
        sender.start()
    try:
        assert enough.wait(60), "the collector acknowledged too little"
        first.process.kill()  # SIGKILL: no drain, no flush, no goodbye
        first.process.wait(30)
    finally:
        first.process.kill()
        for sender in senders:
            sender.join(60)

    second = CollectorProcess(tmp_path)  # same store, same queue directory, new ports
    assert second.stop() == 0  # SIGTERM drains what the queue replayed

    stored = [str(row[0]) for row in query_store(first.store, "SELECT SpanId FROM otel_traces")]
    missing = set(acknowledged) - set(stored)
    assert not missing, f"{len(missing)} of {len(acknowledged)} acknowledged spans were lost"
    twice = [span for span, count in Counter(stored).items() if count > 1]
    assert not twice, f"{len(twice)} spans were stored more than once"


def _second_owner_is_refused(running: CollectorProcess, tmp_path: Path) -> None:
    """A second collector on the running one's queue directory fails to start, saying so in one line."""
    queue = tmp_path / "queue"
    config = tmp_path / "second.yaml"
    config.write_text(
        f"""
receivers:
  otlp:
    protocols:
      http: {{endpoint: "127.0.0.1:0"}}
exporters:
  clickhouse:
    endpoint: chdb://{tmp_path / "other-store"}
    sending_queue:
      directory: {queue}
service:
  pipelines:
    traces: {{receivers: [otlp], exporters: [clickhouse]}}
"""
    )
    result = subprocess.run(
        [sys.executable, "-m", "collector", "run", "--config", str(config)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"error: sending queue directory {queue} is in use by another collector (pid {running.process.pid})"
    )
