"""Soak and fault injection: does every acknowledged span reach the store exactly once?

Each scenario runs a collector in its own process, on free ports, with its own
data directory (the disk sending queue and the store), and feeds it OTLP/HTTP
requests in which every span has an id never used before, so the counts are
exact. For each scenario the table gives:

  sent          spans the clients offered (each span once, however often retried)
  acknowledged  spans in requests the collector answered 2xx (minus the spans a
                partial success rejected)
  stored        distinct SpanIds in the store at the end
  lost          acknowledged but not stored
  duplicated    SpanIds stored more than once

and how long the scenario took. The required figures are lost = 0 and
duplicated = 0; the script exits with status 1 when a scenario loses or
duplicates a span, or fails one of its own checks (listed under the table).

Scenarios:

  1  kill -9 under load: several clients send as fast as they can; the
     collector is killed with SIGKILL at a random moment, restarted on the same
     directories while the load goes on, killed again, restarted, and drained
     with SIGTERM. The store (chDB) is then counted.
  2  backend down: the collector exports to a ClickHouse server over HTTP (the
     chDB-backed stand-in of tests/exporters/clickhouse/http_fixture.py, in its
     own process) while clients send at ``--rate`` spans/s. The server is
     stopped for ``--down-seconds`` and started again on the same data; the
     collector keeps acknowledging into its disk queue and delivers when the
     server is back.
  3  backend slower than the load: the same server takes ``--insert-delay``
     seconds per insert, and its first inserts commit but never answer (the
     client times out and retries, which deduplication must absorb); the
     collector's queue is small, so it answers 503 with Retry-After and the
     clients retry as OTLP clients do.
  4  malformed and oversized inputs mixed into valid traffic: garbage protobuf,
     bad JSON, JSON of the wrong shape, a gzip bomb, a request over
     max_spans_per_request, an unsupported content type, and spans over
     max_attributes_per_span inside otherwise valid requests. Every bad request
     must get its 4xx, every over-limit span a partial success and no row, and
     the valid spans must land once.
  5  client disconnects through the proxy: streamed chat completions through
     the genai_proxy receiver to the mock OpenAI upstream
     (tests/proxy/mock_upstream.py, in its own process); clients drop the
     connection mid-stream or before the first token, or the upstream drops
     it. Here "sent" is calls made, "acknowledged" the proxy spans the
     pipeline took (genai_proxy_spans_sent_total), "stored" the distinct
     proxy spans in the store (each call carries its own traceparent, so its
     span is found by trace id).
  6  worker processes killed under load: the collector runs the GenAI
     processors in two worker processes (``service.workers: 2``); several
     clients send as fast as they can while a worker, picked at random, is
     killed with SIGKILL at random moments (``--kills`` times). The batches it
     held are refused for retry and it is started again; the collector is then
     drained with SIGTERM and the store counted. Its restarts are checked in
     its own metrics.
  7  logs and metrics, kill -9 under load: as scenario 1, with clients sending
     OTLP log records and metric data points (each carrying a ``soak.id``
     attribute used once) to a collector with logs and metrics pipelines.
  8  logs and metrics, backend down: as scenario 2, the store stopped for
     ``--down-seconds`` and started again on the same data.

Scenarios 7 and 8 count per signal (a row each). They write through the
clickhouse exporter (chDB, and the ClickHouse stand-in for 8), counting
``soak.id`` in ``otel_logs`` and ``otel_metrics_sum``, when that exporter takes
logs and metrics pipelines (``--signals-store auto``); otherwise
(``--signals-store sink``) through the otlphttp exporter's disk queues to a test
store (``--serve-otlp-sink``): an OTLP/HTTP server in its own process that keeps
every log record's and data point's ``soak.id`` on disk and absorbs a request
whose body it already stored, as ClickHouse's insert deduplication absorbs a
batch sent again with the same token. A batch the disk queue sends again after
a restart is the same bytes, so a duplicate there is a batch re-cut
differently, which the store would keep twice too.

Run:

    python benchmarks/soak.py                       # every scenario, as the reliability issue asks
    python benchmarks/soak.py --quick               # the same, short (5 s down, short loads)
    python benchmarks/soak.py --scenarios 2 --down-seconds 30 --rate 2000
    python benchmarks/soak.py --scenarios 7,8 --quick --signals-store sink
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import json
import os
import random
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from google.protobuf.message import Message
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.proto.logs.v1.logs_pb2 import LogsData, SeverityNumber
from opentelemetry.proto.metrics.v1.metrics_pb2 import AggregationTemporality, MetricsData
from opentelemetry.proto.trace.v1.trace_pb2 import Span, TracesData

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))


# benchmarks/ingest.py, beside this script: its free-port helper and collector process (health, metrics, stop).
import ingest  # noqa: E402

PROTOBUF = "application/x-protobuf"
SPANS_PER_REQUEST = 100
START_SECONDS = 60.0
DRAIN_SECONDS = 300.0
CLIENT_TIMEOUT_SECONDS = 30.0
# OTLP clients give up on a request after a while; ours keep retrying a 429/503 for this long.
RETRY_FOR_SECONDS = 300.0
BACKOFF_SECONDS = (0.1, 2.0)
FAST_RETRY = "{initial_interval: 200ms, max_interval: 2s, max_elapsed_time: 30m}"
# Scenario 4's receiver limits, low enough that going over them is cheap.
MAX_SPANS_PER_REQUEST = 1000
MAX_ATTRIBUTES_PER_SPAN = 64
GZIP_BOMB_BYTES = 64 * 1024 * 1024  # inflates to 3x the 20 MiB body limit
CHAT_PATH = "/v1/chat/completions"
SIGNAL_PATHS = {"traces": "/v1/traces", "logs": "/v1/logs", "metrics": "/v1/metrics"}
# Scenarios 7 and 8: log records (or data points) per request, and the attribute that names each one.
ITEMS_PER_REQUEST = 100
SOAK_ID = "soak.id"


# --- spans with ids used once ---------------------------------------------------------------------------------


class UniqueIds:
    """8-byte span ids that never repeat within a run: a random run prefix and a counter."""

    def __init__(self) -> None:
        self._prefix = random.getrandbits(32)
        self._counter = itertools.count(1)
        self._lock = threading.Lock()

    def take(self, count: int) -> list[bytes]:
        with self._lock:
            return [struct.pack(">II", self._prefix, next(self._counter)) for _ in range(count)]


def build_request(span_ids: list[bytes], extra_attributes: int = 0) -> TracesData:
    """One OTLP request: a chat span per id, with GenAI attributes (``extra_attributes`` more on each)."""
    traces = TracesData()
    resource_spans = traces.resource_spans.add()
    resource_spans.resource.attributes.add(key="service.name").value.string_value = "soak"
    scope_spans = resource_spans.scope_spans.add()
    scope_spans.scope.name = "benchmarks.soak"
    now = time.time_ns()
    trace_id = os.urandom(16)
    for span_id in span_ids:
        span = scope_spans.spans.add(
            trace_id=trace_id,
            span_id=span_id,
            name="chat gpt-4o-mini",
            kind=Span.SPAN_KIND_CLIENT,
            start_time_unix_nano=now,
            end_time_unix_nano=now + 1_200_000_000,
        )
        attrs = span.attributes
        attrs.add(key="gen_ai.operation.name").value.string_value = "chat"
        attrs.add(key="gen_ai.provider.name").value.string_value = "openai"
        attrs.add(key="gen_ai.request.model").value.string_value = "gpt-4o-mini"
        attrs.add(key="gen_ai.usage.input_tokens").value.int_value = 120
        attrs.add(key="gen_ai.usage.output_tokens").value.int_value = 40
        for index in range(extra_attributes):
            attrs.add(key=f"soak.extra.{index}").value.int_value = index
    return traces


def build_logs_request(record_ids: list[bytes]) -> LogsData:
    """One OTLP logs request: a GenAI content event per id, its id in ``soak.id``."""
    logs = LogsData()
    resource_logs = logs.resource_logs.add()
    resource_logs.resource.attributes.add(key="service.name").value.string_value = "soak"
    scope_logs = resource_logs.scope_logs.add()
    scope_logs.scope.name = "benchmarks.soak"
    now = time.time_ns()
    trace_id = os.urandom(16)
    for record_id in record_ids:
        record = scope_logs.log_records.add(
            time_unix_nano=now,
            observed_time_unix_nano=now,
            severity_number=SeverityNumber.SEVERITY_NUMBER_INFO,
            trace_id=trace_id,
            span_id=record_id,
            event_name="gen_ai.client.inference.operation.details",
        )
        record.body.string_value = "soak"
        record.attributes.add(key=SOAK_ID).value.string_value = record_id.hex()
        record.attributes.add(key="gen_ai.operation.name").value.string_value = "chat"
    return logs


def build_metrics_request(point_ids: list[bytes]) -> MetricsData:
    """One OTLP metrics request: a token counter with a data point per id, its id in ``soak.id``."""
    metrics = MetricsData()
    resource_metrics = metrics.resource_metrics.add()
    resource_metrics.resource.attributes.add(key="service.name").value.string_value = "soak"
    metric = resource_metrics.scope_metrics.add().metrics.add(name="gen_ai.client.inference.usage.input_tokens")
    metric.sum.aggregation_temporality = AggregationTemporality.AGGREGATION_TEMPORALITY_DELTA
    metric.sum.is_monotonic = True
    now = time.time_ns()
    for point_id in point_ids:
        point = metric.sum.data_points.add(start_time_unix_nano=now - 1_000_000_000, time_unix_nano=now, as_int=120)
        point.attributes.add(key=SOAK_ID).value.string_value = point_id.hex()
    return metrics


REQUEST_BUILDERS: dict[str, Callable[[list[bytes]], Message]] = {
    "traces": build_request,
    "logs": build_logs_request,
    "metrics": build_metrics_request,
}


def soak_ids(data: Message) -> list[str]:
    """The ``soak.id`` of every log record or data point of a logs or metrics request."""
    if isinstance(data, LogsData):
        items: Iterable[Any] = (r for rl in data.resource_logs for sl in rl.scope_logs for r in sl.log_records)
    else:
        assert isinstance(data, MetricsData)
        items = (
            point
            for rm in data.resource_metrics
            for sm in rm.scope_metrics
            for metric in sm.metrics
            for point in getattr(metric, metric.WhichOneof("data") or "gauge").data_points
        )
    return [kv.value.string_value for item in items for kv in item.attributes if kv.key == SOAK_ID]


# --- what the clients saw ------------------------------------------------------------------------------------


@dataclass
class Tally:
    """What the clients sent and what the collector answered; shared by client threads."""

    sent: set[str] = field(default_factory=set)
    acknowledged: set[str] = field(default_factory=set)
    rejected: set[str] = field(default_factory=set)  # spans a partial success refused, or in refused requests
    answers: Counter[str] = field(default_factory=Counter)
    requests: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def offer(self, ids: Iterable[str]) -> None:
        with self.lock:
            self.sent.update(ids)

    def answer(self, label: str) -> None:
        with self.lock:
            self.answers[label] += 1
            self.requests += 1


def _retry_after(response: httpx.Response, attempt: int) -> float:
    value = response.headers.get("Retry-After")
    if value is not None:
        try:
            return max(0.0, float(value))
        except ValueError:
            pass
    return min(BACKOFF_SECONDS[1], BACKOFF_SECONDS[0] * 2**attempt)


def otlp_post(
    client: httpx.Client,
    url: str,
    body: bytes,
    tally: Tally,
    headers: dict[str, str] | None = None,
    give_up: threading.Event | None = None,
    label: str = "",
) -> httpx.Response | None:
    """POST as an OTLP exporter does: retry 429, 502, 503 and 504 after Retry-After (or a backoff), and
    connection failures after a backoff; every answer is counted by status. None when the collector is gone
    and ``give_up`` is set, or the retries ran out."""
    sent_headers = {"Content-Type": PROTOBUF, **(headers or {})}
    deadline = time.monotonic() + RETRY_FOR_SECONDS
    for attempt in itertools.count():
        try:
            response = client.post(url, content=body, headers=sent_headers)
        except httpx.TransportError as exc:
            tally.answer(f"{label}{type(exc).__name__}")
            if give_up is not None and give_up.is_set():
                return None
            wait = min(BACKOFF_SECONDS[1], BACKOFF_SECONDS[0] * 2**attempt)
        else:
            tally.answer(f"{label}{response.status_code}")
            if response.status_code not in (429, 502, 503, 504):
                return response
            wait = _retry_after(response, attempt)
        if time.monotonic() + wait > deadline:
            return None
        time.sleep(wait)
    return None


def _hex(ids: Iterable[bytes]) -> list[str]:
    return [span_id.hex() for span_id in ids]


def send_valid(
    client: httpx.Client,
    url: str,
    ids: UniqueIds,
    tally: Tally,
    spans: int,
    give_up: threading.Event | None = None,
    extra_attributes: int = 0,
    signal: str = "traces",
) -> None:
    """One request of ``spans`` fresh spans (log records, data points: ``signal``'s items), retried until
    answered; acknowledged ids recorded on 2xx."""
    span_ids = ids.take(spans)
    names = _hex(span_ids)
    tally.offer(names)
    request = build_request(span_ids, extra_attributes) if signal == "traces" else REQUEST_BUILDERS[signal](span_ids)
    response = otlp_post(client, url, request.SerializeToString(), tally, None, give_up)
    if response is not None and 200 <= response.status_code < 300:
        with tally.lock:
            tally.acknowledged.update(names)


class Load:
    """``workers`` client threads sending requests of ``spans`` fresh spans until stopped.

    With ``rate`` (spans/s, all workers together) requests are paced; without, each worker sends as fast as
    the collector answers. While ``paused`` is set (the collector is being killed) a worker gives up a request at
    its first connection failure and waits until ``resume``.
    """

    def __init__(self, url: Callable[[], str], tally: Tally, ids: UniqueIds, workers: int, spans: int,
                 rate: float | None = None, signal: str = "traces") -> None:  # fmt: skip
        self.url, self.tally, self.ids, self.spans, self.rate = url, tally, ids, spans, rate
        self.signal = signal
        self.stop = threading.Event()
        self.paused = threading.Event()  # set: workers wait (the collector is down on purpose)
        self.idle = threading.Semaphore(0)
        self.workers = workers
        self.threads = [threading.Thread(target=self._run, args=(n,), daemon=True) for n in range(workers)]

    def start(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def _run(self, number: int) -> None:
        interval = self.spans * self.workers / self.rate if self.rate else 0.0
        next_send = time.monotonic() + interval * number / self.workers
        with httpx.Client(timeout=CLIENT_TIMEOUT_SECONDS) as client:
            while not self.stop.is_set():
                if self.paused.is_set():
                    self.idle.release()
                    while self.paused.is_set() and not self.stop.is_set():
                        time.sleep(0.01)
                    next_send = time.monotonic()
                    continue
                if interval:
                    delay = next_send - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                    next_send = max(next_send + interval, time.monotonic() - interval)
                send_valid(
                    client, self.url(), self.ids, self.tally, self.spans, give_up=self.paused, signal=self.signal
                )

    def pause(self) -> None:
        """Workers finish (or give up) their request and wait; returns once all of them do."""
        self.paused.set()
        for _ in self.threads:
            self.idle.acquire()

    def resume(self) -> None:
        self.paused.clear()

    def finish(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(RETRY_FOR_SECONDS + 30)


# --- processes ------------------------------------------------------------------------------------------------


class Collector(ingest.Collector):  # type: ignore[name-defined,misc]
    """``genai-collector run`` with the given pipeline config, its log appended to ``log``."""

    def __init__(self, work: Path, body: str, log: Path) -> None:
        self.http_port, self.admin_port = ingest._free_port(), ingest._free_port()
        self.proxy_port = ingest._free_port()
        self.token_file = work / "data" / "admin-token"  # the admin extension's default, from cwd=work
        config = work / "collector.yaml"
        config.write_text(
            body.format(http=self.http_port, proxy=self.proxy_port, work=work).replace(
                "service:\n", "service:\n  extensions: [admin]\n"
            )
            + f"""
extensions:
  admin: {{endpoint: "127.0.0.1:{self.admin_port}"}}
"""
        )
        self.log = log
        with log.open("a") as stderr:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "collector", "run", "--config", str(config)],
                cwd=work,
                stderr=stderr,
                stdout=subprocess.DEVNULL,
            )
        try:
            self._wait_healthy()
        except BaseException:
            self.kill()
            raise

    @property
    def url(self) -> str:
        return self.signal_url("traces")

    def signal_url(self, signal: str) -> str:
        return f"http://127.0.0.1:{self.http_port}{SIGNAL_PATHS[signal]}"

    def metric(self, name: str) -> float:
        text = self.admin_get("/metrics").text
        return sum(float(v) for v in re.findall(rf"^{name}(?:{{[^}}]*}})? (\S+)$", text, re.M))

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(30)

    def drain(self) -> int:
        """SIGTERM, and wait for the queue to drain into the store; the exit status."""
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(DRAIN_SECONDS)
        except subprocess.TimeoutExpired:
            self.kill()
            raise RuntimeError(f"the collector did not drain within {DRAIN_SECONDS:.0f}s") from None


class Child:
    """This script, run as one of the servers (``--serve-*``), in its own process."""

    def __init__(self, args: list[str], port: int, log: Path, ready_path: str = "/") -> None:
        self.port = port
        with log.open("a") as stderr:
            self.process = subprocess.Popen(
                [sys.executable, __file__, *args], cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=stderr
            )
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{args[0]} exited with status {self.process.returncode}; see {log}")
            try:
                httpx.get(f"{self.url}{ready_path}", timeout=1)
                return
            except httpx.TransportError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{args[0]} did not start")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(30)


def start_clickhouse(port: int, data: Path, log: Path, insert_delay: float = 0.0, stall_inserts: int = 0) -> Child:
    args = ["--serve-clickhouse", str(port), "--data", str(data)]
    args += ["--insert-delay", str(insert_delay), "--stall-inserts", str(stall_inserts)]
    return Child(args, port, log, "/ping")


def clickhouse_rows(server: Child, sql: str) -> list[list[str]]:
    answer = httpx.get(server.url, params={"query": f"{sql} FORMAT TabSeparated"}, timeout=120)
    answer.raise_for_status()
    return [line.split("\t") for line in answer.text.splitlines() if line]


def chdb_rows(store: Path, sql: str) -> list[list[str]]:
    """Rows of ``sql`` from a chDB store, read in a child process (one chDB directory per process)."""
    result = subprocess.run(
        [sys.executable, __file__, "--query-store", str(store), "--sql", sql],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return [line.split("\t") for line in result.stdout.splitlines() if line]


STORED_SQL = "SELECT SpanId, count() FROM otel_traces GROUP BY SpanId"


# --- results --------------------------------------------------------------------------------------------------


@dataclass
class Result:
    scenario: str
    sent: int = 0
    acknowledged: int = 0
    stored: int = 0
    lost: int = 0
    duplicated: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.lost == 0 and self.duplicated == 0 and not self.failures


def count_spans(result: Result, tally: Tally, rows: list[list[str]]) -> None:
    """Fill the figures from what the clients saw and the store's (SpanId, count) rows."""
    stored = {row[0]: int(row[1]) for row in rows}
    result.sent = len(tally.sent)
    result.acknowledged = len(tally.acknowledged)
    result.stored = len(stored)
    result.lost = len(tally.acknowledged - stored.keys())
    result.duplicated = sum(1 for count in stored.values() if count > 1)
    stray = stored.keys() - tally.sent
    if stray:
        result.failures.append(f"{len(stray)} stored spans were never sent as valid spans")
    rejected_stored = stored.keys() & tally.rejected
    if rejected_stored:
        result.failures.append(f"{len(rejected_stored)} spans the collector refused were stored")
    answers = ", ".join(f"{label}: {count}" for label, count in sorted(tally.answers.items()))
    result.notes.append(f"{tally.requests} answers ({answers})")
    if result.lost:
        sample = sorted(tally.acknowledged - stored.keys())[:5]
        result.notes.append(f"lost span ids, first: {', '.join(sample)}")


def log_summary(result: Result, log: Path) -> None:
    """Count the collector's warnings and errors; quote the first few distinct ones."""
    if not log.exists():
        return
    lines = log.read_text(errors="replace").splitlines()
    flagged = [line for line in lines if re.search(r"\b(ERROR|CRITICAL|Traceback|WARNING)\b", line)]
    if flagged:
        distinct = list(dict.fromkeys(re.sub(r"\d+", "N", line)[:160] for line in flagged))
        result.notes.append(f"log ({log.name}): {len(flagged)} warning/error lines; distinct, first 4:")
        result.notes.extend(f"    {line}" for line in distinct[:4])


# --- scenarios ------------------------------------------------------------------------------------------------

CHDB_PIPELINE = """
receivers:
  otlp:
    protocols:
      http: {{endpoint: "127.0.0.1:{http}"}}
exporters:
  clickhouse:
    endpoint: chdb://{work}/clickhouse
    sending_queue:
      directory: {work}/queue
      batch: {{flush_timeout: 100ms, min_size: 2000}}
service:
  pipelines:
    traces: {{receivers: [otlp], exporters: [clickhouse]}}
"""


def scenario_kill(args: argparse.Namespace, work: Path) -> Result:
    """Kill -9 at random moments under load, restart on the same directories, drain, count."""
    result = Result("1 kill -9 under load")
    tally, ids, log = Tally(), UniqueIds(), work / "collector.log"
    collector = Collector(work, CHDB_PIPELINE, log)
    load = Load(lambda: collector.url, tally, ids, workers=args.workers, spans=SPANS_PER_REQUEST).start()
    try:
        for kill in range(args.kills):
            time.sleep(random.uniform(0.5, 1.0) * args.kill_after)
            load.paused.set()  # workers stop at their next connection failure instead of retrying
            collector.kill()
            load.pause()
            result.notes.append(f"kill {kill + 1}: {len(tally.acknowledged)} spans acknowledged so far")
            collector = Collector(work, CHDB_PIPELINE, log)  # same directories, new ports
            load.resume()
        time.sleep(args.kill_after / 2)
    finally:
        load.finish()
    status = collector.drain()
    if status != 0:
        result.failures.append(f"the collector exited with status {status} on SIGTERM")
    count_spans(result, tally, chdb_rows(work / "clickhouse", STORED_SQL))
    log_summary(result, log)
    return result


WORKERS_PIPELINE = """
receivers:
  otlp:
    protocols:
      http: {{endpoint: "127.0.0.1:{http}"}}
processors:
  genai_normalize:
  genai_cost:
  genai_security:
  genai_loop_detection:
exporters:
  clickhouse:
    endpoint: chdb://{work}/clickhouse
    sending_queue:
      directory: {work}/queue
      batch: {{flush_timeout: 100ms, min_size: 2000}}
service:
  workers: 2
  pipelines:
    traces: {{receivers: [otlp], processors: [genai_normalize, genai_cost, genai_security, genai_loop_detection],
              exporters: [clickhouse]}}
"""


def worker_pids(collector_pid: int) -> list[int]:
    """The collector's worker processes: the children of its fork server (its child that forks them)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue  # gone meanwhile
    servers = {pid for pid, parent in parents.items() if parent == collector_pid}
    return sorted(pid for pid, parent in parents.items() if parent in servers)


def scenario_kill_workers(args: argparse.Namespace, work: Path) -> Result:
    """Kill -9 a worker process at random moments under load; the collector restarts it; drain, count."""
    result = Result("6 worker kill -9 under load")
    tally, ids, log = Tally(), UniqueIds(), work / "collector.log"
    collector = Collector(work, WORKERS_PIPELINE, log)
    load = Load(lambda: collector.url, tally, ids, workers=args.workers, spans=SPANS_PER_REQUEST).start()
    killed = 0
    try:
        for kill in range(args.kills):
            time.sleep(random.uniform(0.5, 1.0) * args.kill_after)
            workers = worker_pids(collector.process.pid)
            if len(workers) != 2:
                result.failures.append(f"kill {kill + 1}: {len(workers)} worker processes, not 2")
                continue
            os.kill(random.choice(workers), signal.SIGKILL)
            killed += 1
            result.notes.append(f"kill {kill + 1}: {len(tally.acknowledged)} spans acknowledged so far")
        time.sleep(args.kill_after / 2)
        restarts = collector.metric("genai_collector_worker_restarts_total")
        if restarts != killed:
            result.failures.append(f"{killed} workers killed, {restarts:.0f} restarts counted")
    finally:
        load.finish()
    status = collector.drain()
    if status != 0:
        result.failures.append(f"the collector exited with status {status} on SIGTERM")
    count_spans(result, tally, chdb_rows(work / "clickhouse", STORED_SQL))
    log_summary(result, log)
    return result


def _http_pipeline(clickhouse_port: int, queue_size: int = 200_000, max_size: int = 32768) -> str:
    return f"""
receivers:
  otlp:
    protocols:
      http: {{{{endpoint: "127.0.0.1:{{http}}"}}}}
exporters:
  clickhouse:
    endpoint: http://127.0.0.1:{clickhouse_port}
    timeout: 2s
    sending_queue:
      directory: {{work}}/queue
      queue_size: {queue_size}
      batch: {{{{flush_timeout: 100ms, min_size: {min(2000, max_size)}, max_size: {max_size}}}}}
    retry_on_failure: {{{FAST_RETRY}}}
service:
  pipelines:
    traces: {{{{receivers: [otlp], exporters: [clickhouse]}}}}
"""


def scenario_backend_down(args: argparse.Namespace, work: Path) -> Result:
    """The ClickHouse server stops for ``--down-seconds`` while clients send at ``--rate``; it comes back."""
    result = Result("2 backend down")
    tally, ids, log, server_log = Tally(), UniqueIds(), work / "collector.log", work / "clickhouse.log"
    port = ingest._free_port()
    server = start_clickhouse(port, work / "clickhouse", server_log)
    collector = Collector(work, _http_pipeline(port), log)
    spans = max(1, min(SPANS_PER_REQUEST, int(args.rate // 10)))
    load = Load(lambda: collector.url, tally, ids, workers=args.workers, spans=spans, rate=args.rate).start()
    try:
        time.sleep(args.up_seconds)
        server.stop()
        before = len(tally.acknowledged)
        time.sleep(args.down_seconds)
        while_down = len(tally.acknowledged) - before
        rate = while_down / args.down_seconds
        result.notes.append(f"{while_down} spans acknowledged while the server was down ({rate:,.0f} spans/s)")
        server = start_clickhouse(port, work / "clickhouse", server_log)
        time.sleep(args.up_seconds)
    finally:
        load.finish()
    try:
        status = collector.drain()
        if status != 0:
            result.failures.append(f"the collector exited with status {status} on SIGTERM")
        count_spans(result, tally, clickhouse_rows(server, STORED_SQL))
    finally:
        server.stop()
    log_summary(result, log)
    return result


def scenario_slow_backend(args: argparse.Namespace, work: Path) -> Result:
    """A server slower than the load: the queue fills, clients get 503 + Retry-After and retry."""
    result = Result("3 backend slower than load")
    tally, ids, log, server_log = Tally(), UniqueIds(), work / "collector.log", work / "clickhouse.log"
    port = ingest._free_port()
    server = start_clickhouse(port, work / "clickhouse", server_log, args.insert_delay, stall_inserts=2)
    collector = Collector(work, _http_pipeline(port, queue_size=5000, max_size=1000), log)
    load = Load(lambda: collector.url, tally, ids, workers=args.workers, spans=500).start()
    try:
        time.sleep(args.duration)
    finally:
        load.finish()
    try:
        status = collector.drain()
        if status != 0:
            result.failures.append(f"the collector exited with status {status} on SIGTERM")
        count_spans(result, tally, clickhouse_rows(server, STORED_SQL))
    finally:
        server.stop()
    pushed_back = sum(count for label, count in tally.answers.items() if label in ("429", "503"))
    if not pushed_back:
        result.failures.append("no 429/503 answer: the load never outran the server (raise --insert-delay)")
    log_summary(result, log)
    return result


def _gzip_bomb() -> bytes:
    return gzip.compress(b"\0" * GZIP_BOMB_BYTES, compresslevel=9)  # about 64 KiB


def scenario_hostile_input(args: argparse.Namespace, work: Path) -> Result:
    """Bad requests of every kind between valid ones: 4xx for each, the valid spans stored once."""
    result = Result("4 malformed/oversized input")
    tally, bad_tally, ids, log = Tally(), Tally(), UniqueIds(), work / "collector.log"
    pipeline = CHDB_PIPELINE.replace(
        "receivers:\n  otlp:\n",
        "receivers:\n  otlp:\n    limits: {{max_spans_per_request: "
        f"{MAX_SPANS_PER_REQUEST}, max_attributes_per_span: {MAX_ATTRIBUTES_PER_SPAN}}}}}\n",
    )
    collector = Collector(work, pipeline, log)
    bomb = _gzip_bomb()
    valid_json = json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [{"name": "x"}]}]}]})
    bad_kinds: dict[str, tuple[bytes, dict[str, str], int]] = {
        "garbage protobuf": (b"\xff" * 32 + os.urandom(512), {}, 400),
        "truncated JSON": (b'{"resourceSpans": [{"scopeSpans": [', {"Content-Type": "application/json"}, 400),
        "JSON of the wrong shape": (b'{"resourceSpans": "none"}', {"Content-Type": "application/json"}, 400),
        "gzip bomb": (bomb, {"Content-Encoding": "gzip"}, 413),
        "unsupported content type": (valid_json.encode(), {"Content-Type": "text/plain"}, 415),
    }
    expected: Counter[str] = Counter()
    unexpected: Counter[str] = Counter()
    partial_ok = 0
    load = Load(lambda: collector.url, tally, ids, workers=max(1, args.workers - 1), spans=SPANS_PER_REQUEST).start()
    deadline = time.monotonic() + args.duration
    try:
        with httpx.Client(timeout=CLIENT_TIMEOUT_SECONDS) as client:
            while time.monotonic() < deadline:
                for kind, (body, headers, status) in bad_kinds.items():
                    answer = otlp_post(client, collector.url, body, bad_tally, headers, label=f"{kind}: ")
                    got = answer.status_code if answer is not None else None
                    (expected if got == status else unexpected)[f"{kind} -> {got}"] += 1
                # Over max_spans_per_request: refused whole, none of its spans may be stored.
                too_many = ids.take(MAX_SPANS_PER_REQUEST + 1)
                tally.rejected.update(_hex(too_many))
                answer = otlp_post(
                    client, collector.url, build_request(too_many).SerializeToString(), bad_tally, label="too many: "
                )
                got = answer.status_code if answer is not None else None
                (expected if got == 413 else unexpected)[f"too many spans -> {got}"] += 1
                # Valid spans with one over max_attributes_per_span: 200, partial success, that span alone refused.
                valid, over = ids.take(10), ids.take(1)
                traces = build_request(valid)
                traces.MergeFrom(build_request(over, extra_attributes=MAX_ATTRIBUTES_PER_SPAN))
                tally.offer(_hex(valid))
                tally.rejected.update(_hex(over))
                answer = otlp_post(client, collector.url, traces.SerializeToString(), bad_tally, label="over limit: ")
                if answer is not None and answer.status_code == 200:
                    partial = ExportTraceServiceResponse.FromString(answer.content).partial_success
                    if partial.rejected_spans == 1 and "max_attributes_per_span" in partial.error_message:
                        partial_ok += 1
                        with tally.lock:
                            tally.acknowledged.update(_hex(valid))
                    else:
                        unexpected[f"over attribute limit -> 200 rejecting {partial.rejected_spans}"] += 1
                else:
                    unexpected[f"over attribute limit -> {answer.status_code if answer else None}"] += 1
                time.sleep(0.05)
    finally:
        load.finish()
    status = collector.drain()
    if status != 0:
        result.failures.append(f"the collector exited with status {status} on SIGTERM")
    count_spans(result, tally, chdb_rows(work / "clickhouse", STORED_SQL))
    shown = ", ".join(f"{k}: {v}" for k, v in sorted(expected.items()))
    result.notes.append(f"bad requests answered as expected ({shown}); over attribute limit -> 200 partial: "
                        f"{partial_ok}")  # fmt: skip
    if unexpected:
        result.failures.append("unexpected answers: " + ", ".join(f"{k}: {v}" for k, v in unexpected.items()))
    # A 5xx or a broken connection is never the answer to a client's mistake.
    wrong = [label for label in bad_tally.answers if not re.search(r": (4\d\d|200)$", label)]
    if wrong:
        result.failures.append(f"bad requests answered neither 4xx nor 200 partial success: {', '.join(wrong)}")
    log_summary(result, log)
    return result


PROXY_PIPELINE = """
receivers:
  genai_proxy:
    endpoint: 127.0.0.1:{proxy}
    auth: {{keys_file: {work}/no-keys.json}}
    upstreams:
      - {{name: mock, kind: openai, base_url: "UPSTREAM/v1", models: ["gpt-*"]}}
exporters:
  clickhouse:
    endpoint: chdb://{work}/clickhouse
    sending_queue:
      directory: {work}/queue
      batch: {{flush_timeout: 100ms}}
service:
  pipelines:
    traces: {{receivers: [genai_proxy], exporters: [clickhouse]}}
"""
# How each call ends: (name, mock scenario, what the client does).
PROXY_CALLS = (
    ("completed", "", "read"),
    ("client left mid-stream", "slow", "leave"),
    ("client left before the first token", "stall_headers", "timeout"),
    ("upstream dropped the stream", "drop", "read"),
)


def scenario_proxy_disconnects(args: argparse.Namespace, work: Path) -> Result:
    """Streamed chat calls through the proxy, most of them cut short; one stored span per call."""
    result = Result("5 proxy client disconnects")
    log = work / "collector.log"
    mock_port = ingest._free_port()
    mock = Child(["--serve-mock", str(mock_port)], mock_port, work / "mock.log", "/v1/models")
    calls: dict[str, str] = {}  # trace id -> how the call ended
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()
    try:
        collector = Collector(work, PROXY_PIPELINE.replace("UPSTREAM", mock.url), log)
        proxy_url = f"http://127.0.0.1:{collector.proxy_port}{CHAT_PATH}"
        stop = threading.Event()
        turn = itertools.count()

        def caller() -> None:
            with httpx.Client(timeout=httpx.Timeout(CLIENT_TIMEOUT_SECONDS)) as client:
                while not stop.is_set():
                    name, scenario, action = PROXY_CALLS[next(turn) % len(PROXY_CALLS)]
                    trace_id = os.urandom(16).hex()
                    headers = {
                        "Authorization": "Bearer sk-soak",
                        "traceparent": f"00-{trace_id}-{os.urandom(8).hex()}-01",
                    }
                    if scenario:
                        headers["x-mock-scenario"] = scenario
                    prompt = f"count to twenty, call {trace_id[:8]}"
                    body = {"model": "gpt-4o-mini", "stream": True, "messages": [{"role": "user", "content": prompt}]}
                    with lock:
                        calls[trace_id] = name
                    outcome = _proxy_call(client, proxy_url, body, headers, action)
                    with lock:
                        outcomes[f"{name}: {outcome}"] += 1

        threads = [threading.Thread(target=caller, daemon=True) for _ in range(args.workers * 2)]
        for thread in threads:
            thread.start()
        time.sleep(args.duration)
        stop.set()
        for thread in threads:
            thread.join(CLIENT_TIMEOUT_SECONDS + 10)
        # Every call's span goes to the pipeline or is counted as dropped; wait for the count to settle.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            settled = collector.metric("genai_proxy_spans_sent_total") + collector.metric(
                "genai_proxy_spans_dropped_total"
            )
            if settled >= len(calls):
                break
            time.sleep(0.1)
        acknowledged = int(collector.metric("genai_proxy_spans_sent_total"))
        dropped = int(collector.metric("genai_proxy_spans_dropped_total"))
        status = collector.drain()
        if status != 0:
            result.failures.append(f"the collector exited with status {status} on SIGTERM")
    finally:
        mock.stop()
    rows = chdb_rows(
        work / "clickhouse",
        "SELECT TraceId, SpanId, count(), any(SpanAttributes['error.type']) FROM otel_traces GROUP BY TraceId, SpanId",
    )
    ours = [row for row in rows if row[0] in calls]
    per_call = Counter(row[0] for row in ours)
    result.sent = len(calls)
    result.acknowledged = acknowledged
    result.stored = len(ours)
    result.lost = max(0, acknowledged - len({row[1] for row in ours}))
    result.duplicated = sum(1 for row in ours if int(row[2]) > 1) + sum(1 for n in per_call.values() if n > 1)
    missing = Counter(calls[t] for t in calls.keys() - per_call.keys())
    result.notes.append("calls: " + ", ".join(f"{k}: {v}" for k, v in sorted(outcomes.items())))
    result.notes.append(f"proxy spans dropped (genai_proxy_spans_dropped_total): {dropped}")
    error_types = Counter(row[3] or "none" for row in ours)
    result.notes.append("stored spans by error.type: " + ", ".join(f"{k}: {v}" for k, v in sorted(error_types.items())))
    if missing:
        result.notes.append("calls without a stored span: " + ", ".join(f"{k}: {v}" for k, v in missing.items()))
    if len(rows) != len(ours):
        result.failures.append(f"{len(rows) - len(ours)} stored spans belong to no call made")
    if acknowledged + dropped != len(calls):
        result.failures.append(f"{len(calls)} calls but {acknowledged} spans sent + {dropped} dropped")
    log_summary(result, log)
    return result


def _proxy_call(client: httpx.Client, url: str, body: dict[str, Any], headers: dict[str, str], action: str) -> str:
    """Make one streamed call; leave early when ``action`` says so. What the client saw, in a word or two."""
    try:
        if action == "timeout":
            client.post(url, json=body, headers=headers, timeout=0.3)
            return "answered"
        with client.stream("POST", url, json=body, headers=headers) as response:
            if response.status_code != 200:
                return f"status {response.status_code}"
            events = 0
            for line in response.iter_lines():
                if line.startswith("data: "):
                    events += 1
                    if action == "leave" and events == 2:
                        return "left"  # closing the response drops the connection mid-stream
            return "complete"
    except httpx.TimeoutException:
        return "left"
    except httpx.TransportError as exc:
        return type(exc).__name__


# --- scenarios 7 and 8: logs and metrics, through the otlphttp exporter to the test store -----------------------

OTHER_SIGNALS = ("logs", "metrics")
# Each item's soak.id, counted in the store's tables (the clickhouse exporter's logs and metrics).
SIGNAL_STORED_SQL = {
    "logs": f"SELECT LogAttributes['{SOAK_ID}'], count() FROM otel_logs GROUP BY 1",
    "metrics": f"SELECT Attributes['{SOAK_ID}'], count() FROM otel_metrics_sum GROUP BY 1",
}


def _store_takes_signals(choice: str) -> bool:
    """Whether scenarios 7 and 8 write through the clickhouse exporter (``--signals-store``; auto: when it can)."""
    if choice != "auto":
        return choice == "clickhouse"
    from exporters.clickhouse import factory

    return all(factory.supports(kind) for kind in OTHER_SIGNALS)  # type: ignore[arg-type]


def _signals_pipeline(exporter: str) -> str:
    """Logs and metrics pipelines from OTLP/HTTP into ``exporter`` (its YAML block, already formatted)."""
    return f"""
receivers:
  otlp:
    protocols:
      http: {{{{endpoint: "127.0.0.1:{{http}}"}}}}
exporters:
{exporter}
service:
  pipelines:
    logs: {{{{receivers: [otlp], exporters: [{exporter.split(":", 1)[0].strip()}]}}}}
    metrics: {{{{receivers: [otlp], exporters: [{exporter.split(":", 1)[0].strip()}]}}}}
"""


def _queued_exporter(name: str, endpoint: str) -> str:
    return f"""  {name}:
    endpoint: {endpoint}
    timeout: 2s
    sending_queue:
      directory: {{work}}/queue
      batch: {{{{flush_timeout: 100ms, min_size: 2000}}}}
    retry_on_failure: {{{FAST_RETRY}}}"""


def start_sink(port: int, data: Path, log: Path) -> Child:
    return Child(["--serve-otlp-sink", str(port), "--data", str(data)], port, log)


def sink_rows(data: Path, signal: str) -> list[list[str]]:
    """(soak.id, times stored) of every ``signal`` item the test store kept."""
    path = data / f"{signal}.ids"
    counts = Counter(path.read_text().split()) if path.exists() else Counter()
    return [[item, str(count)] for item, count in counts.items()]


def _signal_loads(collector: Callable[[], Collector], tallies: dict[str, Tally], workers: int,
                  rate: float | None = None) -> list[Load]:  # fmt: skip
    """A load per signal, the workers shared out, each signal with ids of its own."""
    per_signal = max(1, workers // len(OTHER_SIGNALS))
    items = ITEMS_PER_REQUEST if rate is None else max(1, min(ITEMS_PER_REQUEST, int(rate // 10)))
    return [
        Load(lambda kind=kind: collector().signal_url(kind), tallies[kind], UniqueIds(), per_signal, items,
             rate / len(OTHER_SIGNALS) if rate else None, signal=kind).start()
        for kind in OTHER_SIGNALS
    ]  # fmt: skip


def _count_signals(
    name: str,
    tallies: dict[str, Tally],
    rows: dict[str, list[list[str]]],
    sink_data: Path,
    notes: list[str],
    failures: list[str],
    log: Path,
) -> list[Result]:
    """A row per signal from what its clients saw and the (soak.id, count) rows stored."""
    results = []
    absorbed_path = sink_data / "absorbed"
    absorbed = Counter(absorbed_path.read_text().split()) if absorbed_path.exists() else Counter()
    for kind in OTHER_SIGNALS:
        result = Result(f"{name} ({kind})")
        result.notes.extend(notes)
        if sink_data.exists():
            result.notes.append(f"{absorbed[SIGNAL_PATHS[kind]]} requests sent again with the same body, absorbed")
        result.failures.extend(failures)
        count_spans(result, tallies[kind], rows[kind])
        log_summary(result, log)
        results.append(result)
    return results


def scenario_signals_kill(args: argparse.Namespace, work: Path) -> list[Result]:
    """Scenario 1 for logs and metrics: kill -9 under load, restart, drain into the store, count per signal."""
    tallies, log, sink_log = {kind: Tally() for kind in OTHER_SIGNALS}, work / "collector.log", work / "sink.log"
    in_store = _store_takes_signals(args.signals_store)
    port = ingest._free_port()
    sink = None if in_store else start_sink(port, work / "store", sink_log)
    exporter = (
        _queued_exporter("clickhouse", f"chdb://{work}/clickhouse")
        if in_store
        else _queued_exporter("otlphttp", f"http://127.0.0.1:{port}")
    )
    notes = [f"written through the {'clickhouse exporter (chDB)' if in_store else 'otlphttp exporter, test store'}"]
    failures: list[str] = []
    try:
        collector = Collector(work, _signals_pipeline(exporter), log)
        loads = _signal_loads(lambda: collector, tallies, args.workers)
        try:
            for kill in range(args.kills):
                time.sleep(random.uniform(0.5, 1.0) * args.kill_after)
                for load in loads:
                    load.paused.set()
                collector.kill()
                for load in loads:
                    load.pause()
                so_far = ", ".join(f"{len(tallies[s].acknowledged)} {s}" for s in OTHER_SIGNALS)
                notes.append(f"kill {kill + 1}: {so_far} items acknowledged so far")
                collector = Collector(work, _signals_pipeline(exporter), log)
                for load in loads:
                    load.resume()
            time.sleep(args.kill_after / 2)
        finally:
            for load in loads:
                load.finish()
        status = collector.drain()
        if status != 0:
            failures.append(f"the collector exited with status {status} on SIGTERM")
        if in_store:
            rows = {kind: chdb_rows(work / "clickhouse", SIGNAL_STORED_SQL[kind]) for kind in OTHER_SIGNALS}
        else:
            rows = {kind: sink_rows(work / "store", kind) for kind in OTHER_SIGNALS}
    finally:
        if sink is not None:
            sink.stop()
    return _count_signals("7 kill -9 under load", tallies, rows, work / "store", notes, failures, log)


def scenario_signals_backend_down(args: argparse.Namespace, work: Path) -> list[Result]:
    """Scenario 2 for logs and metrics: the store stops for ``--down-seconds`` and comes back."""
    tallies, log, server_log = {kind: Tally() for kind in OTHER_SIGNALS}, work / "collector.log", work / "server.log"
    in_store = _store_takes_signals(args.signals_store)
    port = ingest._free_port()

    def start() -> Child:
        if in_store:
            return start_clickhouse(port, work / "clickhouse", server_log)
        return start_sink(port, work / "store", server_log)

    exporter = _queued_exporter("clickhouse" if in_store else "otlphttp", f"http://127.0.0.1:{port}")
    server = start()
    through = "clickhouse exporter (ClickHouse server)" if in_store else "otlphttp exporter, test store"
    notes = [f"written through the {through}"]
    failures: list[str] = []
    try:
        collector = Collector(work, _signals_pipeline(exporter), log)
        loads = _signal_loads(lambda: collector, tallies, args.workers, rate=args.rate)
        try:
            time.sleep(args.up_seconds)
            server.stop()
            before = {kind: len(tallies[kind].acknowledged) for kind in OTHER_SIGNALS}
            time.sleep(args.down_seconds)
            during = ", ".join(f"{len(tallies[s].acknowledged) - before[s]} {s}" for s in OTHER_SIGNALS)
            notes.append(f"items acknowledged while the store was down: {during}")
            server = start()
            time.sleep(args.up_seconds)
        finally:
            for load in loads:
                load.finish()
        status = collector.drain()
        if status != 0:
            failures.append(f"the collector exited with status {status} on SIGTERM")
        if in_store:
            rows = {kind: clickhouse_rows(server, SIGNAL_STORED_SQL[kind]) for kind in OTHER_SIGNALS}
        else:
            rows = {kind: sink_rows(work / "store", kind) for kind in OTHER_SIGNALS}
    finally:
        server.stop()
    return _count_signals("8 backend down", tallies, rows, work / "store", notes, failures, log)


SCENARIOS: dict[int, Callable[[argparse.Namespace, Path], Result | list[Result]]] = {
    1: scenario_kill,
    2: scenario_backend_down,
    3: scenario_slow_backend,
    4: scenario_hostile_input,
    5: scenario_proxy_disconnects,
    6: scenario_kill_workers,
    7: scenario_signals_kill,
    8: scenario_signals_backend_down,
}


# --- the servers, when this file runs as one ------------------------------------------------------------------


def _until_sigterm() -> None:
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    while not stopped.wait(0.5):
        pass


def serve_clickhouse(port: int, data: Path, insert_delay: float, stall_inserts: int) -> None:
    """The chDB-backed ClickHouse stand-in, each insert ``insert_delay`` late; stopped by SIGTERM."""
    from tests.exporters.clickhouse.http_fixture import FakeClickHouse

    class SlowClickHouse(FakeClickHouse):
        def _execute_insert(self, *args: Any, **kwargs: Any) -> Any:
            time.sleep(insert_delay)
            return super()._execute_insert(*args, **kwargs)

    with SlowClickHouse(data, port=port, stall_inserts=stall_inserts):
        _until_sigterm()


def serve_otlp_sink(port: int, data: Path) -> None:
    """The test store of scenarios 7 and 8: OTLP/HTTP logs and metrics in, each item's ``soak.id`` kept on disk.

    A request whose (uncompressed) body it stored already is answered 200 and not stored again, as ClickHouse
    absorbs an insert repeated with its deduplication token; its files survive a restart on the same ``data``.
    """
    import hashlib
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    data.mkdir(parents=True, exist_ok=True)
    bodies_path = data / "bodies"
    seen = set(bodies_path.read_text().split()) if bodies_path.exists() else set()
    lock = threading.Lock()
    types: dict[str, type[Message]] = {"/v1/logs": LogsData, "/v1/metrics": MetricsData}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            data_type = types.get(self.path)
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            if data_type is None:
                self.send_error(404)
                return
            digest = hashlib.sha256(self.path.encode() + body).hexdigest()
            with lock:
                if digest in seen:
                    with (data / "absorbed").open("a") as absorbed:
                        absorbed.write(f"{self.path}\n")
                else:
                    names = soak_ids(data_type.FromString(body))
                    with (data / f"{self.path.rsplit('/', 1)[1]}.ids").open("a") as ids:
                        ids.write("".join(f"{name}\n" for name in names))
                    with bodies_path.open("a") as bodies:
                        bodies.write(f"{digest}\n")
                    seen.add(digest)
            self.send_response(200)
            self.send_header("Content-Type", PROTOBUF)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_GET(self) -> None:  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        _until_sigterm()
    finally:
        server.shutdown()


def serve_mock(port: int) -> None:
    """The mock OpenAI upstream: streams slow enough to leave in the middle, stalls bounded."""
    import asyncio

    from collector.config.types import HostPort
    from collector.httpserver import HttpServer
    from collector.listeners.settings import HttpServerSettings
    from tests.proxy.mock_upstream import MockUpstream, create_app

    async def run() -> None:
        server = HttpServer(
            create_app(MockUpstream(slow_seconds=0.05, stall_seconds=5)),
            HttpServerSettings(endpoint=HostPort("127.0.0.1", port)),
        )
        await server.start()
        stopped = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stopped.set)
        await stopped.wait()

    asyncio.run(run())


def query_store(store: Path, sql: str) -> None:
    """Print the rows of ``sql`` from the chDB store at ``store``, tab-separated.

    Straight through chDB, not the store's query pool: this reads every span id of a stopped collector's
    store, past the result limits that bound what users' queries may return.
    """
    import clickhouse_connect

    client = clickhouse_connect.get_client(dsn=f"chdb://{store}")
    try:
        for row in client.query(sql).result_rows:
            print("\t".join(str(value) for value in row))
    finally:
        client.close()


# --- main -----------------------------------------------------------------------------------------------------


def print_table(results: list[Result]) -> None:
    header = ("scenario", "sent", "acknowledged", "stored", "lost", "duplicated", "seconds")
    rows = [
        (r.scenario, f"{r.sent:,}", f"{r.acknowledged:,}", f"{r.stored:,}", f"{r.lost:,}", f"{r.duplicated:,}",
         f"{r.seconds:.1f}")
        for r in results
    ]  # fmt: skip
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    line = "| " + " | ".join(f"{{:{'<' if i == 0 else '>'}{w}}}" for i, w in enumerate(widths)) + " |"
    print(line.format(*header))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print(line.format(*row))
    print()
    for r in results:
        print(f"{r.scenario}: {'OK' if r.ok else 'FAILED'}")
        for note in r.notes:
            print(f"  {note}")
        for failure in r.failures:
            print(f"  FAILED: {failure}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenarios", default="1,2,3,4,5,6,7,8", help="comma-separated scenario numbers")
    parser.add_argument("--quick", action="store_true", help="short run: 5 s down, short loads")
    parser.add_argument("--down-seconds", type=float, help="scenarios 2 and 8: how long the server is down (60)")
    parser.add_argument(
        "--rate", type=float, default=1000.0, help="scenarios 2 and 8: spans (items) /s the clients send (1000)"
    )
    parser.add_argument("--duration", type=float, help="scenarios 3-5: seconds of load (20; quick: 5)")
    parser.add_argument("--workers", type=int, default=4, help="client threads per scenario (4)")
    parser.add_argument("--kills", type=int, default=2, help="scenarios 1, 6 and 7: kill -9 cycles (2)")
    parser.add_argument("--insert-delay", type=float, default=1.0, help="scenario 3: seconds per insert (1.0)")
    parser.add_argument(
        "--signals-store",
        choices=("auto", "clickhouse", "sink"),
        default="auto",
        help="scenarios 7 and 8: the clickhouse exporter, or otlphttp to the test store (auto: clickhouse when it "
        "takes logs and metrics)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the data directories and logs")
    parser.add_argument("--serve-clickhouse", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--serve-mock", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--serve-otlp-sink", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--query-store", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--sql", help=argparse.SUPPRESS)
    parser.add_argument("--stall-inserts", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_clickhouse:
        serve_clickhouse(args.serve_clickhouse, args.data, args.insert_delay, args.stall_inserts)
        return 0
    if args.serve_mock:
        serve_mock(args.serve_mock)
        return 0
    if args.serve_otlp_sink:
        serve_otlp_sink(args.serve_otlp_sink, args.data)
        return 0
    if args.query_store:
        query_store(args.query_store, args.sql)
        return 0

    if args.down_seconds is None:
        args.down_seconds = 5.0 if args.quick else 60.0
    if args.duration is None:
        args.duration = 5.0 if args.quick else 20.0
    args.up_seconds = 3.0 if args.quick else 10.0  # scenario 2: load before and after the outage
    args.kill_after = 3.0 if args.quick else 8.0  # scenario 1: mean seconds of load before each kill
    chosen = [int(n) for n in args.scenarios.split(",") if n.strip()]
    if not chosen or set(chosen) - SCENARIOS.keys():
        parser.error(f"--scenarios takes numbers among {', '.join(map(str, SCENARIOS))}")
    print(
        f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}; scenarios {chosen}, "
        f"{'quick' if args.quick else 'full'}: down {args.down_seconds:g}s at {args.rate:,.0f} spans/s, "
        f"load {args.duration:g}s, {args.workers} clients"
    )
    results: list[Result] = []
    root = Path(tempfile.mkdtemp(prefix="genai-soak-"))
    try:
        for number in chosen:
            work = root / f"scenario-{number}"
            work.mkdir()
            started = time.monotonic()
            try:
                outcome = SCENARIOS[number](args, work)
                scenario_results = outcome if isinstance(outcome, list) else [outcome]
            except Exception as exc:  # a scenario that breaks is a failed scenario, the others still run
                failed = Result(f"{number} ({SCENARIOS[number].__name__})")
                failed.failures.append(f"{type(exc).__name__}: {exc}")
                log_summary(failed, work / "collector.log")
                scenario_results = [failed]
            for result in scenario_results:  # a scenario of several signals has a row per signal
                result.seconds = time.monotonic() - started
                results.append(result)
                print(
                    f"scenario {result.scenario}: {'OK' if result.ok else 'FAILED'} in {result.seconds:.1f}s",
                    flush=True,
                )
    finally:
        if args.keep:
            print(f"data directories and logs kept under {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    print()
    print_table(results)
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
