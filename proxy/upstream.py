"""Talking to the upstreams: one pooled HTTP client, the upstream URL, retries before the first byte.

The client is aiohttp. Measured against the same bare ASGI app at 64 concurrent
calls (benchmarks/proxy.py), it sustains about 8,500 requests/s where httpx
manages 140 with one connection pool (its pool does work per queued request for
every request it assigns) and 1,700 spread over 16 pools; the proxy's own
throughput is bounded by its upstream client, so the faster one is used.
Everything aiohttp-specific stays in this module: the rest of the proxy sees
``UpstreamResponse`` and the two errors below.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import time
from collections.abc import AsyncIterator

import aiohttp
from multidict import CIMultiDict
from yarl import URL

from proxy.config import RetrySettings, TimeoutSettings, UpstreamConfig
from proxy.errors import ProxyError
from proxy.paths import path_problem

RETRY_STATUSES = frozenset({429, 502, 503, 504})
RETRY_BASE_SECONDS = 0.5
# aiohttp would otherwise add its own User-Agent, Accept and Accept-Encoding to what the client sent.
_NO_AUTO_HEADERS = frozenset({"User-Agent", "Accept", "Accept-Encoding", "Content-Type"})


class UpstreamTimeout(Exception):
    """The upstream went silent for longer than the read timeout, mid-body."""


class UpstreamBroken(Exception):
    """The upstream closed or broke the connection mid-body."""


class UpstreamResponse:
    """A response whose status and headers arrived and whose body is still to be read."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response
        self.status = response.status
        self.raw_headers: list[tuple[bytes, bytes]] = list(response.raw_headers)

    def header(self, name: str, default: str = "") -> str:
        return self._response.headers.get(name, default)

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body as it arrives, in whatever pieces the network delivers."""
        try:
            async for chunk in self._response.content.iter_any():
                yield chunk
        except (aiohttp.ServerTimeoutError, TimeoutError):
            raise UpstreamTimeout("the upstream stalled mid-response") from None
        except aiohttp.ClientError as exc:
            raise UpstreamBroken(type(exc).__name__) from None

    async def read(self) -> bytes:
        return b"".join([chunk async for chunk in self.chunks()])

    def release(self) -> None:
        """The body was read whole: the connection goes back to the pool."""
        self._response.release()

    def abort(self) -> None:
        """Close the connection now (the client left, or the body broke): the upstream sees it go."""
        self._response.close()


class UpstreamClient:
    """Sends requests upstream; ``start`` and ``close`` run on the event loop that serves the proxy."""

    def __init__(self, timeouts: TimeoutSettings, retry: RetrySettings) -> None:
        self._timeouts = timeouts
        self._retry = retry
        self._session: aiohttp.ClientSession | None = None

    def start(self) -> None:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, ttl_dns_cache=300),
            # sock_read: the longest silence between two reads, which is what a stalled stream shows.
            timeout=aiohttp.ClientTimeout(
                total=None, sock_connect=self._timeouts.connect, sock_read=self._timeouts.read
            ),
            auto_decompress=False,  # bytes go to the client exactly as the upstream sent them
            skip_auto_headers=_NO_AUTO_HEADERS,
            trust_env=False,  # no proxy settings from the environment between us and the upstream
        )

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def send(self, method: str, url: URL, headers: list[tuple[bytes, bytes]], content: bytes) -> UpstreamResponse:
        """The upstream's response (headers read, body not yet); retried before the first byte when configured.

        Raises ProxyError 504 when the upstream did not answer in time, 502 when it could not be reached.
        """
        if self._session is None:
            raise ProxyError(503, "the proxy is not running")
        retry = self._retry
        attempts = retry.max_attempts if retry.enabled else 1
        outgoing = CIMultiDict((_header_text(k), _header_text(v)) for k, v in headers)
        for attempt in range(1, attempts + 1):
            last = attempt == attempts
            try:
                response = await self._session.request(
                    method, url, headers=outgoing, data=content or None, allow_redirects=False
                )
            except (aiohttp.ServerTimeoutError, TimeoutError):
                if last:
                    raise ProxyError(504, "the upstream did not answer in time") from None
                await asyncio.sleep(backoff(attempt, None, retry.max_backoff))
                continue
            except (aiohttp.ClientError, ValueError) as exc:
                # ValueError: aiohttp refusing what it was asked to send (a header with a newline, say).
                if last:
                    raise ProxyError(502, f"cannot reach the upstream: {type(exc).__name__}") from None
                await asyncio.sleep(backoff(attempt, None, retry.max_backoff))
                continue
            if response.status in RETRY_STATUSES and not last:
                wait = backoff(attempt, response.headers.get("retry-after"), retry.max_backoff)
                response.close()
                await asyncio.sleep(wait)
                continue
            return UpstreamResponse(response)
        raise AssertionError("unreachable: the last attempt returns or raises")


def upstream_url(upstream: UpstreamConfig, raw_path: bytes, raw_query: bytes) -> URL:
    """Where the call goes, with the client's path and query exactly as it encoded them.

    OpenAI-style base URLs include /v1 (as their SDKs write them); Anthropic's,
    Gemini's and Azure OpenAI's do not, and get the client's whole path.
    Raises ProxyError 400 for a path that could lead outside the base URL's path
    (the proxy's app refuses those before routing; this holds wherever the URL is built).
    """
    problem = path_problem(raw_path)
    openai = upstream.protocol == "openai"
    if problem is None and openai and not raw_path.startswith(b"/v1/"):
        problem = "the path is not under /v1/"
    if problem is None and upstream.protocol == "azure_openai" and not raw_path.startswith(b"/openai/"):
        problem = "the path is not under /openai/"
    if problem is not None:
        raise ProxyError(400, f"{problem}; the proxy does not forward it")
    path = raw_path.decode("ascii")  # path_problem allows ASCII only
    suffix = path[len("/v1") :] if openai else path
    query = raw_query.decode("latin-1")
    text = upstream.base_url.rstrip("/") + suffix + (f"?{query}" if query else "")
    # encoded=True: sent as written, not re-quoted (a%2Fb must not become a/b).
    return URL(text, encoded=True)


def _header_text(raw: bytes) -> str:
    """aiohttp writes header strings as UTF-8: decoding UTF-8 first sends the client's bytes unchanged."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def backoff(attempt: int, retry_after: str | None, cap: float) -> float:
    """The wait before the next attempt: the upstream's Retry-After when given, else jittered exponential."""
    if retry_after:
        seconds = retry_after_seconds(retry_after)
        if seconds is not None:
            return float(min(seconds, cap))
    return float(min(cap, RETRY_BASE_SECONDS * 2 ** (attempt - 1) * random.uniform(0.8, 1.2)))


def retry_after_seconds(value: str) -> float | None:
    """Retry-After as seconds: either form RFC 9110 allows (seconds, or an HTTP date)."""
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
