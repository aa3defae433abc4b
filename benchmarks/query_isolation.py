"""Ingest while queries run: OTLP/HTTP spans/s through a collector with no queries, and with N slow ones.

Each round runs benchmarks/ingest.py's end-to-end round twice on fresh stores:
once alone, once while N clients keep a slow query running through the admin
endpoint's POST /query the whole time (a scan of a trillion numbers, hashing
each: allowed, and as slow as the machine, so it runs until max_execution_time
or until its client hangs up). With the default query_limits two of them run
and the rest wait in the query queue; further ones get 503. Medians of the
rounds and their ratio are printed, with what the query clients were answered.

    python benchmarks/query_isolation.py [--requests 200] [--rounds 3] [--queries 4]
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import random
import socket
import statistics
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import ingest  # benchmarks/ingest.py, beside this script: its collector process and end-to-end round

SLOW_QUERY = "SELECT count() FROM numbers(1000000000000) WHERE sipHash64(number) = 1"
SOCKET_TIMEOUT_SECONDS = 600.0


class SlowQueries:
    """``count`` clients, each posting SLOW_QUERY to the admin endpoint again as soon as it is answered."""

    def __init__(self, admin_port: int, count: int) -> None:
        self._port = admin_port
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self.answers: collections.Counter[str] = collections.Counter()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(count)]

    def __enter__(self) -> SlowQueries:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)  # hang up: the collector cancels the query
        for thread in self._threads:
            thread.join(SOCKET_TIMEOUT_SECONDS)

    def _run(self) -> None:
        body = json.dumps({"sql": SLOW_QUERY}).encode()
        request = (
            f"POST /query HTTP/1.1\r\nHost: 127.0.0.1:{self._port}\r\nContent-Type: application/json\r\n"
            f"Connection: close\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        while not self._stop.is_set():
            with socket.create_connection(("127.0.0.1", self._port), timeout=SOCKET_TIMEOUT_SECONDS) as sock:
                with self._lock:
                    self._sockets.add(sock)
                try:
                    sock.sendall(request)
                    status = self._status(sock)
                except OSError:
                    status = "hung up"
                finally:
                    with self._lock:
                        self._sockets.discard(sock)
            with self._lock:
                self.answers[status] += 1
            if status.startswith("503"):
                self._stop.wait(1.0)  # told to retry later: do, as a client honouring Retry-After would

    @staticmethod
    def _status(sock: socket.socket) -> str:
        received = b""
        while b"\r\n" not in received:
            chunk = sock.recv(4096)
            if not chunk:
                return "hung up"
            received += chunk
        while sock.recv(65536):  # the rest of the answer, until the collector closes
            pass
        return received.split(b"\r\n", 1)[0].decode().split(" ", 1)[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=200, help="requests of 512 spans per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=4, help="client connections sending spans at once")
    parser.add_argument("--queries", type=int, default=4, help="clients keeping a slow query running")
    args = parser.parse_args()

    rng = random.Random(42)
    bodies = [ingest.build_request(rng) for _ in range(args.requests)]
    print(f"{args.requests} requests x {ingest.SPANS_PER_REQUEST} spans per round, {args.rounds} rounds")
    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}; {args.queries} slow query clients")

    alone: list[float] = []
    loaded: list[float] = []
    answers: collections.Counter[str] = collections.Counter()

    @contextlib.contextmanager
    def slow_queries(collector: ingest.Collector) -> Iterator[SlowQueries]:
        with SlowQueries(collector.admin_port, args.queries) as queries:
            yield queries
        answers.update(queries.answers)

    with tempfile.TemporaryDirectory(prefix="query-isolation-") as tmp:
        work = Path(tmp)
        for round_no in range(1, args.rounds + 1):
            alone.append(ingest.end_to_end_round(bodies, work / f"alone-{round_no}", work, args.concurrency))
            loaded.append(
                ingest.end_to_end_round(
                    bodies, work / f"loaded-{round_no}", work, args.concurrency, alongside=slow_queries
                )
            )
            print(
                f"round {round_no}: no queries {alone[-1]:>9,.0f} spans/s   "
                f"{args.queries} slow queries {loaded[-1]:>9,.0f} spans/s"
            )
    alone_median, loaded_median = statistics.median(alone), statistics.median(loaded)
    print()
    print(f"ingest, no queries:                   {alone_median:>9,.0f} spans/s (median)")
    print(f"ingest, {args.queries} slow queries running:     {loaded_median:>9,.0f} spans/s (median)")
    print(f"ratio with queries / without:         {loaded_median / alone_median:>9.2f}x")
    shown = ", ".join(f"{status}: {count}" for status, count in sorted(answers.items()))
    print(f"what the query clients were answered: {shown or 'nothing (every query ran to the end of its round)'}")


if __name__ == "__main__":
    main()
