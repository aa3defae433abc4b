"""Replicas sharing one redis-server never overspend a shared limit: two limiters, then two proxy processes."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from collector.config.types import Secret
from collector.keys import KeyStore, Limits
from proxy.limits.limiter import LimitExceeded
from proxy.limits.settings import LimitsSettings
from tests.collector.test_cli_proxy import _wait_listening
from tests.conftest import REPO_ROOT, free_ports
from tests.proxy.limits.redis_server import PASSWORD, RedisServer
from tests.proxy.limits.support import Harness, caller_with, record_of
from tests.proxy.mock_upstream import SCENARIO_HEADER, MockUpstream, serve

UPSTREAM_KEY = "sk-provider"
CALLS = 20
SHARED_CONCURRENCY = 3
WAIT_SECONDS = 60.0


def test_two_replicas_racing_for_ten_requests_a_minute_get_ten_in_all(redis: RedisServer) -> None:
    replicas = [Harness(LimitsSettings(store=Secret(redis.url)), None) for _ in range(2)]
    caller = caller_with(Limits(rpm=10))
    passed = [0, 0]
    start = threading.Barrier(2)

    def run(index: int) -> None:
        limits = replicas[index]

        async def one() -> bool:
            try:
                await limits.limiter.admit(caller, record_of())
                return True
            except LimitExceeded:
                return False

        async def fifty() -> list[bool]:
            return await asyncio.gather(*(one() for _ in range(50)))

        start.wait(timeout=WAIT_SECONDS)
        passed[index] = sum(limits.run(fifty()))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT_SECONDS)
    for limits in replicas:
        limits.close()
    assert sum(passed) == 10


def _config(path: Path, port: int, upstream_url: str, keys_file: Path, store: str) -> Path:
    path.write_text(
        f"""
receivers:
  genai_proxy:
    endpoint: 127.0.0.1:{port}
    auth:
      mode: managed
      keys_file: {keys_file}
    upstreams:
      - name: openai
        kind: openai
        base_url: {upstream_url}/v1
        api_key: {UPSTREAM_KEY}
    limits:
      store: {store}
      on_store_error: deny
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


def test_two_proxy_processes_sharing_a_store_never_exceed_its_calls_in_flight(
    redis: RedisServer, tmp_path: Path
) -> None:
    keys_file = tmp_path / "keys.json"
    _, key = KeyStore(keys_file).create("acme", limits=Limits(concurrency=SHARED_CONCURRENCY))
    mock = MockUpstream(openai_key=UPSTREAM_KEY, stall_seconds=WAIT_SECONDS)
    ports = free_ports(2)
    processes: list[subprocess.Popen[str]] = []
    logs: list[str] = []
    with serve(mock) as upstream_url:
        try:
            for index, port in enumerate(ports):
                config = _config(tmp_path / f"proxy{index}.yaml", port, upstream_url, keys_file, redis.url)
                command = [sys.executable, "-m", "collector", "proxy", "--config", str(config)]
                command += ["--otlp-endpoint", "http://127.0.0.1:9"]  # spans are dropped and counted: not the point
                processes.append(subprocess.Popen(command, cwd=REPO_ROOT, stderr=subprocess.PIPE, text=True))
            for port, process in zip(ports, processes, strict=True):
                _wait_listening(port, process)
            statuses = asyncio.run(_race(ports, key, mock))
        finally:
            for process in processes:
                process.send_signal(signal.SIGTERM)
            logs = [process.communicate(timeout=WAIT_SECONDS)[1] for process in processes]
    # Refused while the first three held their places: exactly CALLS - 3, whichever replica they asked.
    assert statuses["refused_while_held"] == [429] * (CALLS - SHARED_CONCURRENCY)
    assert len(statuses["held"]) == SHARED_CONCURRENCY and 429 not in statuses["held"]
    for log in logs:
        assert PASSWORD not in log and key not in log


async def _race(ports: list[int], key: str, mock: MockUpstream) -> dict[str, list[int]]:
    """CALLS calls spread over both proxies; those let through stall upstream until the refusals are all in."""
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    headers = {"authorization": f"Bearer {key}", SCENARIO_HEADER: "stall_headers"}
    async with httpx.AsyncClient(timeout=WAIT_SECONDS) as client:
        tasks = [
            asyncio.create_task(
                client.post(f"http://127.0.0.1:{ports[i % 2]}/v1/chat/completions", json=body, headers=headers)
            )
            for i in range(CALLS)
        ]
        done: set[asyncio.Task[httpx.Response]] = set()
        pending = set(tasks)
        while len(done) < CALLS - SHARED_CONCURRENCY:
            finished, pending = await asyncio.wait(pending, timeout=WAIT_SECONDS, return_when=asyncio.FIRST_COMPLETED)
            if not finished:
                pytest.fail(f"only {len(done)} calls answered")
            done |= finished
        refused = [task.result().status_code for task in done]
        mock.closing.set()  # the stalled answers end now
        held = [(await task).status_code for task in pending]
    return {"refused_while_held": refused, "held": held}


def test_keys_list_shows_a_keys_usage_against_its_limits(redis: RedisServer, tmp_path: Path) -> None:
    keys_file = tmp_path / "keys.json"
    entry, _ = KeyStore(keys_file).create("acme", limits=Limits(concurrency=4, daily_budget=100))
    config = _config(tmp_path / "proxy.yaml", 0, "http://127.0.0.1:9", keys_file, redis.url)
    limits = Harness(LimitsSettings(store=Secret(redis.url)), None)
    limits.clock.now = time.time()  # keys list reads the store at the time it runs
    caller = replace(caller_with(entry.limits), key_id=entry.id)
    try:
        charged = [limits.admit(caller) for _ in range(3)]
    finally:
        limits.close()
    spent = sum(admission.charge.cost or 0 for admission in charged if admission is not None)
    listed = subprocess.run(
        [sys.executable, "-m", "collector", "keys", "list", "--config", str(config)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=WAIT_SECONDS,
    )
    assert listed.returncode == 0, listed.stderr
    row = next(line.split("\t") for line in listed.stdout.splitlines() if line.startswith(entry.id))
    assert row[4:6] == ["concurrency=4 daily_budget=$100", f"concurrency=3/4 daily_budget=${spent:.4f}/$100"]
    assert PASSWORD not in listed.stdout + listed.stderr
