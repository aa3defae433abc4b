"""Ingest throughput: OTLP/HTTP into a running collector until chDB holds every span, beside the bare floor.

The end-to-end figure sends pre-encoded OTLP/HTTP requests of 512 spans (10
attributes each, GenAI names and values) to ``genai-collector run`` in its own
process and counts spans/s from the first send until the exporter reports the
last span stored. The floor does the same work in one process with nothing
around it: decode the same bytes, walk them into columns, insert them
column-oriented into chDB, in batches of the exporter's default size. Each is
run for several rounds; medians and their ratio are printed.

The same end-to-end run is repeated with the genai_normalize and genai_cost
processors in the pipeline (half the requests use the deprecated gen_ai names,
so normalisation has work to do), and the ratio to the run without is printed.

    python benchmarks/ingest.py [--requests 200] [--rounds 3] [--concurrency 4]
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from opentelemetry.proto.trace.v1.trace_pb2 import Span, TracesData

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from collector.exporterhelper import DEFAULT_BATCH_MAX_SPANS  # noqa: E402
from collector.queue import Batch  # noqa: E402
from exporters.clickhouse.config import ClickHouseConfig  # noqa: E402
from exporters.clickhouse.store import ClickHouseStore  # noqa: E402

SPANS_PER_REQUEST = 512
GENAI_PROCESSORS = "[genai_normalize, genai_cost]"
MODELS = ("gpt-4o-mini", "gpt-4.1", "claude-sonnet-4-5", "llama-3.1-70b-instruct")
PROVIDERS = ("openai", "openai", "anthropic", "vllm")
STORE_DEADLINE_SECONDS = 300


def build_request(rng: random.Random, deprecated_names: bool = False) -> bytes:
    """One OTLP request body of SPANS_PER_REQUEST chat spans, 10 attributes each."""
    traces = TracesData()
    resource_spans = traces.resource_spans.add()
    for key, value in (("service.name", "support-agent"), ("deployment.environment", "prod")):
        resource_spans.resource.attributes.add(key=key).value.string_value = value
    scope_spans = resource_spans.scope_spans.add()
    scope_spans.scope.name, scope_spans.scope.version = "opentelemetry.instrumentation.openai_v2", "2.1b0"
    now = time.time_ns()
    for _ in range(SPANS_PER_REQUEST):
        which = rng.randrange(len(MODELS))
        model = MODELS[which]
        span = scope_spans.spans.add(
            trace_id=rng.randbytes(16),
            span_id=rng.randbytes(8),
            parent_span_id=rng.randbytes(8),
            name=f"chat {model}",
            kind=Span.SPAN_KIND_CLIENT,
            start_time_unix_nano=now,
            end_time_unix_nano=now + rng.randrange(200_000_000, 9_000_000_000),
        )
        attrs = span.attributes
        attrs.add(key="gen_ai.operation.name").value.string_value = "chat"
        # Half the requests speak the deprecated dialect, as older instrumentations still do.
        provider_key = "gen_ai.system" if deprecated_names else "gen_ai.provider.name"
        attrs.add(key=provider_key).value.string_value = PROVIDERS[which]
        attrs.add(key="gen_ai.request.model").value.string_value = model
        attrs.add(key="gen_ai.response.model").value.string_value = f"{model}-2025-06-01"
        attrs.add(key="gen_ai.response.id").value.string_value = f"chatcmpl-{rng.randbytes(12).hex()}"
        input_key, output_key = (
            ("gen_ai.usage.prompt_tokens", "gen_ai.usage.completion_tokens")
            if deprecated_names
            else ("gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens")
        )
        attrs.add(key=input_key).value.int_value = rng.randrange(50, 8000)
        attrs.add(key=output_key).value.int_value = rng.randrange(10, 1500)
        attrs.add(key="gen_ai.request.temperature").value.double_value = 0.7
        attrs.add(key="gen_ai.response.finish_reasons").value.array_value.values.add().string_value = "stop"
        attrs.add(key="server.address").value.string_value = "api.openai.com"
    return traces.SerializeToString()


def floor_round(bodies: list[bytes], store_dir: Path) -> float:
    """Spans/s for decode → columns → column-oriented insert, in one process, nothing else."""
    shutil.rmtree(store_dir, ignore_errors=True)
    store = ClickHouseStore(ClickHouseConfig(endpoint=f"chdb://{store_dir}"), logging.getLogger("bench"))
    store.start()
    # The largest batch the exporter's queue cuts under load: the floor at its best.
    per_batch = max(1, DEFAULT_BATCH_MAX_SPANS // SPANS_PER_REQUEST)
    started = time.perf_counter()
    for i in range(0, len(bodies), per_batch):
        items = [TracesData.FromString(body) for body in bodies[i : i + per_batch]]
        store.send(Batch(items, len(items) * SPANS_PER_REQUEST))
    elapsed = time.perf_counter() - started
    stored = store.query("SELECT count() FROM otel_traces").rows[0][0]
    store.close()
    assert stored == len(bodies) * SPANS_PER_REQUEST, stored
    return stored / elapsed


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Collector:
    """``genai-collector run`` in its own process, on free ports, storing under ``store_dir``.

    With ``api`` the read API runs too (on ``api_port``, open on loopback: no key is made).
    """

    def __init__(self, store_dir: Path, work_dir: Path, processors: str = "[]", api: bool = False) -> None:
        self.http_port, self.admin_port, self.api_port = _free_port(), _free_port(), _free_port()
        self.token_file = work_dir / "admin-token"
        api_extension = (
            f'  api: {{endpoint: "127.0.0.1:{self.api_port}", grpc_endpoint: "127.0.0.1:{_free_port()}", '
            f'keys_file: "{work_dir / "no-keys.json"}"}}'
            if api
            else ""
        )
        config = work_dir / "bench-config.yaml"
        config.write_text(
            f"""
receivers:
  otlp:
    protocols:
      http: {{endpoint: "127.0.0.1:{self.http_port}"}}
processors:
  genai_normalize:
  genai_cost:
  genai_security:
    actions: {{secret: mask}}
  genai_loop_detection:
exporters:
  clickhouse:
    endpoint: chdb://{store_dir}
extensions:
  admin: {{endpoint: "127.0.0.1:{self.admin_port}", token_file: "{self.token_file}"}}
{api_extension}
service:
  extensions: [admin{", api" if api else ""}]
  telemetry: {{logs: {{level: warn}}}}
  pipelines:
    traces: {{receivers: [otlp], processors: {processors}, exporters: [clickhouse]}}
"""
        )
        self.process = subprocess.Popen(
            [sys.executable, "-m", "collector", "run", "--config", str(config)],
            cwd=REPO_ROOT,
            stderr=subprocess.DEVNULL,
        )
        try:
            self._wait_healthy()
        except BaseException:
            self.stop()
            raise

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{self.admin_port}/health").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise RuntimeError("the collector did not start")

    def admin_get(self, path: str) -> httpx.Response:
        """GET ``path`` on the admin endpoint with the local token the collector wrote."""
        token = self.token_file.read_text().strip()
        return httpx.get(f"http://127.0.0.1:{self.admin_port}{path}", headers={"Authorization": f"Bearer {token}"})

    def stored(self) -> int:
        metrics = self.admin_get("/metrics").text
        match = re.search(r'^otelcol_exporter_sent_spans_total\{exporter="clickhouse"\} (\d+)$', metrics, re.M)
        return int(match.group(1)) if match else 0

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(60)


def end_to_end_round(
    bodies: list[bytes],
    store_dir: Path,
    work_dir: Path,
    concurrency: int,
    processors: str = "[]",
    alongside: Callable[[Collector], contextlib.AbstractContextManager[object]] | None = None,
    api: bool = False,
) -> float:
    """Spans/s from the first OTLP/HTTP send until the exporter reports every span stored.

    ``alongside``, given the running collector, is entered before the first send
    and left after the last span is stored: other load on the same collector.
    ``api`` runs the collector with its read API (see Collector).
    """
    shutil.rmtree(store_dir, ignore_errors=True)
    collector = Collector(store_dir, work_dir, processors, api)
    url = f"http://127.0.0.1:{collector.http_port}/v1/traces"
    total = len(bodies) * SPANS_PER_REQUEST
    local = threading.local()

    def send(body: bytes) -> None:
        client = getattr(local, "client", None)
        if client is None:
            client = local.client = httpx.Client(timeout=60)
        while True:
            response = client.post(url, content=body, headers={"Content-Type": "application/x-protobuf"})
            if response.status_code == 200:
                return
            if response.status_code != 503:  # a full queue asks to retry; anything else is a failure
                raise RuntimeError(f"collector answered {response.status_code}: {response.text}")
            time.sleep(0.05)

    try:
        with alongside(collector) if alongside is not None else contextlib.nullcontext():
            started = time.perf_counter()
            with ThreadPoolExecutor(concurrency) as pool:
                list(pool.map(send, bodies))
            deadline = time.monotonic() + STORE_DEADLINE_SECONDS
            while collector.stored() < total:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"only {collector.stored()} of {total} spans stored after {STORE_DEADLINE_SECONDS}s"
                    )
                time.sleep(0.01)
            elapsed = time.perf_counter() - started
    finally:
        collector.stop()
    return total / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=200, help="requests of 512 spans per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=4, help="client connections sending at once")
    args = parser.parse_args()

    rng = random.Random(42)
    bodies = [build_request(rng, deprecated_names=i % 2 == 1) for i in range(args.requests)]
    spans = args.requests * SPANS_PER_REQUEST
    print(f"{args.requests} requests x {SPANS_PER_REQUEST} spans = {spans} spans per round, {args.rounds} rounds")
    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}")

    floor: list[float] = []
    end_to_end: list[float] = []
    with_processors: list[float] = []
    with tempfile.TemporaryDirectory(prefix="genai-bench-") as tmp:
        work = Path(tmp)
        for round_no in range(1, args.rounds + 1):
            floor.append(floor_round(bodies, work / f"floor-{round_no}"))
            end_to_end.append(end_to_end_round(bodies, work / f"e2e-{round_no}", work, args.concurrency))
            with_processors.append(
                end_to_end_round(bodies, work / f"gen-{round_no}", work, args.concurrency, GENAI_PROCESSORS)
            )
            print(
                f"round {round_no}: floor {floor[-1]:>9,.0f} spans/s   end to end {end_to_end[-1]:>9,.0f} spans/s"
                f"   with GenAI processors {with_processors[-1]:>9,.0f} spans/s"
            )
    floor_median, e2e_median = statistics.median(floor), statistics.median(end_to_end)
    print()
    print(f"floor (decode + columns + chDB insert, one process): {floor_median:>9,.0f} spans/s (median)")
    print(f"end to end (OTLP/HTTP -> collector -> chDB):        {e2e_median:>9,.0f} spans/s (median)")
    print(f"ratio end to end / floor:                           {e2e_median / floor_median:>9.2f}x")
    processed_median = statistics.median(with_processors)
    print(f"end to end with genai_normalize + genai_cost:       {processed_median:>9,.0f} spans/s (median)")
    print(f"ratio with processors / without:                    {processed_median / e2e_median:>9.2f}x")


if __name__ == "__main__":
    main()
