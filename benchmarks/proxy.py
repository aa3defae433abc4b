"""What the GenAI proxy adds to an LLM call, measured against calling the same upstream directly.

Processes, each pinned to a core so the figures compare like with like:
  core 0: this client, and the upstreams: a bare ASGI app answering a chat completion (the mock's
          exact bytes) at once, and the mock upstream (tests/proxy/mock_upstream.py) for streams;
  core 1: the server under test: the collector running the genai_proxy receiver into its
          real pipeline and chDB store, or, as the baseline, the same bare ASGI app, served by
          the same uvicorn setup.

Printed, as medians over rounds:
  - added latency p50/p99 of non-streamed chat calls at concurrency 1 and 64 (proxied minus direct);
  - requests/s at saturation through the proxy, next to the bare ASGI app, and their ratio, and
    next to a minimal forwarder on the same stack with no telemetry (what the telemetry costs);
  - the delay the proxy adds to each chunk of a stream (arrival through the proxy minus direct);
  - the upstream HTTP client at concurrency 64 against the bare app: aiohttp (what the proxy uses),
    httpx with one pool, and httpx spread over 16 pools in round robin.

The load generator is aiohttp too: a single httpx pool cannot drive 64 concurrent calls (see the
last measurement) and would hide the servers' own limits.

Run: make bench-proxy   (or: python benchmarks/proxy.py --rounds 3)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from collector.config.types import HostPort  # noqa: E402
from collector.httpserver import HttpServer  # noqa: E402
from collector.listeners.settings import HttpServerSettings  # noqa: E402

HTTPX_POOLS = 16

CLIENT_CORE = 0
SERVER_CORE = 1
BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say something short."}]}
# Streams go to the mock (model names routed there), everything else to the bare app.
STREAM_BODY = {**BODY, "model": "mock-stream", "stream": True}
STREAM_CHUNK_SECONDS = 0.02
HEADERS = {"Authorization": "Bearer sk-bench", "Content-Type": "application/json"}
START_DEADLINE_SECONDS = 60


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _pin(core: int) -> None:
    if hasattr(os, "sched_setaffinity") and core < (os.cpu_count() or 1):
        os.sched_setaffinity(0, {core})


def _wait_port(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_DEADLINE_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"a benchmark server exited with status {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listened on port {port}")


class Server:
    """A child process serving on ``port``, pinned to ``core``."""

    def __init__(self, args: list[str], port: int, core: int) -> None:
        self.port = port
        self.process = subprocess.Popen(
            [sys.executable, *args],
            cwd=REPO_ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=lambda: _pin(core),
        )
        try:
            _wait_port(port, self.process)
        except BaseException:
            self.stop()
            raise

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()


def start_mock() -> Server:
    port = _free_port()
    return Server([__file__, "--serve-mock", str(port)], port, CLIENT_CORE)


def start_echo(core: int) -> Server:
    port = _free_port()
    return Server([__file__, "--serve-echo", str(port)], port, core)


def start_bare_proxy(upstream: str) -> Server:
    port = _free_port()
    return Server([__file__, "--serve-bare-proxy", str(port), "--upstream", upstream], port, SERVER_CORE)


def start_proxy(upstream: str, stream_upstream: str, work: Path) -> Server:
    port = _free_port()
    store = work / "clickhouse"
    shutil.rmtree(store, ignore_errors=True)
    config = work / "proxy-bench.yaml"
    config.write_text(
        f"""
receivers:
  genai_proxy:
    endpoint: 127.0.0.1:{port}
    capture_content: true
    auth: {{keys_file: {work / "keys.json"}}}
    upstreams:
      - {{name: mock, kind: openai, base_url: "{stream_upstream}/v1", models: ["mock-*"]}}
      - {{name: fast, kind: openai, base_url: "{upstream}/v1"}}
exporters:
  clickhouse:
    endpoint: chdb://{store}
service:
  telemetry: {{logs: {{level: warn}}}}
  pipelines:
    traces: {{receivers: [genai_proxy], exporters: [clickhouse]}}
"""
    )
    return Server(["-m", "collector", "run", "--config", str(config)], port, SERVER_CORE)


# --- the servers, when this file runs as one ---------------------------------------------------------------


def serve_mock(port: int) -> None:
    from tests.proxy.mock_upstream import MockUpstream, create_app

    app = create_app(MockUpstream(slow_seconds=STREAM_CHUNK_SECONDS))
    asyncio.run(_serve_forever(app, port))


def serve_echo(port: int) -> None:
    """The baseline: a bare ASGI app answering a chat completion of the same size, at once."""
    from tests.proxy.mock_upstream import MockUpstream, create_app

    # Take the exact body the mock gives, so both servers send the same bytes.
    reply: dict[str, bytes] = {}

    async def capture() -> None:
        transport = httpx.ASGITransport(app=create_app(MockUpstream()))
        async with httpx.AsyncClient(transport=transport, base_url="http://mock") as client:
            reply["body"] = (await client.post("/v1/chat/completions", json=BODY, headers=HEADERS)).content

    asyncio.run(capture())
    body = reply["body"]
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]

    async def app(scope: dict[str, Any], receive: Callable[[], Awaitable[dict[str, Any]]], send: Any) -> None:
        while (await receive()).get("more_body"):
            pass
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    asyncio.run(_serve_forever(app, port))


def serve_bare_proxy(port: int, upstream: str) -> None:
    """A second baseline: the same stack (uvicorn, Starlette, aiohttp) forwarding, with no telemetry at all."""
    import aiohttp
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    session: dict[str, aiohttp.ClientSession] = {}

    async def forward(request: Request) -> Response:
        body = await request.body()
        headers = {"content-type": "application/json", "authorization": request.headers.get("authorization", "")}
        async with session["client"].post(f"{upstream}/v1/chat/completions", data=body, headers=headers) as answer:
            return Response(await answer.read(), answer.status, media_type="application/json")

    async def main() -> None:
        session["client"] = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        await _serve_forever(Starlette(routes=[Route("/v1/chat/completions", forward, methods=["POST"])]), port)

    asyncio.run(main())


async def _serve_forever(app: Any, port: int) -> None:
    server = HttpServer(app, HttpServerSettings(endpoint=HostPort("127.0.0.1", port)), date_header=False)
    await server.start()
    await asyncio.Event().wait()


# --- measurements ------------------------------------------------------------------------------------------


def _session(concurrency: int) -> Any:
    """The load generator: aiohttp, because one httpx pool cannot drive 64 concurrent calls (see below)."""
    import aiohttp

    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency))


async def latencies(url: str, concurrency: int, requests: int) -> list[float]:
    """Seconds per non-streamed chat call, ``concurrency`` at a time."""
    results: list[float] = []
    payload = json.dumps(BODY).encode()
    async with _session(concurrency) as session:
        for _ in range(min(concurrency, 8)):  # warm the connections
            async with session.post(f"{url}/v1/chat/completions", data=payload, headers=HEADERS) as response:
                await response.read()
        remaining = requests

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                started = time.perf_counter()
                async with session.post(f"{url}/v1/chat/completions", data=payload, headers=HEADERS) as response:
                    await response.read()
                results.append(time.perf_counter() - started)
                if response.status != 200:
                    raise RuntimeError(f"{url} answered {response.status}")

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return results


async def throughput(url: str, concurrency: int, seconds: float) -> float:
    """Requests/s completed with ``concurrency`` callers for ``seconds``."""
    done = 0
    payload = json.dumps(BODY).encode()
    async with _session(concurrency) as session:
        end = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal done
            while time.perf_counter() < end:
                async with session.post(f"{url}/v1/chat/completions", data=payload, headers=HEADERS) as response:
                    await response.read()
                done += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return done / (time.perf_counter() - started)


async def chunk_arrivals(url: str, streams: int) -> list[list[float]]:
    """For each stream, when each event arrived, in seconds from the request."""
    arrivals: list[list[float]] = []
    headers = {**HEADERS, "x-mock-scenario": "slow"}
    payload = json.dumps(STREAM_BODY).encode()
    async with _session(1) as session:
        for _ in range(streams):
            started = time.perf_counter()
            times: list[float] = []
            async with session.post(f"{url}/v1/chat/completions", data=payload, headers=headers) as response:
                async for line in response.content:
                    if line.startswith(b"data: "):
                        times.append(time.perf_counter() - started)
            arrivals.append(times)
    return arrivals


async def httpx_throughput(url: str, concurrency: int, seconds: float, pools: int) -> float:
    """What the proxy's upstream client sustains: httpx, one pool or several in round robin."""
    import itertools

    clients = [httpx.AsyncClient(limits=httpx.Limits(max_connections=None)) for _ in range(pools)]
    turn = itertools.cycle(clients)
    done = 0
    end = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal done
        while time.perf_counter() < end:
            await next(turn).post(f"{url}/v1/chat/completions", json=BODY, headers=HEADERS)
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    rate = done / (time.perf_counter() - started)
    for client in clients:
        await client.aclose()
    return rate


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=400, help="calls per latency measurement at concurrency 1")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each saturation measurement")
    parser.add_argument("--streams", type=int, default=10, help="streams per chunk-delay measurement")
    parser.add_argument("--serve-mock", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--serve-echo", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--serve-bare-proxy", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--upstream", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_mock:
        serve_mock(args.serve_mock)
        return
    if args.serve_echo:
        serve_echo(args.serve_echo)
        return
    if args.serve_bare_proxy:
        serve_bare_proxy(args.serve_bare_proxy, args.upstream)
        return

    _pin(CLIENT_CORE)
    print(
        f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}; client and upstream on core "
        f"{CLIENT_CORE}, server under test on core {SERVER_CORE}"
    )
    work = Path(tempfile.mkdtemp(prefix="proxy-bench-"))
    rows: dict[str, list[float]] = {}

    def record(name: str, value: float) -> None:
        rows.setdefault(name, []).append(value)

    mock = start_mock()
    try:
        for round_number in range(1, args.rounds + 1):
            upstream = start_echo(CLIENT_CORE)
            proxy = start_proxy(upstream.url, mock.url, work)
            try:
                for concurrency, count in ((1, args.requests), (64, args.requests * 8)):
                    direct = asyncio.run(latencies(upstream.url, concurrency, count))
                    proxied = asyncio.run(latencies(proxy.url, concurrency, count))
                    for label, fraction in (("p50", 0.5), ("p99", 0.99)):
                        added = _percentile(proxied, fraction) - _percentile(direct, fraction)
                        record(f"added latency {label} at concurrency {concurrency} (ms)", added * 1000)
                        record(
                            f"direct {label} at concurrency {concurrency} (ms)", _percentile(direct, fraction) * 1000
                        )
                record("proxy requests/s at concurrency 64", asyncio.run(throughput(proxy.url, 64, args.seconds)))
                direct_streams = asyncio.run(chunk_arrivals(mock.url, args.streams))
                proxied_streams = asyncio.run(chunk_arrivals(proxy.url, args.streams))
                delays = [
                    p - d
                    for ds, ps in zip(direct_streams, proxied_streams, strict=True)
                    for d, p in zip(ds, ps, strict=False)
                ]
                record("added delay per stream chunk p50 (ms)", statistics.median(delays) * 1000)
                record("added delay per stream chunk p99 (ms)", _percentile(delays, 0.99) * 1000)
            finally:
                proxy.stop()
            bare = start_bare_proxy(upstream.url)
            try:
                rate = asyncio.run(throughput(bare.url, 64, args.seconds))
                record("minimal forwarder, no telemetry, requests/s at concurrency 64", rate)
            finally:
                bare.stop()
                upstream.stop()
            echo = start_echo(SERVER_CORE)
            try:
                echo_rps = asyncio.run(throughput(echo.url, 64, args.seconds))
                record("bare ASGI app requests/s at concurrency 64", echo_rps)
                # The upstream clients, against a server that is never their bottleneck.
                for pools in (1, HTTPX_POOLS):
                    rate = asyncio.run(httpx_throughput(echo.url, 64, args.seconds, pools))
                    record(f"upstream client: httpx, {pools} pool(s), requests/s at concurrency 64", rate)
                rate = asyncio.run(throughput(echo.url, 64, args.seconds))
                record("upstream client: aiohttp, requests/s at concurrency 64", rate)
            finally:
                echo.stop()
            print(f"round {round_number} done")
    finally:
        mock.stop()
        shutil.rmtree(work, ignore_errors=True)

    print()
    width = max(len(name) for name in rows)
    for name, values in rows.items():
        shown = ", ".join(f"{v:,.2f}" for v in values)
        print(f"{name:<{width}}  median {statistics.median(values):>10,.2f}   rounds: {shown}")
    proxy_rps = statistics.median(rows["proxy requests/s at concurrency 64"])
    echo_rps = statistics.median(rows["bare ASGI app requests/s at concurrency 64"])
    bare_rps = statistics.median(rows["minimal forwarder, no telemetry, requests/s at concurrency 64"])
    print(f"\nproxy / bare ASGI app requests/s: {proxy_rps / echo_rps:.2f}x")
    print(f"minimal forwarder without telemetry / bare ASGI app: {bare_rps / echo_rps:.2f}x")
    pooled = statistics.median(rows[f"upstream client: httpx, {HTTPX_POOLS} pool(s), requests/s at concurrency 64"])
    single = statistics.median(rows["upstream client: httpx, 1 pool(s), requests/s at concurrency 64"])
    chosen = statistics.median(rows["upstream client: aiohttp, requests/s at concurrency 64"])
    print(
        f"upstream client, aiohttp (the proxy's) / httpx: {chosen / single:.1f}x one pool, {chosen / pooled:.1f}x "
        f"{HTTPX_POOLS} pools"
    )


if __name__ == "__main__":
    main()
