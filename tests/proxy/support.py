"""A GenAI proxy on loopback for tests: its own event loop thread, spans collected in memory."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan

from collector.config.types import HostPort
from collector.errors import ConsumeError
from collector.httpserver import HttpServer
from collector.telemetry import Telemetry
from proxy.app import ProxyService
from proxy.config import ProxyConfig, UpstreamConfig
from proxy.guard import StreamCheck
from proxy.limits.limiter import Clock, Pricer
from proxy.semconv import Dialect

WAIT_SECONDS = 10.0
# How the proxy's listener labels its counters in the test proxy's Telemetry.
PROXY_LISTENER = "genai_proxy"


class RecordingSink:
    """A span sink that keeps every span, or fails / stalls on demand (to test that calls never wait)."""

    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []
        self.fail = False
        self.refuse: ConsumeError | None = None  # set: every send is refused with it, as a pipeline refuses
        self.sends = 0
        self.stall = threading.Event()  # set: every send hangs until cleared
        self._lock = threading.Lock()

    async def send(self, spans: Sequence[ReadableSpan]) -> None:
        self.sends += 1
        while self.stall.is_set():
            await asyncio.sleep(0.01)
        if self.fail:
            raise RuntimeError("the pipeline is down")
        if self.refuse is not None:
            raise self.refuse
        with self._lock:
            self.spans.extend(spans)

    async def close(self) -> None:
        self.stall.clear()

    def wait(self, count: int, timeout: float = WAIT_SECONDS) -> list[ReadableSpan]:
        """The first ``count`` spans, once that many arrived (bounded wait)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.spans) >= count:
                    return list(self.spans)
            time.sleep(0.01)
        raise AssertionError(f"expected {count} spans, got {len(self.spans)}")


def upstreams_for(url: str, openai_key: str = "", anthropic_key: str = "") -> tuple[UpstreamConfig, ...]:
    """An OpenAI and an Anthropic upstream, both served by the mock at ``url``."""
    from collector.config.types import Secret

    return (
        UpstreamConfig(
            name="openai",
            kind="openai",
            base_url=f"{url}/v1",
            api_key=Secret(openai_key),
            models=("gpt-*", "text-*", "o[0-9]*"),
        ),
        UpstreamConfig(
            name="anthropic", kind="anthropic", base_url=url, api_key=Secret(anthropic_key), models=("claude-*",)
        ),
    )


class RunningProxy:
    """A ProxyService served on 127.0.0.1 from a background event loop."""

    def __init__(
        self,
        config: ProxyConfig,
        dialect: Dialect | None = None,
        stream_check: StreamCheck | None = None,
        price: Pricer | None = None,
        clock: Clock = time.time,
    ) -> None:
        self.sink = RecordingSink()
        self.telemetry = Telemetry()
        logger = logging.getLogger("test.proxy")
        self.service = ProxyService(
            config, self.sink, self.telemetry, logger, dialect, stream_check=stream_check, price=price, clock=clock
        )
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True, name="test-proxy")
        self._thread.start()
        self._server = HttpServer(
            self.service.app, config, listener=PROXY_LISTENER, telemetry=self.telemetry, date_header=False
        )
        self._call(self.service.start())
        self._call(self._server.start())
        self.url = f"http://127.0.0.1:{self._server.port}"

    def _call(self, coroutine: Any, timeout: float = 30.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    def stop(self) -> None:
        if self._loop.is_closed():
            return
        try:
            self._call(self._server.stop())
            self._call(self.service.stop())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop.close()


@contextmanager
def running_proxy(
    config: ProxyConfig,
    dialect: Dialect | None = None,
    stream_check: StreamCheck | None = None,
    price: Pricer | None = None,
    clock: Clock = time.time,
) -> Iterator[RunningProxy]:
    proxy = RunningProxy(replace(config, endpoint=HostPort("127.0.0.1", 0)), dialect, stream_check, price, clock)
    try:
        yield proxy
    finally:
        proxy.stop()


def attributes(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})
