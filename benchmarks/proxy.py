"""What the GenAI proxy adds to an LLM call, measured against calling the same upstream directly.

Processes, each pinned to a core so the figures compare like with like:
  core 0: this client, and the upstreams (benchmarks/llm_calls.py): a bare ASGI app answering a chat
          completion (the mock's exact bytes) at once, and the mock upstream for streams;
  core 1: the server under test: the collector running the shipped config (otel-config.yaml: every GenAI
          processor, the disk queue, prometheus; listeners on free loopback ports, the proxy's upstreams
          pointed at the ones above), or, as baselines, the same bare ASGI app and a minimal forwarder, served
          by the same uvicorn setup.

Printed, as medians, ranges and every round:
  - added latency p50/p99 of non-streamed chat calls at concurrency 1 and 64 (proxied minus direct);
  - requests/s at saturation through the proxy, next to the bare ASGI app, and their ratio, and
    next to a minimal forwarder on the same stack with no telemetry (what the telemetry costs);
  - the delay the proxy adds to each chunk of a stream and to its last chunk (arrival through the proxy
    minus direct);
  - the upstream HTTP client at concurrency 64 against the bare app: aiohttp (what the proxy uses),
    httpx with one pool, and httpx spread over 16 pools in round robin;
  - what limits cost a call (admitting it and settling it, as the proxy does, for a key and its tenant with
    every limit set and none reached): off, in memory, and in Redis (a redis-server on loopback, Debian's
    package, which `make test` installs), side by side, in microseconds per call, one call at a time.
    --limits-only measures just these.

With --peers, LiteLLM's proxy (pinned version, its own virtualenv under ~/.cache/genai-collector/bench-peers,
one worker, no database, the same two models routed to the same upstreams) is measured in every round on the
same calls, on the same core, and each of its figures is printed beside ours with the ratio.

Run: make bench-proxy   (or: python benchmarks/proxy.py --rounds 3 [--peers])
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import harness
import httpx
import llm_calls
import peers
import report

from collector.config.types import Secret
from collector.keys import Limits
from collector.receivers.genai_proxy import call_price
from collector.semconv import LATEST
from collector.telemetry import Telemetry
from proxy.apis.openai_chat import ChatCompletions
from proxy.auth import Caller
from proxy.limits.limiter import Limiter
from proxy.limits.settings import LimitsSettings
from proxy.record import CallRecord, Usage
from proxy.semconv import dialect_for
from tests.proxy.limits.redis_server import RedisServer

HTTPX_POOLS = 16
CLIENT_CORE = 0
SERVER_CORE = 1
HIGH_CONCURRENCY = 64
HIGH_CONCURRENCY_CALLS_FACTOR = 8
OURS = "genai-collector"
LITELLM = "LiteLLM"
# Every limit set and never reached: each call pays for every check.
UNREACHED = Limits(rpm=10**9, tpm=10**12, concurrency=10**6, daily_budget=10.0**9, monthly_budget=10.0**9)
LIMITED_CALLS = 20_000
LIMITS_WARM_UP_CALLS = 500


async def httpx_throughput(url: str, concurrency: int, seconds: float, pools: int) -> float:
    """What the proxy's upstream client sustains: httpx, one pool or several in round robin."""
    clients = [httpx.AsyncClient(limits=httpx.Limits(max_connections=None)) for _ in range(pools)]
    turn = itertools.cycle(clients)
    done = 0
    end = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal done
        while time.perf_counter() < end:
            await next(turn).post(f"{url}{llm_calls.CHAT_PATH}", json=llm_calls.BODY, headers=llm_calls.HEADERS)
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    rate = done / (time.perf_counter() - started)
    for client in clients:
        await client.aclose()
    return rate


def start_ours(work: Path, fast: str, stream: str) -> tuple[harness.Collector, str]:
    """The collector on the shipped config, its proxy routing to the benchmark's upstreams; and the proxy's URL."""
    config = harness.derive_config(work, proxy_upstreams=llm_calls.proxy_upstreams(fast, stream))
    collector = harness.start_collector(config, work, core=SERVER_CORE)
    return collector, f"http://{harness.LOOPBACK}:{config.port('receivers.genai_proxy')}"


def measure_proxy(
    figures: report.Figures, who: str, url: str, upstream: str, mock: str, args: argparse.Namespace
) -> None:
    """The same calls through ``url`` and straight to the upstreams, recorded under ``who``."""
    for concurrency, count in ((1, args.requests), (HIGH_CONCURRENCY, args.requests * HIGH_CONCURRENCY_CALLS_FACTOR)):
        direct = asyncio.run(llm_calls.latencies(upstream, concurrency, count))
        proxied = asyncio.run(llm_calls.latencies(url, concurrency, count))
        for label, fraction in (("p50", 0.5), ("p99", 0.99)):
            added = report.percentile(proxied, fraction) - report.percentile(direct, fraction)
            figures.add(f"{who}: added latency {label} at concurrency {concurrency} (ms)", added * 1000)
    rate = asyncio.run(llm_calls.throughput(url, HIGH_CONCURRENCY, args.seconds))
    figures.add(f"{who}: requests/s at concurrency {HIGH_CONCURRENCY}", rate)
    direct_streams = asyncio.run(llm_calls.chunk_arrivals(mock, args.streams))
    proxied_streams = asyncio.run(llm_calls.chunk_arrivals(url, args.streams))
    delays = llm_calls.chunk_delays(direct_streams, proxied_streams)
    figures.add(f"{who}: added delay per stream chunk p50 (ms)", statistics.median(delays) * 1000)
    figures.add(f"{who}: added delay per stream chunk p99 (ms)", report.percentile(delays, 0.99) * 1000)
    last = llm_calls.last_chunk_delays(direct_streams, proxied_streams)
    figures.add(f"{who}: added delay to a stream's last chunk, median (ms)", statistics.median(last) * 1000)


async def limits_per_call(limiter: Limiter, caller: Caller, calls: int) -> float:
    """Microseconds one call spends in the limits: admitted before forwarding, settled with its usage after."""
    chat = ChatCompletions()
    started = 0.0
    for number in range(-LIMITS_WARM_UP_CALLS, calls):
        if number == 0:  # the first calls fill the caches (prices, scopes, the tokenizer): not measured
            started = time.perf_counter()
        record = CallRecord("chat", "openai", dialect_for(LATEST), False, request_model=llm_calls.BODY["model"])
        chat.describe_request(llm_calls.BODY, record)
        admission = await limiter.admit(caller, record)
        record.usage = Usage(12, 9)
        limiter.settle(admission, record, "openai", llm_calls.BODY["model"])
    elapsed = time.perf_counter() - started
    await asyncio.sleep(0)  # a shared store settles in tasks of its own: let the last ones go
    return elapsed / calls * 1e6


def measure_limits(figures: report.Figures, work: Path, calls: int) -> None:
    """Limits off, in memory and in Redis, on the same calls; the per-call request parsing is in every figure."""
    caller = Caller(True, "acme", "hash", "key_000000000001", UNREACHED)
    logger = logging.getLogger("bench.limits")
    off = Limiter(LimitsSettings(), Telemetry(), logger, call_price())
    figures.add("limits off: microseconds per call", asyncio.run(limits_per_call(off, Caller(False, None, "h"), calls)))
    in_memory = Limiter(LimitsSettings(tenant=UNREACHED), Telemetry(), logger, call_price())
    figures.add("limits in memory: microseconds per call", asyncio.run(limits_per_call(in_memory, caller, calls)))
    server = RedisServer(harness.fresh_dir(work / "redis"))
    server.start()
    try:

        async def shared() -> float:
            settings = LimitsSettings(store=Secret(server.url), tenant=UNREACHED)
            limiter = Limiter(settings, Telemetry(), logger, call_price())
            try:
                return await limits_per_call(limiter, caller, max(1, calls // 10))
            finally:
                await limiter.close()

        figures.add("limits in Redis: microseconds per call", asyncio.run(shared()))
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=400, help="calls per latency measurement at concurrency 1")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each saturation measurement")
    parser.add_argument("--streams", type=int, default=10, help="streams per chunk-delay measurement")
    parser.add_argument("--peers", action="store_true", help="measure LiteLLM's proxy beside ours in every round")
    parser.add_argument("--limits-only", action="store_true", help="measure only what limits cost a call")
    parser.add_argument("--limited-calls", type=int, default=LIMITED_CALLS, help="calls per limits measurement")
    args = parser.parse_args()
    if args.limits_only:
        limits_main(args)
        return

    harness.pin(CLIENT_CORE)
    print(
        f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}; client and upstream on core "
        f"{CLIENT_CORE}, server under test on core {SERVER_CORE}; {OURS} on {harness.SHIPPED_CONFIG.name}"
    )
    if args.peers:
        (litellm_version,) = peers.install(peers.LITELLM)
        print(f"peer: {litellm_version} (proxy, 1 worker, no database), in {peers.LITELLM.path}")
    figures = report.Figures()
    with tempfile.TemporaryDirectory(prefix="proxy-bench-") as tmp:
        work = Path(tmp)
        mock = llm_calls.start_mock(CLIENT_CORE)
        try:
            for round_number in range(1, args.rounds + 1):
                upstream = llm_calls.start_echo(CLIENT_CORE)
                try:
                    collector, proxy_url = start_ours(
                        harness.fresh_dir(work / f"ours-{round_number}"), upstream.url, mock.url
                    )
                    try:
                        measure_proxy(figures, OURS, proxy_url, upstream.url, mock.url, args)
                    finally:
                        collector.stop()
                    if args.peers:
                        litellm = peers.start_litellm(
                            harness.fresh_dir(work / f"litellm-{round_number}"), upstream.url, mock.url, SERVER_CORE
                        )
                        try:
                            measure_proxy(figures, LITELLM, litellm.url, upstream.url, mock.url, args)
                        finally:
                            litellm.stop()
                    bare = llm_calls.start_bare_proxy(upstream.url, SERVER_CORE)
                    try:
                        rate = asyncio.run(llm_calls.throughput(bare.url, HIGH_CONCURRENCY, args.seconds))
                        figures.add(
                            f"minimal forwarder, no telemetry, requests/s at concurrency {HIGH_CONCURRENCY}", rate
                        )
                    finally:
                        bare.stop()
                finally:
                    upstream.stop()
                echo = llm_calls.start_echo(SERVER_CORE)
                try:
                    rate = asyncio.run(llm_calls.throughput(echo.url, HIGH_CONCURRENCY, args.seconds))
                    figures.add(f"bare ASGI app requests/s at concurrency {HIGH_CONCURRENCY}", rate)
                    # The upstream clients, against a server that is never their bottleneck.
                    for pools in (1, HTTPX_POOLS):
                        rate = asyncio.run(httpx_throughput(echo.url, HIGH_CONCURRENCY, args.seconds, pools))
                        figures.add(f"upstream client: httpx, {pools} pool(s), requests/s at concurrency 64", rate)
                    rate = asyncio.run(llm_calls.throughput(echo.url, HIGH_CONCURRENCY, args.seconds))
                    figures.add("upstream client: aiohttp, requests/s at concurrency 64", rate)
                finally:
                    echo.stop()
                measure_limits(figures, work / f"limits-{round_number}", args.limited_calls)
                print(f"round {round_number} done", flush=True)
        finally:
            mock.stop()

    print()
    figures.print()
    print()
    echo_rps = figures[f"bare ASGI app requests/s at concurrency {HIGH_CONCURRENCY}"]
    bare = figures[f"minimal forwarder, no telemetry, requests/s at concurrency {HIGH_CONCURRENCY}"]
    pooled = figures[f"upstream client: httpx, {HTTPX_POOLS} pool(s), requests/s at concurrency 64"]
    single = figures["upstream client: httpx, 1 pool(s), requests/s at concurrency 64"]
    chosen = figures["upstream client: aiohttp, requests/s at concurrency 64"]
    compared = [
        (f"{OURS} proxy / bare ASGI app, requests/s", figures[f"{OURS}: requests/s at concurrency 64"], echo_rps),
        ("minimal forwarder without telemetry / bare ASGI app", bare, echo_rps),
        ("upstream client, aiohttp (the proxy's) / httpx one pool", chosen, single),
        (f"upstream client, aiohttp / httpx {HTTPX_POOLS} pools", chosen, pooled),
    ]
    if args.peers:
        compared.append(
            (f"{LITELLM} / bare ASGI app, requests/s", figures[f"{LITELLM}: requests/s at concurrency 64"], echo_rps)
        )
    width = max(len(label) for label, _, _ in compared)
    for label, numerators, denominators in compared:
        print(report.ratio_line(label, numerators, denominators, width))
    print_limits_ratios(figures)
    if args.peers:
        print()
        for name in figures.rounds:
            if name.startswith(f"{OURS}: "):
                figure = name.removeprefix(f"{OURS}: ")
                print(report.beside(figure, figures[name], figures[f"{LITELLM}: {figure}"], LITELLM))


def limits_main(args: argparse.Namespace) -> None:
    figures = report.Figures()
    with tempfile.TemporaryDirectory(prefix="limits-bench-") as tmp:
        for round_number in range(1, args.rounds + 1):
            measure_limits(figures, Path(tmp) / f"round-{round_number}", args.limited_calls)
            print(f"round {round_number} done", flush=True)
    print()
    figures.print()
    print()
    print_limits_ratios(figures)


def print_limits_ratios(figures: report.Figures) -> None:
    off = figures["limits off: microseconds per call"]
    compared = [
        ("limits in memory / off, microseconds per call", figures["limits in memory: microseconds per call"], off),
        ("limits in Redis / off, microseconds per call", figures["limits in Redis: microseconds per call"], off),
    ]
    width = max(len(label) for label, _, _ in compared)
    for label, numerators, denominators in compared:
        print(report.ratio_line(label, numerators, denominators, width))
    added = [m - o for m, o in zip(figures["limits in memory: microseconds per call"], off, strict=True)]
    print(f"limits in memory add {statistics.median(added):.1f} microseconds per call (median of rounds)")


if __name__ == "__main__":
    main()
