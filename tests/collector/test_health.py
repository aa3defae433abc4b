"""/health tells the truth: a stalled or full sending queue, busy worker threads and a refusing memory limiter show.

Each case runs a real collector (OTLP/HTTP in, the clickhouse exporter out) and
reads its admin endpoint's /health, as an orchestrator's probe would.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from collector.component import ComponentSettings
from collector.health import worker_threads_problem
from processors.memory_limiter import MemoryLimiter
from processors.memory_limiter.config import BYTES_PER_MIB, MemoryLimiterConfig
from tests.conftest import RecordingConsumer, RunningService, free_port, make_traces

WAIT_SECONDS = 30.0
POLL_SECONDS = 0.02  # /health is read as a probe reads it; there is no event to await across HTTP


def _down_store_config(queue: str) -> str:
    """OTLP/HTTP into a clickhouse exporter whose server never answers (nothing listens on its port)."""
    return f"""
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:0
exporters:
  clickhouse:
    endpoint: http://127.0.0.1:{free_port()}
    timeout: 1s
    sending_queue:
      {queue}
      batch:
        flush_timeout: 10ms
        min_size: 1
    retry_on_failure:
      initial_interval: 20ms
      max_interval: 50ms
      max_elapsed_time: 600s
extensions:
  admin:
    endpoint: 127.0.0.1:0
service:
  extensions: [admin]
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [clickhouse]
"""


def _health(collector: RunningService) -> tuple[int, dict[str, object]]:
    answer = httpx.get(f"http://127.0.0.1:{collector.admin_port()}/health", timeout=10)
    return answer.status_code, answer.json()


def _wait_for_health(collector: RunningService, status: int) -> dict[str, object]:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        code, body = _health(collector)
        if code == status:
            return body
        time.sleep(POLL_SECONDS)
    raise AssertionError(f"/health never answered {status}; last: {_health(collector)}")


def _stop_dropping(collector: RunningService) -> None:
    """Stop without waiting for a store that never answers: what is queued is dropped, as on a second signal."""
    collector._loop.call_soon_threadsafe(collector.service.abandon)
    collector.stop()


def _post(collector: RunningService, spans: int) -> int:
    return httpx.post(
        f"http://127.0.0.1:{collector.port()}/v1/traces",
        content=make_traces(spans).SerializeToString(),
        headers={"Content-Type": "application/x-protobuf"},
        timeout=10,
    ).status_code


def test_a_queue_that_sends_nothing_makes_the_collector_unhealthy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("collector.exporterhelper.STALL_AFTER_SECONDS", 0.3)
    collector = RunningService(_down_store_config("storage: memory"), tmp_path)
    try:
        assert _health(collector) == (200, {"status": "Server available"})
        assert _post(collector, 5) == 200  # acknowledged: the queue holds it while the store is away
        body = _wait_for_health(collector, 503)
    finally:
        _stop_dropping(collector)
    assert body["status"] == "Server not available"
    (problem,) = body["problems"]  # type: ignore[misc]
    assert problem.startswith("exporter clickhouse: stalled: 5 spans waiting and no batch sent for ")
    assert "(last error: " in problem


def test_a_full_queue_that_refuses_data_makes_the_collector_unhealthy(tmp_path: Path) -> None:
    collector = RunningService(_down_store_config("storage: memory\n      queue_size: 10"), tmp_path)
    try:
        assert _post(collector, 10) == 200
        assert _post(collector, 1) == 503  # the OTLP client is told to retry later
        code, body = _health(collector)
    finally:
        _stop_dropping(collector)
    assert code == 503
    assert body["problems"] == ["exporter clickhouse: refusing data: sending queue is full (10 of 10 spans held)"]


def test_busy_worker_threads_show_and_clear() -> None:
    async def scenario() -> tuple[str | None, str | None]:
        loop = asyncio.get_running_loop()
        release = threading.Event()
        # Occupy every thread of the default pool (created on first use) with a blocked task.
        await asyncio.to_thread(lambda: None)
        workers = loop._default_executor._max_workers  # type: ignore[attr-defined]
        blocked = [asyncio.to_thread(release.wait, WAIT_SECONDS) for _ in range(workers)]
        tasks = [asyncio.ensure_future(b) for b in blocked]
        busy = await worker_threads_problem(timeout=0.2)
        release.set()
        await asyncio.gather(*tasks)
        return busy, await worker_threads_problem(timeout=WAIT_SECONDS)

    busy, after = asyncio.run(scenario())
    assert busy == "worker threads busy for over 0.2s: request decoding and queue writes are waiting"
    assert after is None


def test_a_refusing_memory_limiter_is_a_health_problem(make_settings: Callable[..., ComponentSettings]) -> None:
    used = [10 * BYTES_PER_MIB]
    limiter = MemoryLimiter(
        make_settings("memory_limiter", "processor"),
        MemoryLimiterConfig(limit_mib=100),
        RecordingConsumer(),
        read_memory=lambda: used[0],
        read_total=lambda: 1000 * BYTES_PER_MIB,
    )
    limiter._hard_limit, limiter._soft_limit = MemoryLimiterConfig(limit_mib=100).limits(1000 * BYTES_PER_MIB)
    limiter.check()
    assert limiter.health_problems() == []
    used[0] = 90 * BYTES_PER_MIB
    limiter.check()
    assert limiter.health_problems() == [
        "memory in use (90 MiB) is above the soft limit (80 MiB): data is refused until it falls"
    ]
