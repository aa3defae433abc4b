"""LLM calls for the proxy benchmarks: the upstreams that answer them, and the clients that time them.

Upstreams (each run as this file in a child process, ``--serve-*``):
  - the mock upstream (tests/proxy/mock_upstream.py), pausing between stream pieces, for streamed calls;
  - echo: a bare ASGI app answering a chat completion with the mock's exact bytes, at once, for the rest;
  - a minimal forwarder on the proxy's stack (uvicorn, Starlette, aiohttp) with no telemetry at all.

Clients: aiohttp, because one httpx pool cannot drive 64 concurrent calls (benchmarks/proxy.py measures that)
and would hide the servers' own limits. Imported by the benchmark scripts beside it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import httpx

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

import harness  # noqa: E402

from collector.config.types import HostPort  # noqa: E402
from collector.httpserver import HttpServer  # noqa: E402
from collector.listeners.settings import HttpServerSettings  # noqa: E402

BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say something short."}]}
# Streams go to the mock (model names routed there), everything else to the echo app.
STREAM_MODEL = "mock-stream"
# The client asks for the usage chunk itself, as the proxy would for it otherwise: the upstream's stream is then the
# same piece for piece whether it is called directly or through the proxy (the mock pauses before every piece).
STREAM_BODY = {**BODY, "model": STREAM_MODEL, "stream": True, "stream_options": {"include_usage": True}}
STREAM_CHUNK_SECONDS = 0.02
SLOW_SCENARIO = {"x-mock-scenario": "slow"}
HEADERS = {"Authorization": "Bearer sk-bench", "Content-Type": "application/json"}
API_KEY = "sk-bench"
WARM_UP_CALLS = 8
CHAT_PATH = "/v1/chat/completions"


def proxy_upstreams(fast: str, stream: str) -> list[dict[str, Any]]:
    """genai_proxy's upstreams for the benchmarks: the mock's model names to the mock, the rest to echo."""
    return [
        {"name": "mock", "kind": "openai", "base_url": f"{stream}/v1", "models": ["mock-*"]},
        {"name": "fast", "kind": "openai", "base_url": f"{fast}/v1"},
    ]


def start_upstream(kind: str, core: int | None, *extra: str) -> harness.ChildProcess:
    """This file serving ``kind`` (mock, echo, bare-proxy) on a free port."""
    port = harness.free_port()
    return harness.ChildProcess(
        [sys.executable, __file__, f"--serve-{kind}", str(port), *extra], port, name=f"the {kind} upstream", core=core
    )


def start_mock(core: int | None = None) -> harness.ChildProcess:
    return start_upstream("mock", core)


def start_echo(core: int | None = None) -> harness.ChildProcess:
    return start_upstream("echo", core)


def start_bare_proxy(upstream: str, core: int | None = None) -> harness.ChildProcess:
    return start_upstream("bare-proxy", core, "--upstream", upstream)


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
            reply["body"] = (await client.post(CHAT_PATH, json=BODY, headers=HEADERS)).content

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
        async with session["client"].post(f"{upstream}{CHAT_PATH}", data=body, headers=headers) as answer:
            return Response(await answer.read(), answer.status, media_type="application/json")

    async def main() -> None:
        session["client"] = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        await _serve_forever(Starlette(routes=[Route(CHAT_PATH, forward, methods=["POST"])]), port)

    asyncio.run(main())


async def _serve_forever(app: Any, port: int) -> None:
    server = HttpServer(app, HttpServerSettings(endpoint=HostPort(harness.LOOPBACK, port)), date_header=False)
    await server.start()
    await asyncio.Event().wait()


# --- the clients -------------------------------------------------------------------------------------------


def session(concurrency: int) -> Any:
    """The load generator: aiohttp, because one httpx pool cannot drive 64 concurrent calls."""
    import aiohttp

    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency))


async def latencies(url: str, concurrency: int, requests: int) -> list[float]:
    """Seconds per non-streamed chat call, ``concurrency`` at a time."""
    results: list[float] = []
    payload = json.dumps(BODY).encode()
    async with session(concurrency) as client:
        for _ in range(min(concurrency, WARM_UP_CALLS)):  # warm the connections
            async with client.post(f"{url}{CHAT_PATH}", data=payload, headers=HEADERS) as response:
                await response.read()
        remaining = requests

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                started = time.perf_counter()
                async with client.post(f"{url}{CHAT_PATH}", data=payload, headers=HEADERS) as response:
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
    async with session(concurrency) as client:
        end = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal done
            while time.perf_counter() < end:
                async with client.post(f"{url}{CHAT_PATH}", data=payload, headers=HEADERS) as response:
                    await response.read()
                    if response.status != 200:
                        raise RuntimeError(f"{url} answered {response.status}")
                done += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return done / (time.perf_counter() - started)


def traceparent(trace_id: bytes, span_id: bytes) -> str:
    """A W3C traceparent header (sampled) naming ``trace_id`` as the caller's trace."""
    return f"00-{trace_id.hex()}-{span_id.hex()}-01"


async def chunk_arrivals(url: str, streams: int, headers: Sequence[dict[str, str]] | None = None) -> list[list[float]]:
    """For each stream, when each event arrived, in seconds from the request; ``headers[i]`` added to stream i."""
    arrivals: list[list[float]] = []
    payload = json.dumps(STREAM_BODY).encode()
    async with session(1) as client:
        for number in range(streams):
            sent = {**HEADERS, **SLOW_SCENARIO, **(headers[number] if headers else {})}
            started = time.perf_counter()
            times: list[float] = []
            async with client.post(f"{url}{CHAT_PATH}", data=payload, headers=sent) as response:
                if response.status != 200:
                    raise RuntimeError(f"{url} answered {response.status} to a stream")
                async for line in response.content:
                    if line.startswith(b"data: "):
                        times.append(time.perf_counter() - started)
            arrivals.append(times)
    return arrivals


def chunk_delays(direct: list[list[float]], proxied: list[list[float]]) -> list[float]:
    """What the proxy added to each event's arrival: proxied minus direct, stream by stream, event by event."""
    return [p - d for ds, ps in zip(direct, proxied, strict=True) for d, p in zip(ds, ps, strict=False)]


def last_chunk_delays(direct: list[list[float]], proxied: list[list[float]]) -> list[float]:
    """What the proxy added to each stream's last event (its whole reply delivered)."""
    return [ps[-1] - ds[-1] for ds, ps in zip(direct, proxied, strict=True) if ds and ps]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--serve-mock", type=int)
    parser.add_argument("--serve-echo", type=int)
    parser.add_argument("--serve-bare-proxy", type=int)
    parser.add_argument("--upstream")
    args = parser.parse_args()
    if args.serve_mock:
        serve_mock(args.serve_mock)
    elif args.serve_echo:
        serve_echo(args.serve_echo)
    elif args.serve_bare_proxy:
        serve_bare_proxy(args.serve_bare_proxy, args.upstream)
    else:
        parser.error("name a server to run: --serve-mock, --serve-echo or --serve-bare-proxy PORT")


if __name__ == "__main__":
    main()
