"""Ingest throughput: OTLP/HTTP into a running collector until its store holds every span, beside the bare floor.

Pre-encoded OTLP/HTTP requests of 512 spans are sent ``--concurrency`` at a time to ``genai-collector run`` in
its own process, retried on 429/503 as OTLP exporters do; spans/s counts from the first send until the
exporter reports the last span stored. The requests are benchmarks/loop_detection.py's busy GenAI agents by
default (LLM calls carrying growing conversations, tool calls, one run in eight looping); ``--workload chat``
sends single chat spans of 10 attributes instead, half of them in the deprecated gen_ai dialect.

Measured in every round, interleaved:
  - shipped: otel-config.yaml as shipped (every GenAI processor, the disk queue, prometheus), its listeners
    on free loopback ports and its data under a temporary directory (``--config`` names another file);
  - one worker: the shipped config with one worker process (``service.workers: 1``; shipped: ``auto``, a
    worker per core);
  - no processors: the same config with the traces pipeline's processors removed;
  - floor: in this process, decode the same bytes, walk them into columns and insert them column-oriented
    into chDB in batches of the exporter's default size, with nothing around it.
With ``--peers``, Arize Phoenix (pinned version, its own virtualenv under ~/.cache/genai-collector/bench-peers,
its default SQLite store, telemetry off) is sent the first ``--peer-requests`` of the same requests over
OTLP/HTTP in every round: spans/s until its database holds them all. The smaller share keeps its rounds
short; the rates compare, the totals differ.

Logs (records/s) and metrics (data points/s), in the same rounds (``--signals``): benchmarks/signals_floor.py's
requests (GenAI content events; the GenAI client metrics' shapes) sent to a collector whose logs and metrics
pipelines have no processors and write into chDB, until the exporter reports every item written; beside each,
its floor as signals_floor.py measures it (decode, columns, column-oriented insert, in this process). The aim
is end to end >= 0.5x the floor. Where the clickhouse exporter takes no logs or metrics pipeline, the end-to-end
run of that signal goes through the ``debug`` exporter instead, and says so: a check of the path, not a figure.

Printed: every figure's median, range and rounds, and the per-round ratios (shipped / no processors,
shipped / floor, each signal's end to end / floor) and Phoenix beside the shipped config.

    make bench
    python benchmarks/ingest.py [--requests 200] [--rounds 3] [--concurrency 4] [--workload agent|chat]
                                [--config otel-config.yaml] [--peers] [--peer-requests 20]
                                [--signals traces,logs,metrics] [--signal-items 100000]
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import harness
import httpx
import loop_detection
import otlp_load
import peers
import report
import signals_floor
from opentelemetry.proto.trace.v1.trace_pb2 import Span, TracesData

REPO_ROOT = harness.REPO_ROOT
sys.path.insert(0, str(REPO_ROOT))

from collector.exporterhelper import DEFAULT_BATCH_MAX_SPANS  # noqa: E402
from collector.queue import Batch  # noqa: E402
from exporters.clickhouse.config import ClickHouseConfig  # noqa: E402
from exporters.clickhouse.store import ClickHouseStore  # noqa: E402

SPANS_PER_REQUEST = 512
MODELS = ("gpt-4o-mini", "gpt-4.1", "claude-sonnet-4-5", "llama-3.1-70b-instruct")
PROVIDERS = ("openai", "openai", "anthropic", "vllm")
STORE_DEADLINE_SECONDS = harness.STORE_DEADLINE_SECONDS
PEER_POLL_SECONDS = 0.2
SIGNALS = ("traces", "logs", "metrics")
DEFAULT_SIGNAL_ITEMS = 100_000
# What an exporter reports sending, per signal other than traces (harness.SENT_SPANS_METRIC is the traces one).
SENT_ITEMS_METRICS = {
    "logs": "otelcol_exporter_sent_log_records_total",
    "metrics": "otelcol_exporter_sent_metric_points_total",
}
STANDIN_EXPORTER = "debug"
_free_port = harness.free_port  # benchmarks/soak.py's name for it


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


def build_bodies(workload: str, count: int, rng: random.Random) -> list[bytes]:
    """``count`` request bodies of the named workload: busy agents (``agent``) or single chat calls (``chat``)."""
    if workload == "agent":
        return [loop_detection.request(rng) for _ in range(count)]
    return [build_request(rng, deprecated_names=i % 2 == 1) for i in range(count)]


def floor_round(bodies: list[bytes], store_dir: Path) -> float:
    """Spans/s for decode → columns → column-oriented insert, in one process, nothing else."""
    harness.fresh_dir(store_dir)
    store = ClickHouseStore(ClickHouseConfig(endpoint=f"chdb://{store_dir}"), logging.getLogger("bench"))
    store.start()
    # The largest batch the exporter's queue cuts under load: the floor at its best.
    per_batch = max(1, DEFAULT_BATCH_MAX_SPANS // SPANS_PER_REQUEST)
    started = time.perf_counter()
    for i in range(0, len(bodies), per_batch):
        items = [TracesData.FromString(body) for body in bodies[i : i + per_batch]]
        store.send(Batch(items, len(items) * SPANS_PER_REQUEST))
    elapsed = time.perf_counter() - started
    stored = store.query(f"SELECT count() FROM {harness.TRACES_TABLE}").rows[0][0]
    store.close()
    assert stored == len(bodies) * SPANS_PER_REQUEST, stored
    return stored / elapsed


class Collector(harness.Collector):
    """``genai-collector run`` on a minimal config: OTLP/HTTP in, ``processors``, chDB under ``store_dir``."""

    def __init__(self, store_dir: Path, work_dir: Path, processors: str = "[]") -> None:
        self.http_port, admin_port = harness.free_port(), harness.free_port()
        run_dir = harness.fresh_dir(work_dir / f"run-{store_dir.name}")  # its working directory: the queue's log
        config = run_dir / "bench-config.yaml"
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
  admin: {{endpoint: "127.0.0.1:{admin_port}", token_file: "{run_dir / "admin-token"}"}}
service:
  extensions: [admin]
  telemetry: {{logs: {{level: warn}}}}
  pipelines:
    traces: {{receivers: [otlp], processors: {processors}, exporters: [clickhouse]}}
"""
        )
        super().__init__(
            config,
            cwd=run_dir,
            admin_port=admin_port,
            token_file=run_dir / "admin-token",
            log=run_dir / "collector.log",
        )


def signal_requests(signal: signals_floor.Signal, items: int, rng: random.Random) -> list[bytes]:
    """Requests of ``signal`` holding at least ``items`` items: rounds of each signal hold about as many items
    however many a request carries (512 log records, 48 data points), so neither rate is a round's fixed costs
    (the sending queue's last flush) spread over a few items."""
    bodies = [signal.request(rng)]
    per_request = signal.count(signal.decode(bodies[0]))
    bodies.extend(signal.request(rng) for _ in range(-(-items // per_request) - 1))
    return bodies


def send_all(url: str, bodies: list[bytes], concurrency: int) -> None:
    """Every body POSTed and accepted, ``concurrency`` clients at a time."""
    local = threading.local()

    def send(body: bytes) -> None:
        client = getattr(local, "client", None)
        if client is None:
            client = local.client = httpx.Client(timeout=harness.CLIENT_TIMEOUT_SECONDS)
        otlp_load.post_until_accepted(client, url, body)  # no give_up: every body is taken

    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(send, bodies))


def timed_ingest(url: str, bodies: list[bytes], concurrency: int, wait_stored: Callable[[int], None]) -> float:
    """Spans/s from the first send until ``wait_stored`` returns (every span stored)."""
    total = sum(map(otlp_load.span_count, bodies))
    started = time.perf_counter()
    send_all(url, bodies, concurrency)
    wait_stored(total)
    return total / (time.perf_counter() - started)


def end_to_end_round(
    bodies: list[bytes],
    store_dir: Path,
    work_dir: Path,
    concurrency: int,
    processors: str = "[]",
    alongside: Callable[[Collector], contextlib.AbstractContextManager[object]] | None = None,
) -> float:
    """Spans/s from the first OTLP/HTTP send until the exporter reports every span stored (the minimal config).

    ``alongside``, given the running collector, is entered before the first send
    and left after the last span is stored: other load on the same collector.
    """
    harness.fresh_dir(store_dir)
    collector = Collector(store_dir, work_dir, processors)
    try:
        with alongside(collector) if alongside is not None else contextlib.nullcontext():
            return timed_ingest(
                f"http://127.0.0.1:{collector.http_port}/v1/traces", bodies, concurrency, collector.wait_stored
            )
    finally:
        collector.stop()


def signal_exporter(signal: str) -> str:
    """The exporter a signal's end-to-end run writes through: clickhouse once it takes the signal, else debug."""
    from exporters.clickhouse import factory

    return harness.STORE_EXPORTER if factory.supports(signal) else STANDIN_EXPORTER  # type: ignore[arg-type]


class SignalsCollector(harness.Collector):
    """``genai-collector run`` with logs and metrics pipelines: OTLP/HTTP in, no processors, into ``exporter``."""

    def __init__(self, store_dir: Path, work_dir: Path, exporter: str) -> None:
        self.http_port, admin_port = harness.free_port(), harness.free_port()
        self.exporter = exporter
        run_dir = harness.fresh_dir(work_dir / f"run-{store_dir.name}")
        settings = f"{{endpoint: chdb://{store_dir}}}" if exporter == harness.STORE_EXPORTER else "{verbosity: basic}"
        config = run_dir / "bench-config.yaml"
        config.write_text(
            f"""
receivers:
  otlp:
    protocols:
      http: {{endpoint: "127.0.0.1:{self.http_port}"}}
exporters:
  {exporter}: {settings}
extensions:
  admin: {{endpoint: "127.0.0.1:{admin_port}", token_file: "{run_dir / "admin-token"}"}}
service:
  extensions: [admin]
  telemetry: {{logs: {{level: warn}}}}
  pipelines:
    logs: {{receivers: [otlp], exporters: [{exporter}]}}
    metrics: {{receivers: [otlp], exporters: [{exporter}]}}
"""
        )
        super().__init__(
            config,
            cwd=run_dir,
            admin_port=admin_port,
            token_file=run_dir / "admin-token",
            log=run_dir / "collector.log",
        )

    def wait_sent(self, signal: str, total: int, seconds: float = STORE_DEADLINE_SECONDS) -> None:
        """Until the exporter reports ``total`` items of ``signal`` sent (written, for the store)."""
        deadline = time.monotonic() + seconds
        while True:
            text = self.admin_get("/metrics").text
            sent = harness.metric_total(text, SENT_ITEMS_METRICS[signal], {"exporter": self.exporter}) or 0
            if sent >= total:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {sent:.0f} of {total} {signal} items sent after {seconds:.0f}s")
            time.sleep(harness.STORE_POLL_SECONDS)


def signal_round(
    signal: signals_floor.Signal, bodies: list[bytes], store_dir: Path, work_dir: Path, concurrency: int
) -> float:
    """Items/s of ``signal`` from the first OTLP/HTTP send until the exporter reports every item written."""
    harness.fresh_dir(store_dir)
    collector = SignalsCollector(store_dir, work_dir, signal_exporter(signal.name))
    try:
        total = sum(signal.count(signal.decode(body)) for body in bodies)
        url = f"http://{harness.LOOPBACK}:{collector.http_port}/v1/{signal.name}"
        started = time.perf_counter()
        send_all(url, bodies, concurrency)
        collector.wait_sent(signal.name, total)
        return total / (time.perf_counter() - started)
    finally:
        collector.stop()


@dataclass(frozen=True)
class ConfigRound:
    """One round of a config: its rate, and the CPU its main process and its other processes spent per span."""

    spans_per_second: float
    main_cpu_us_per_span: float
    others_cpu_us_per_span: float


def config_round(
    bodies: list[bytes],
    work: Path,
    concurrency: int,
    base: Path,
    processors: list[str] | None = None,
    workers: int | None = None,
) -> ConfigRound:
    """Spans/s through the collector running ``base`` (processors and workers replaced when given), from ``work``."""
    config = harness.derive_config(work, base=base, processors=processors, workers=workers)
    collector = harness.start_collector(config, work)
    try:
        url = f"http://{harness.LOOPBACK}:{config.port('receivers.otlp.protocols.http')}/v1/traces"
        main_before, others_before = harness.tree_cpu_seconds(collector.process.pid)
        rate = timed_ingest(url, bodies, concurrency, collector.wait_stored)
        main_after, others_after = harness.tree_cpu_seconds(collector.process.pid)
        spans = sum(map(otlp_load.span_count, bodies))
        return ConfigRound(rate, (main_after - main_before) * 1e6 / spans, (others_after - others_before) * 1e6 / spans)
    finally:
        collector.stop()


def phoenix_round(bodies: list[bytes], work: Path, concurrency: int) -> float:
    """Spans/s through Arize Phoenix until its database holds every span."""
    phoenix = peers.Phoenix(work)

    def wait_stored(total: int) -> None:
        deadline = time.monotonic() + STORE_DEADLINE_SECONDS
        while (stored := phoenix.stored()) < total:
            if time.monotonic() > deadline:
                raise RuntimeError(f"Phoenix stored only {stored} of {total} spans after {STORE_DEADLINE_SECONDS}s")
            time.sleep(PEER_POLL_SECONDS)

    try:
        return timed_ingest(phoenix.traces_url, bodies, concurrency, wait_stored)
    finally:
        phoenix.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=200, help="requests of 512 spans per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=4, help="client connections sending at once")
    parser.add_argument("--workload", choices=("agent", "chat"), default="agent")
    parser.add_argument("--config", type=Path, default=harness.SHIPPED_CONFIG, help="the config measured as shipped")
    parser.add_argument("--peers", action="store_true", help="send Arize Phoenix the same requests in every round")
    parser.add_argument("--peer-requests", type=int, default=20, help="how many of the requests Phoenix gets")
    parser.add_argument("--signals", default=",".join(SIGNALS), help="comma-separated: traces, logs, metrics")
    parser.add_argument(
        "--signal-items",
        type=int,
        default=DEFAULT_SIGNAL_ITEMS,
        help="log records, and data points, per round (whole requests: at least this many)",
    )
    args = parser.parse_args()
    chosen = [name.strip() for name in args.signals.split(",") if name.strip()]
    if not chosen or set(chosen) - set(SIGNALS):
        parser.error(f"--signals takes names among {', '.join(SIGNALS)}")
    traces = "traces" in chosen
    others = [signals_floor.SIGNALS[name] for name in chosen if name != "traces"]

    rng = random.Random(42)
    bodies = build_bodies(args.workload, args.requests, rng) if traces else []
    signal_bodies = {signal.name: signal_requests(signal, args.signal_items, rng) for signal in others}
    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}; {args.rounds} rounds, "
          f"{args.concurrency} clients")  # fmt: skip
    if traces:
        spans = args.requests * SPANS_PER_REQUEST
        print(
            f"traces: {args.requests} {args.workload} requests x {SPANS_PER_REQUEST} spans = {spans} spans per round "
            f"({sum(map(len, bodies)) / len(bodies) / 1e3:,.0f} kB a request); shipped config: {args.config}"
        )
    for signal in others:
        items = sum(signal.count(signal.decode(body)) for body in signal_bodies[signal.name])
        exporter = signal_exporter(signal.name)
        through = (
            "into chDB"
            if exporter == harness.STORE_EXPORTER
            else f"through the {exporter} exporter (the clickhouse exporter takes no {signal.name} here: "
            "a check of the path, not a figure)"
        )
        requests = len(signal_bodies[signal.name])
        print(f"{signal.name}: {requests} requests, {items} items per round; end to end {through}")
    if args.peers and traces:
        (phoenix_version,) = peers.install(peers.PHOENIX)
        print(f"peer: {phoenix_version} (default SQLite store), in {peers.PHOENIX.path}; {args.peer_requests} requests")

    shipped, bare, floor, phoenix = "shipped config", "shipped config without processors", "floor", "Arize Phoenix"
    one_worker = "shipped config, 1 worker"
    figures = report.Figures()
    cpu: defaultdict[str, list[float]] = defaultdict(list)  # CPU µs per span, by config and process
    with tempfile.TemporaryDirectory(prefix="genai-bench-") as tmp:
        work = Path(tmp)
        # chDB's first insert in a process pays for more than the insert
        if traces:
            floor_round(bodies[:1], work / "warm-up")
        for signal in others:
            signals_floor.floor_round(signal, signal_bodies[signal.name][:1], work / f"warm-up-{signal.name}")
        for round_no in range(1, args.rounds + 1):
            if traces:
                figures.add(f"{floor} (spans/s)", floor_round(bodies, work / f"floor-{round_no}"))
                for name, processors, workers in ((bare, [], None), (shipped, None, None), (one_worker, None, 1)):
                    run = harness.fresh_dir(work / f"{name.replace(' ', '-').replace(',', '')}-{round_no}")
                    measured = config_round(bodies, run, args.concurrency, args.config, processors, workers)
                    figures.add(f"{name} (spans/s)", measured.spans_per_second)
                    cpu[f"{name}: main process"].append(measured.main_cpu_us_per_span)
                    cpu[f"{name}: other processes"].append(measured.others_cpu_us_per_span)
                if args.peers:
                    run = harness.fresh_dir(work / f"phoenix-{round_no}")
                    rate = phoenix_round(bodies[: args.peer_requests], run, args.concurrency)
                    figures.add(f"{phoenix} (spans/s)", rate)
            for signal in others:
                sent = signal_bodies[signal.name]
                store = work / f"{signal.name}-floor-{round_no}"
                figures.add(f"{signal.name} floor ({signal.unit})", signals_floor.floor_round(signal, sent, store))
                store = work / f"{signal.name}-store-{round_no}"
                rate = signal_round(signal, sent, store, work, args.concurrency)
                figures.add(f"{signal.name} end to end ({signal.unit})", rate)
            shown = "   ".join(f"{name} {values[-1]:,.0f}" for name, values in figures.rounds.items())
            print(f"round {round_no}: {shown}", flush=True)
    print()
    figures.print(decimals=0)
    print()
    compared = []
    if traces:
        compared += [
            (f"{shipped} / {bare}", figures[f"{shipped} (spans/s)"], figures[f"{bare} (spans/s)"]),
            (f"{shipped} / {one_worker}", figures[f"{shipped} (spans/s)"], figures[f"{one_worker} (spans/s)"]),
            (f"{shipped} / {floor}", figures[f"{shipped} (spans/s)"], figures[f"{floor} (spans/s)"]),
            (f"{bare} / {floor}", figures[f"{bare} (spans/s)"], figures[f"{floor} (spans/s)"]),
        ]
    for signal in others:
        label = f"{signal.name} end to end / floor (aim: >= 0.5)"
        end_to_end = figures[f"{signal.name} end to end ({signal.unit})"]
        compared.append((label, end_to_end, figures[f"{signal.name} floor ({signal.unit})"]))
    width = max(len(label) for label, _, _ in compared)
    for label, numerators, denominators in compared:
        print(report.ratio_line(label, numerators, denominators, width))
    if traces:
        print()
        print(
            "CPU per span (µs), medians: the main process (receiver, store) and the others (workers, proxy, forkserver)"
        )
        for label, values in cpu.items():
            print(f"  {label:<55} {statistics.median(values):7.1f}   rounds: {', '.join(f'{v:.1f}' for v in values)}")
    if args.peers and traces:
        print()
        ours, theirs = figures[f"{shipped} (spans/s)"], figures[f"{phoenix} (spans/s)"]
        print(report.beside(f"ingest spans/s ({shipped})", ours, theirs, phoenix, decimals=0))


if __name__ == "__main__":
    main()
