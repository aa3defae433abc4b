"""OTLP/HTTP load for the benchmarks: posting as an OTLP exporter does, and clients that push as fast as accepted.

Imported by the scripts beside it; not run on its own.
"""

from __future__ import annotations

import itertools
import multiprocessing
import queue
import threading
import time
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
from harness import CLIENT_TIMEOUT_SECONDS, POLL_SECONDS, START_DEADLINE_SECONDS, STOP_DEADLINE_SECONDS
from opentelemetry.proto.trace.v1.trace_pb2 import TracesData

PROTOBUF = "application/x-protobuf"
# What an OTLP exporter retries (the OTLP/HTTP specification's retryable statuses).
RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})
FIRST_BACKOFF_SECONDS = 0.05
MAX_BACKOFF_SECONDS = 1.0


def retry_after_seconds(value: str | None, attempt: int) -> float:
    """How long an OTLP client waits before retrying: Retry-After in seconds when given, else a capped backoff."""
    if value is not None:
        try:
            return min(MAX_BACKOFF_SECONDS, max(0.0, float(value)))
        except ValueError:
            pass
    return min(MAX_BACKOFF_SECONDS, FIRST_BACKOFF_SECONDS * 2**attempt)


class Flag(Protocol):
    """A threading or multiprocessing Event, as far as a client waiting to retry needs it."""

    def wait(self, timeout: float | None = None) -> bool: ...


def post_until_accepted(client: httpx.Client, url: str, body: bytes, give_up: Flag | None = None) -> tuple[bool, int]:
    """POST an OTLP/HTTP body as an exporter does, retrying what it retries, until it is taken or ``give_up`` is
    set: whether it was taken, and how often it was refused first. Any other answer raises."""
    for attempt in itertools.count():
        response = client.post(url, content=body, headers={"Content-Type": PROTOBUF})
        if 200 <= response.status_code < 300:
            return True, attempt
        if response.status_code not in RETRYABLE_STATUSES:
            raise RuntimeError(f"{url} answered {response.status_code}: {response.text[:200]}")
        wait = retry_after_seconds(response.headers.get("Retry-After"), attempt)
        if give_up is None:
            time.sleep(wait)
        elif give_up.wait(wait):
            return False, attempt + 1
    raise AssertionError("unreachable")


def _xor_id(value: bytes, salt: int) -> bytes:
    return (int.from_bytes(value, "big") ^ salt).to_bytes(len(value), "big") if value else value


def with_fresh_ids(body: bytes, salt: int) -> bytes:
    """``body`` with every trace and span id changed by ``salt``, so a body sent again is new data, not a retry."""
    traces = TracesData.FromString(body)
    for resource_spans in traces.resource_spans:
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                span.trace_id = _xor_id(span.trace_id, salt)
                span.span_id = _xor_id(span.span_id, salt)
                span.parent_span_id = _xor_id(span.parent_span_id, salt)
    return traces.SerializeToString()


def span_count(body: bytes) -> int:
    traces = TracesData.FromString(body)
    return sum(len(scope.spans) for resource in traces.resource_spans for scope in resource.scope_spans)


@dataclass
class LoadResult:
    accepted_spans: int = 0
    accepted_requests: int = 0
    refusals: int = 0  # retryable answers (429, 503...) before a request was taken
    seconds: float = 0.0
    error: str = ""

    @property
    def spans_per_second(self) -> float:
        return self.accepted_spans / self.seconds if self.seconds else 0.0


def _push(url: str, bodies: list[bytes], clients: int, stop: Any, first: Any, results: Any) -> None:
    """The load process: ``clients`` threads, each posting the next body as soon as its last one was taken."""
    spans = [span_count(body) for body in bodies]
    turn = itertools.count()
    lock = threading.Lock()
    result = LoadResult()
    started = time.perf_counter()

    def client_loop() -> None:
        with httpx.Client(timeout=CLIENT_TIMEOUT_SECONDS) as client:
            while not stop.is_set():
                with lock:
                    number = next(turn)
                index, salt = number % len(bodies), number // len(bodies)
                body = with_fresh_ids(bodies[index], salt) if salt else bodies[index]
                try:
                    accepted, refusals = post_until_accepted(client, url, body, stop)
                except (RuntimeError, httpx.HTTPError) as exc:
                    with lock:
                        result.error = result.error or f"{type(exc).__name__}: {exc}"
                    stop.set()
                    return
                with lock:
                    result.refusals += refusals
                    if accepted:
                        result.accepted_spans += spans[index]
                        result.accepted_requests += 1
                if accepted:
                    first.set()

    threads = [threading.Thread(target=client_loop, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result.seconds = time.perf_counter() - started
    results.put(result)


class OtlpLoad:
    """OTLP/HTTP clients pushing ``bodies`` (over and over, with fresh ids) as fast as the collector takes them.

    They run in a child process, so their work does not share this process's interpreter lock with whatever it
    measures meanwhile. ``start`` returns once the first request was accepted; ``stop`` returns what was sent.
    """

    def __init__(self, url: str, bodies: list[bytes], clients: int) -> None:
        context = multiprocessing.get_context("spawn")
        self._stop, self._first, self._results = context.Event(), context.Event(), context.Queue()
        self._process = context.Process(
            target=_push, args=(url, bodies, clients, self._stop, self._first, self._results), daemon=True
        )

    def start(self) -> OtlpLoad:
        self._process.start()
        deadline = time.monotonic() + START_DEADLINE_SECONDS
        while not self._first.wait(POLL_SECONDS):
            if self._stop.is_set() or not self._process.is_alive() or time.monotonic() > deadline:
                error = self.stop().error or f"nothing accepted within {START_DEADLINE_SECONDS}s"
                raise RuntimeError(f"the OTLP load was never accepted: {error}")
        return self

    def stop(self) -> LoadResult:
        self._stop.set()
        # The clients finish the requests they have in flight (each bounded by the client timeout) and report.
        deadline = time.monotonic() + CLIENT_TIMEOUT_SECONDS + STOP_DEADLINE_SECONDS
        result = LoadResult(error="the load process gave no result")
        while time.monotonic() < deadline:
            try:
                result = self._results.get(timeout=POLL_SECONDS)
                break
            except queue.Empty:
                if not self._process.is_alive() and self._results.empty():
                    break
        self._process.join(STOP_DEADLINE_SECONDS)
        if self._process.is_alive():
            self._process.kill()
        return result
