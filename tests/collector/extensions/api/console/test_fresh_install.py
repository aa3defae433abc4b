"""A fresh install on loopback: no key created, nothing stored. The console opens with no key and says what to do.

The collector runs as ``genai-collector run`` does, in its own process (chDB
holds one store per process, and the other console tests' collector holds
this one's).
"""

from __future__ import annotations

import queue
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from tests.collector.extensions.api.console.browser import new_context, open_page
from tests.conftest import REPO_ROOT, free_ports

LISTENING = "api listening on"
START_SECONDS = 90.0
STOP_SECONDS = 60.0


@dataclass
class Fresh:
    base_url: str
    otlp_http: int
    otlp_grpc: int
    proxy: int


def _config(root: Path, ports: list[int]) -> str:
    http, grpc, proxy, api, remote = ports
    return f"""
receivers:
  otlp:
    protocols:
      http: {{endpoint: 127.0.0.1:{http}}}
      grpc: {{endpoint: 127.0.0.1:{grpc}}}
  genai_proxy:
    endpoint: 127.0.0.1:{proxy}
    upstreams:
      - {{name: openai, kind: openai, base_url: "http://127.0.0.1:9/v1", models: ["gpt-*"]}}
    auth: {{mode: auto, keys_file: {root / "proxy-keys.json"}}}
exporters:
  clickhouse:
    endpoint: chdb://{root / "clickhouse"}
extensions:
  api:
    endpoint: 127.0.0.1:{api}
    grpc_endpoint: 127.0.0.1:{remote}
    keys_file: {root / "api-keys.json"}
service:
  extensions: [api]
  workers: 0
  pipelines:
    traces:
      receivers: [otlp, genai_proxy]
      exporters: [clickhouse]
"""


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fresh]:
    root = tmp_path_factory.mktemp("fresh")
    ports = free_ports(5)
    config = root / "otel-config.yaml"
    config.write_text(_config(root, ports))
    process = subprocess.Popen(
        [sys.executable, "-m", "collector", "run", "--config", str(config)],
        cwd=REPO_ROOT,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in process.stderr or ()], daemon=True).start()
    try:
        while True:
            line = lines.get(timeout=START_SECONDS)
            if LISTENING in line:
                break
        yield Fresh(f"http://127.0.0.1:{ports[3]}", ports[0], ports[1], ports[2])
    finally:
        process.terminate()
        process.wait(timeout=STOP_SECONDS)


def test_a_fresh_install_opens_without_a_key_and_says_where_to_send_data(browser: Browser, fresh: Fresh) -> None:
    context = new_context(browser)
    try:
        page = open_page(context.new_page(), fresh.base_url + "/")
        expect(page.locator("#who")).to_have_text("open (no key)")
        expect(page.get_by_role("heading", name="Nothing here yet")).to_be_visible()
        steps = page.locator(".steps")
        expect(steps).to_contain_text(f"OPENAI_BASE_URL=http://127.0.0.1:{fresh.proxy}/v1")
        expect(steps).to_contain_text(f"ANTHROPIC_BASE_URL=http://127.0.0.1:{fresh.proxy}")
        expect(steps).to_contain_text(f"OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:{fresh.otlp_http}")
        expect(steps).to_contain_text(f"OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:{fresh.otlp_grpc}")
        for path, heading in (
            ("/traces", "No traces in this window"),
            ("/findings", "No findings in this window"),
            ("/conversations", "No conversations in this window"),
            ("/live", "Waiting for data"),
        ):
            open_page(page, fresh.base_url + path)
            expect(page.get_by_role("heading", name=heading)).to_be_visible()
    finally:
        context.close()
