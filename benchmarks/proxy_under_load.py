"""The proxy while OTLP clients flood the same collector: chat latency and time to first chunk, idle and loaded.

One collector runs the shipped config (otel-config.yaml: every GenAI processor, the disk queue, prometheus;
listeners on free loopback ports, the proxy's upstreams pointed at benchmarks/llm_calls.py's); nothing is
pinned. Each round starts a fresh collector and measures the same things twice, first idle, then while
``--clients`` OTLP/HTTP clients (in a child process) push benchmarks/loop_detection.py's 512-span GenAI agent
requests as fast as they are accepted, retrying 429/503 after Retry-After as OTLP exporters do:

  - non-streamed chat calls at concurrency 1, through the proxy and straight to the upstream: total latency
    p50, p99 and max, and the proxy's added p50 and p99 (proxied minus direct, in the same phase);
  - streamed calls (the mock pauses between pieces), each under its own traceparent: the time to first chunk
    the client measures, the one the proxy recorded on the call's span (gen_ai.response.time_to_first_chunk,
    read back from the store through the admin extension's SQL), and what the span misses (client minus
    recorded); and how many of those spans reached the store at all;
  - what the OTLP clients got accepted meanwhile (spans/s) and how often they were refused.

Printed per figure: median, range and every round, idle beside loaded, and the per-round loaded / idle ratios
(the p99 ratio is the one the runtime's aim bounds).

    make bench-proxy-load
    python benchmarks/proxy_under_load.py [--rounds 3] [--requests 400] [--streams 20] [--clients 4] [--bodies 32]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import harness
import llm_calls
import loop_detection
import otlp_load
import report

from collector import semconv

PHASES = ("idle", "loaded")
SPANS_DRAIN_SECONDS = 300
SPANS_POLL_SECONDS = 1.0
# The store stopped growing for this long: whatever has not arrived by then is not coming.
STORE_QUIET_SECONDS = 10.0


def stream_headers(rng: random.Random, streams: int) -> tuple[list[dict[str, str]], list[str]]:
    """A traceparent for each stream, and the trace ids (hex) to find their spans by."""
    headers, trace_ids = [], []
    for _ in range(streams):
        trace_id = rng.randbytes(16)
        headers.append({"traceparent": llm_calls.traceparent(trace_id, rng.randbytes(8))})
        trace_ids.append(trace_id.hex())
    return headers, trace_ids


def recorded_first_chunks(collector: harness.Collector, trace_ids: list[str]) -> dict[str, float]:
    """The time to first chunk (s) the proxy recorded, by trace id, for the spans of ``trace_ids`` in the store."""
    if not all(re.fullmatch("[0-9a-f]{32}", trace_id) for trace_id in trace_ids):
        raise ValueError("trace ids are 32 hex digits")  # they are spliced into the statement below
    key = semconv.RESPONSE_TIME_TO_FIRST_CHUNK
    listed = ", ".join(f"'{trace_id}'" for trace_id in trace_ids)
    rows = collector.query(
        f"SELECT TraceId, SpanAttributes['{key}'] FROM {harness.TRACES_TABLE} "
        f"WHERE TraceId IN ({listed}) AND mapContains(SpanAttributes, '{key}')"
    )
    return {str(trace_id): float(value) for trace_id, value in rows}


def wait_for_spans(collector: harness.Collector, trace_ids: list[str]) -> dict[str, float]:
    """The recorded times once every span is in, or once the store has stopped growing without them."""
    deadline = time.monotonic() + SPANS_DRAIN_SECONDS
    last_stored, last_change = -1, time.monotonic()
    while True:
        found = recorded_first_chunks(collector, trace_ids)
        if len(found) == len(trace_ids) or time.monotonic() > deadline:
            return found
        stored = collector.stored()
        if stored != last_stored:
            last_stored, last_change = stored, time.monotonic()
        elif time.monotonic() - last_change > STORE_QUIET_SECONDS:
            return found
        time.sleep(SPANS_POLL_SECONDS)


def measure_phase(
    figures: report.Figures,
    phase: str,
    proxy_url: str,
    upstream: str,
    mock: str,
    args: argparse.Namespace,
    rng: random.Random,
) -> tuple[list[str], list[float]]:
    """Chat latency and streams through the proxy and direct; the streams' trace ids and client-side first chunks."""
    direct = asyncio.run(llm_calls.latencies(upstream, 1, args.requests))
    proxied = asyncio.run(llm_calls.latencies(proxy_url, 1, args.requests))
    for label, fraction in (("p50", 0.5), ("p99", 0.99), ("max", 1.0)):
        figures.add(f"{phase}: proxied chat latency {label} (ms)", report.percentile(proxied, fraction) * 1000)
        figures.add(f"{phase}: direct chat latency {label} (ms)", report.percentile(direct, fraction) * 1000)
    for label, fraction in (("p50", 0.5), ("p99", 0.99)):
        added = report.percentile(proxied, fraction) - report.percentile(direct, fraction)
        figures.add(f"{phase}: added chat latency {label} (ms)", added * 1000)
    headers, trace_ids = stream_headers(rng, args.streams)
    direct_streams = asyncio.run(llm_calls.chunk_arrivals(mock, args.streams))
    proxied_streams = asyncio.run(llm_calls.chunk_arrivals(proxy_url, args.streams, headers))
    last = llm_calls.last_chunk_delays(direct_streams, proxied_streams)
    figures.add(f"{phase}: added delay to a stream's last chunk, median (ms)", statistics.median(last) * 1000)
    figures.add(
        f"{phase}: direct time to first chunk, median (ms)", statistics.median(s[0] for s in direct_streams) * 1000
    )
    return trace_ids, [stream[0] for stream in proxied_streams]


def record_first_chunks(
    figures: report.Figures, phase: str, trace_ids: list[str], client: list[float], recorded: dict[str, float]
) -> None:
    """Client-measured against recorded time to first chunk, stream by stream, for the spans that arrived."""
    pairs = [
        (seen, recorded[trace_id]) for trace_id, seen in zip(trace_ids, client, strict=True) if trace_id in recorded
    ]
    figures.add(f"{phase}: stream spans in the store (%)", 100 * len(pairs) / len(trace_ids))
    if not pairs:
        return
    missed = [seen - kept for seen, kept in pairs]
    figures.add(f"{phase}: time to first chunk, client, median (ms)", statistics.median(s for s, _ in pairs) * 1000)
    figures.add(
        f"{phase}: time to first chunk, on the span, median (ms)", statistics.median(k for _, k in pairs) * 1000
    )
    figures.add(f"{phase}: client minus span time to first chunk, median (ms)", statistics.median(missed) * 1000)
    figures.add(f"{phase}: client minus span time to first chunk, max (ms)", max(missed) * 1000)


def run_round(
    figures: report.Figures, work: Path, bodies: list[bytes], args: argparse.Namespace, rng: random.Random
) -> None:
    upstream, mock = llm_calls.start_echo(), llm_calls.start_mock()
    try:
        config = harness.derive_config(work, proxy_upstreams=llm_calls.proxy_upstreams(upstream.url, mock.url))
        collector = harness.start_collector(config, work)
        try:
            proxy_url = f"http://{harness.LOOPBACK}:{config.port('receivers.genai_proxy')}"
            otlp_url = f"http://{harness.LOOPBACK}:{config.port('receivers.otlp.protocols.http')}/v1/traces"
            streams: dict[str, tuple[list[str], list[float]]] = {}
            streams["idle"] = measure_phase(figures, "idle", proxy_url, upstream.url, mock.url, args, rng)
            load = otlp_load.OtlpLoad(otlp_url, bodies, args.clients).start()
            try:
                streams["loaded"] = measure_phase(figures, "loaded", proxy_url, upstream.url, mock.url, args, rng)
            finally:
                pushed = load.stop()
            if pushed.error:
                raise RuntimeError(f"the OTLP load failed: {pushed.error}")
            figures.add("loaded: OTLP spans/s accepted meanwhile", pushed.spans_per_second)
            figures.add("loaded: OTLP refusals (429/503) meanwhile", pushed.refusals)
            all_ids = [trace_id for trace_ids, _ in streams.values() for trace_id in trace_ids]
            recorded = wait_for_spans(collector, all_ids)
            for phase, (trace_ids, client) in streams.items():
                record_first_chunks(figures, phase, trace_ids, client, recorded)
        finally:
            collector.stop()
    finally:
        upstream.stop()
        mock.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=400, help="chat calls per latency measurement")
    parser.add_argument("--streams", type=int, default=20, help="streamed calls per phase")
    parser.add_argument("--clients", type=int, default=4, help="OTLP/HTTP clients pushing during the loaded phase")
    parser.add_argument("--bodies", type=int, default=32, help="distinct agent requests the clients cycle through")
    args = parser.parse_args()

    rng = random.Random(15)
    bodies = [loop_detection.request(rng) for _ in range(args.bodies)]
    size = statistics.mean(map(len, bodies)) / 1e3
    print(
        f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}, nothing pinned; collector on "
        f"{harness.SHIPPED_CONFIG.name}; load: {args.clients} OTLP/HTTP clients, "
        f"{loop_detection.SPANS_PER_REQUEST}-span agent requests ({size:,.0f} kB each); {args.rounds} rounds"
    )
    figures = report.Figures()
    with tempfile.TemporaryDirectory(prefix="proxy-load-bench-") as tmp:
        for round_number in range(1, args.rounds + 1):
            run_round(figures, harness.fresh_dir(Path(tmp) / f"round-{round_number}"), bodies, args, rng)
            print(f"round {round_number} done", flush=True)
    print()
    figures.print()
    print()
    compared = ("proxied chat latency p99 (ms)", "added chat latency p99 (ms)", "proxied chat latency p50 (ms)")
    width = max(len(f"loaded / idle, {figure}") for figure in compared)
    for figure in compared:
        loaded, idle = figures[f"loaded: {figure}"], figures[f"idle: {figure}"]
        print(report.ratio_line(f"loaded / idle, {figure}", loaded, idle, width))


if __name__ == "__main__":
    main()
