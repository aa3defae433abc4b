"""The read API on a large store: trace by id, a day's trace search and a day's stats; and ingest while it serves.

Part 1 makes a chDB store of ``--spans`` GenAI spans (5 million by default)
spread over ``--days`` days: agent traces of five spans (an invoke_agent
root, three chat calls, a tool call), 1 call in 20 with a finding, a few
services, models, providers and tenants. The spans are made as Arrow columns
and inserted through the store's ``send_table``, so the GenAI tables fill as
they do in production (the materialized views run on each insert). Then
``genai-collector run`` opens the store with the read API and each question
is asked ``--repeats`` times over HTTP; medians (p50) and p90 are printed
beside the aims: trace by id p50 <= 50 ms, a day's search p50 <= 300 ms, a
day's stats by model <= 500 ms. The collector runs the shipped config
(benchmarks/harness.py's derived copy: free loopback ports, data under the
run's directory, where the store was made).

Part 2 measures ingest the way benchmarks/ingest.py does (its requests and
its timed send, the shipped config, whose read API is on), in rounds that
each run twice on fresh stores: the API idle, then answering ``--api-rate``
requests a second (searches, stats, calls, services, traces by id over the
spans arriving). The medians and the per-round ratio are printed (aim: >= 0.9x).

    make bench-api
    python benchmarks/read_api.py [--spans 5000000] [--days 7] [--repeats 20] [--requests 200] [--rounds 3]
                                  [--workload agent|chat] [--api-rate 10]
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import os
import random
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import harness
import httpx
import ingest
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import report

sys.path.insert(0, str(harness.REPO_ROOT))

from exporters.clickhouse.columns import TRACE_COLUMNS  # noqa: E402

NANOS = 1_000_000_000
DAY = 86_400 * NANOS
SPANS_PER_TRACE = 5  # root, three chat calls, one tool call
CHATS_PER_TRACE = 3
TRACES_PER_CHUNK = 40_000
FINDING_EVERY = 20
TOOL_ERROR_EVERY = 50
SERVICES = ("support-agent", "research-agent", "billing-bot", "triage", "summarizer", "code-review", "sales", "ops")
MODELS = ("gpt-4o", "gpt-4o-mini", "gpt-4.1", "claude-sonnet-4-5", "claude-haiku-4-5", "llama-3.1-70b-instruct")
PROVIDERS = ("openai", "openai", "openai", "anthropic", "anthropic", "vllm")
TENANTS = tuple(f"tenant-{i}" for i in range(10))
TOOLS = ("search", "lookup_order", "send_email", "run_sql")
SEVERITIES = ("low", "medium", "high", "critical")
SAMPLED_TRACE_IDS = 200
AIMS_MS = {"trace by id": 50.0, "search over a day": 300.0, "stats for a day by model": 500.0}
API_RATE = 10.0


# ---------------------------------------------------------------------------------------------------------------
# Part 1: the store


def _whole(array: pa.Array | pa.ChunkedArray) -> pa.Array:
    """One array: pyarrow hands large numpy string arrays back in chunks."""
    return array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array


def _hex_ids(rng: np.random.Generator, count: int, size: int) -> np.ndarray:
    raw = rng.integers(0, 256, size=(count, size), dtype=np.uint8)
    return np.array([row.tobytes().hex() for row in raw])


def _map(keys: tuple[str, ...], columns: list[pa.Array]) -> pa.MapArray:
    """A map column where every row has ``keys``, the i-th key's values in ``columns[i]``."""
    rows, width = len(columns[0]), len(keys)
    order = (np.arange(width)[None, :] * rows + np.arange(rows)[:, None]).ravel()
    values = pa.concat_arrays([_whole(pc.cast(column, pa.string())) for column in columns]).take(pa.array(order))
    indices = pa.array(np.tile(np.arange(width, dtype=np.int32), rows))
    flat_keys = pa.DictionaryArray.from_arrays(indices, pa.array(keys, pa.string())).dictionary_decode()
    offsets = pa.array(np.arange(0, rows * width + 1, width, dtype=np.int32))
    return pa.MapArray.from_arrays(offsets, flat_keys, values)


def _lists(values: pa.Array, per_row: np.ndarray) -> pa.ListArray:
    offsets = np.concatenate([[0], np.cumsum(per_row)]).astype(np.int32)
    return pa.ListArray.from_arrays(pa.array(offsets), values)


def _table(columns: dict[str, pa.Array], rows: int, events: dict[str, pa.Array] | None = None) -> pa.Table:
    none = np.zeros(rows, dtype=np.int32)
    empty_map = pa.MapArray.from_arrays(pa.array([0], pa.int32()), pa.array([], pa.string()), pa.array([], pa.string()))
    nested = events or {
        "Events.Timestamp": _lists(pa.array([], pa.timestamp("ns")), none),
        "Events.Name": _lists(pa.array([], pa.string()), none),
        "Events.Attributes": _lists(empty_map, none),
    }
    links = {
        "Links.TraceId": _lists(pa.array([], pa.string()), none),
        "Links.SpanId": _lists(pa.array([], pa.string()), none),
        "Links.TraceState": _lists(pa.array([], pa.string()), none),
        "Links.Attributes": _lists(empty_map, none),
    }
    everything = {**columns, **nested, **links}
    return pa.Table.from_arrays([everything[name] for name in TRACE_COLUMNS], names=list(TRACE_COLUMNS))


def make_chunk(rng: np.random.Generator, traces: int, first_ns: int, days: int) -> tuple[list[pa.Table], list[str]]:
    """The spans of ``traces`` agent traces starting in the ``days`` days from ``first_ns``; and a few trace ids."""
    trace_ids = _hex_ids(rng, traces, 16)
    starts = first_ns + rng.integers(0, days * DAY - 60 * NANOS, size=traces)
    service = rng.integers(0, len(SERVICES), traces)
    tenant = rng.integers(0, len(TENANTS), traces)
    conversation = np.char.add("conv-", rng.integers(0, traces * 4, traces).astype(str))
    root_ids = _hex_ids(rng, traces, 8)
    services = np.array(SERVICES)[service]
    tenants = np.array(TENANTS)[tenant]

    def common(rows: int, trace_index: np.ndarray, span_ids: np.ndarray, parents: np.ndarray) -> dict[str, pa.Array]:
        return {
            "TraceId": pa.array(trace_ids[trace_index], pa.string()),
            "SpanId": pa.array(span_ids, pa.string()),
            "ParentSpanId": pa.array(parents, pa.string()),
            "TraceState": pa.array(np.full(rows, ""), pa.string()),
            "ServiceName": pa.array(services[trace_index], pa.string()),
            "ResourceAttributes": _map(
                ("service.name", "deployment.environment"),
                [pa.array(services[trace_index]), pa.array(np.full(rows, "prod"))],
            ),
            "ScopeName": pa.array(np.full(rows, "opentelemetry.instrumentation.openai_v2"), pa.string()),
            "ScopeVersion": pa.array(np.full(rows, "2.1b0"), pa.string()),
        }

    tables: list[pa.Table] = []
    every = np.arange(traces)
    # Roots: the agent invocation, 5-30 s.
    root_duration = rng.integers(5 * NANOS, 30 * NANOS, traces)
    tables.append(
        _table(
            {
                **common(traces, every, root_ids, np.full(traces, "")),
                "Timestamp": pa.array(starts, pa.timestamp("ns")),
                "SpanName": pa.array(np.char.add("invoke_agent ", services), pa.string()),
                "SpanKind": pa.array(np.full(traces, "Internal"), pa.string()),
                "SpanAttributes": _map(
                    ("gen_ai.operation.name", "gen_ai.agent.name", "tenant.id", "gen_ai.conversation.id"),
                    [
                        pa.array(np.full(traces, "invoke_agent")),
                        pa.array(services),
                        pa.array(tenants),
                        pa.array(conversation),
                    ],
                ),  # fmt: skip
                "Duration": pa.array(root_duration, pa.uint64()),
                "StatusCode": pa.array(np.full(traces, "Unset"), pa.string()),
                "StatusMessage": pa.array(np.full(traces, ""), pa.string()),
            },
            traces,
        )
    )
    # Chat calls, three per trace; 1 in FINDING_EVERY carries a finding event.
    rows = traces * CHATS_PER_TRACE
    trace_index = np.repeat(every, CHATS_PER_TRACE)
    model = rng.integers(0, len(MODELS), rows)
    models = np.array(MODELS)[model]
    offsets = np.tile(np.arange(CHATS_PER_TRACE), traces) * 2 * NANOS + NANOS
    timestamps = starts[trace_index] + offsets
    durations = rng.integers(300_000_000, 4 * NANOS, rows)
    input_tokens = rng.integers(50, 8000, rows)
    output_tokens = rng.integers(10, 1500, rows)
    cost = np.round(input_tokens * 2.5e-6 + output_tokens * 1e-5, 8)
    ttfc = np.round(rng.uniform(0.1, 1.5, rows), 4)
    flagged = rng.integers(0, FINDING_EVERY, rows) == 0
    severity = np.array(SEVERITIES)[rng.integers(0, len(SEVERITIES), rows)]
    chat_ids = _hex_ids(rng, rows, 8)
    for with_finding in (False, True):
        pick = np.flatnonzero(flagged == with_finding)
        count = len(pick)
        keys = (
            "gen_ai.operation.name", "gen_ai.provider.name", "gen_ai.request.model", "gen_ai.response.model",
            "gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens", "gen_ai.usage.cost.amount",
            "gen_ai.usage.cost.source", "gen_ai.response.time_to_first_chunk", "gen_ai.response.finish_reasons",
            "tenant.id", "gen_ai.conversation.id",
        )  # fmt: skip
        values = [
            pa.array(np.full(count, "chat")), pa.array(np.array(PROVIDERS)[model[pick]]), pa.array(models[pick]),
            pa.array(np.char.add(models[pick], "-2025-06-01")), pa.array(input_tokens[pick]),
            pa.array(output_tokens[pick]), pa.array(cost[pick]), pa.array(np.full(count, "local")),
            pa.array(ttfc[pick]), pa.array(np.full(count, '["stop"]')), pa.array(tenants[trace_index[pick]]),
            pa.array(conversation[trace_index[pick]]),
        ]  # fmt: skip
        events = None
        if with_finding:
            keys = (*keys, "gen_ai.security.findings.count", "gen_ai.security.findings.max_severity")
            values += [pa.array(np.full(count, "1")), pa.array(severity[pick])]
            one = np.ones(count, dtype=np.int32)
            events = {
                "Events.Timestamp": _lists(pa.array(timestamps[pick] + NANOS // 10, pa.timestamp("ns")), one),
                "Events.Name": _lists(pa.array(np.full(count, "gen_ai.security.finding")), one),
                "Events.Attributes": _lists(
                    _map(
                        (
                            "gen_ai.security.detector.id",
                            "gen_ai.security.category",
                            "gen_ai.security.severity",
                            "gen_ai.security.confidence",
                        ),
                        [
                            pa.array(np.full(count, "pii.email")),
                            pa.array(np.full(count, "pii")),
                            pa.array(severity[pick]),
                            pa.array(np.full(count, "0.9")),
                        ],
                    ),  # fmt: skip
                    one,
                ),
            }
        tables.append(
            _table(
                {
                    **common(count, trace_index[pick], chat_ids[pick], root_ids[trace_index[pick]]),
                    "Timestamp": pa.array(timestamps[pick], pa.timestamp("ns")),
                    "SpanName": pa.array(np.char.add("chat ", models[pick]), pa.string()),
                    "SpanKind": pa.array(np.full(count, "Client"), pa.string()),
                    "SpanAttributes": _map(keys, values),
                    "Duration": pa.array(durations[pick], pa.uint64()),
                    "StatusCode": pa.array(np.full(count, "Unset"), pa.string()),
                    "StatusMessage": pa.array(np.full(count, ""), pa.string()),
                },
                count,
                events,
            )
        )
    # Tool calls: one per trace after the chats; 1 in TOOL_ERROR_EVERY fails.
    tool = np.array(TOOLS)[rng.integers(0, len(TOOLS), traces)]
    failed = rng.integers(0, TOOL_ERROR_EVERY, traces) == 0
    tables.append(
        _table(
            {
                **common(traces, every, _hex_ids(rng, traces, 8), root_ids),
                "Timestamp": pa.array(starts + 7 * NANOS, pa.timestamp("ns")),
                "SpanName": pa.array(np.char.add("execute_tool ", tool), pa.string()),
                "SpanKind": pa.array(np.full(traces, "Internal"), pa.string()),
                "SpanAttributes": _map(
                    ("gen_ai.operation.name", "gen_ai.tool.name", "tenant.id"),
                    [pa.array(np.full(traces, "execute_tool")), pa.array(tool), pa.array(tenants)],
                ),
                "Duration": pa.array(rng.integers(10_000_000, 2 * NANOS, traces), pa.uint64()),
                "StatusCode": pa.array(np.where(failed, "Error", "Unset"), pa.string()),
                "StatusMessage": pa.array(np.where(failed, "tool failed", ""), pa.string()),
            },
            traces,
        )
    )
    return tables, list(trace_ids[:SAMPLED_TRACE_IDS])


def build_store(store_dir: str, spans: int, days: int, first_ns: int, seed: int) -> list[str]:
    """Fill a chDB store at ``store_dir`` (run in a child process: chDB holds its directory until the process ends)."""
    from exporters.clickhouse.config import ClickHouseConfig
    from exporters.clickhouse.store import ClickHouseStore

    store = ClickHouseStore(ClickHouseConfig(endpoint=f"chdb://{store_dir}"), logging.getLogger("bench"))
    store.start()
    rng = np.random.default_rng(seed)
    traces_left = spans // SPANS_PER_TRACE
    sampled: list[str] = []
    chunk = 0
    while traces_left > 0:
        count = min(TRACES_PER_CHUNK, traces_left)
        tables, ids = make_chunk(rng, count, first_ns, days)
        for kind, table in enumerate(tables):
            store.send_table(table, f"bench-{seed}-{chunk}-{kind}")
        sampled.extend(ids)
        traces_left -= count
        chunk += 1
    stored = store.query("SELECT count() FROM otel_traces").rows[0][0]
    calls = store.query("SELECT count() FROM genai_calls").rows[0][0]
    store.close()
    print(f"store: {stored:,} spans, {calls:,} calls in genai_calls")
    return sampled[:SAMPLED_TRACE_IDS]


def _timed(client: httpx.Client, path: str, params: dict[str, str]) -> float:
    started = time.perf_counter()
    answer = client.get(path, params=params)
    elapsed = (time.perf_counter() - started) * 1000
    if answer.status_code != 200:
        raise RuntimeError(f"{path} answered {answer.status_code}: {answer.text}")
    return elapsed


def measure_queries(work: Path, trace_ids: list[str], first_ns: int, days: int, repeats: int) -> None:
    """Ask each question ``repeats`` times of the collector running the shipped config on the store in ``work``."""
    from collector.extensions.api.params import format_timestamp

    config = harness.derive_config(work)
    collector = harness.start_collector(config, work)
    try:
        day = first_ns + (days // 2) * DAY
        window = {"start": format_timestamp(day), "end": format_timestamp(day + DAY)}
        micros = {"start": str(day // 1_000), "end": str((day + DAY) // 1_000)}
        seconds = {"start": str(day // NANOS), "end": str((day + DAY) // NANOS)}
        questions: dict[str, list[tuple[str, dict[str, str]]]] = {
            "trace by id": [(f"/api/v1/traces/{trace_id}", {}) for trace_id in trace_ids],
            "search over a day": [("/api/v1/traces", window)],
            "search over a day, one model": [("/api/v1/traces", {**window, "model": MODELS[0]})],
            "stats for a day by model": [("/api/v1/stats", {**window, "group_by": "model"})],
            "stats for a day by model and hour": [("/api/v1/stats", {**window, "group_by": "model", "bucket": "hour"})],
            "calls over a day, one tenant": [("/api/v1/calls", {**window, "tenant": TENANTS[0]})],
            # Jaeger's and Tempo's APIs over the same store.
            "jaeger search, a day, one service": [("/api/traces", {**micros, "service": SERVICES[0], "limit": "20"})],
            "tempo TraceQL search over a day": [
                ("/api/search", {**seconds, "q": f'{{ span.gen_ai.request.model = "{MODELS[0]}" }}'})
            ],
            "tempo trace by id": [(f"/api/v2/traces/{trace_id}", {}) for trace_id in trace_ids],
        }
        api = f"http://{harness.LOOPBACK}:{config.port('extensions.api')}"
        with httpx.Client(base_url=api, timeout=harness.CLIENT_TIMEOUT_SECONDS) as client:
            print(f"\n{'question':<36} {'p50 ms':>9} {'p90 ms':>9} {'aim':>10}")
            for name, requests in questions.items():
                _timed(client, *requests[0])  # the first answer pays for opening files; not counted
                times = [_timed(client, *requests[i % len(requests)]) for i in range(repeats)]
                aim = f"<= {AIMS_MS[name]:.0f}" if name in AIMS_MS else ""
                p50, p90 = report.percentile(times, 0.5), report.percentile(times, 0.9)
                print(f"{name:<36} {p50:>9.1f} {p90:>9.1f} {aim:>10}")
    finally:
        collector.stop()


# ---------------------------------------------------------------------------------------------------------------
# Part 2: ingest while the API serves


class ApiLoad:
    """Requests to the read API at ``rate`` a second, on one thread, over the spans arriving."""

    def __init__(self, port: int, rate: float) -> None:
        self._client = httpx.Client(
            base_url=f"http://{harness.LOOPBACK}:{port}", timeout=harness.CLIENT_TIMEOUT_SECONDS
        )
        self._interval = 1.0 / rate
        self._stop = threading.Event()
        self.answers: Counter[str] = Counter()
        self.trace_ids: list[str] = []
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> ApiLoad:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(120)
        self._client.close()

    def _run(self) -> None:
        rng = random.Random(7)
        questions = [
            ("/api/v1/traces", {"limit": "20"}),
            ("/api/v1/stats", {"group_by": "model"}),
            ("/api/v1/calls", {"limit": "50"}),
            ("/api/v1/services", {}),
            ("/api/v1/traces", {"error": "true"}),
        ]
        deadline = time.monotonic()
        while not self._stop.is_set():
            path, params = rng.choice(questions)
            if self.trace_ids and rng.random() < 0.3:
                path, params = f"/api/v1/traces/{rng.choice(self.trace_ids)}", {}
            try:
                answer = self._client.get(path, params=params)
                self.answers[str(answer.status_code)] += 1
                if path == "/api/v1/traces" and answer.status_code == 200:
                    self.trace_ids = [trace["trace_id"] for trace in answer.json()["traces"]] or self.trace_ids
            except httpx.HTTPError as exc:
                self.answers[type(exc).__name__] += 1
            deadline += self._interval
            self._stop.wait(max(0.0, deadline - time.monotonic()))


def ingest_round(bodies: list[bytes], work: Path, concurrency: int, rate: float, answers: Counter[str]) -> float:
    """Spans/s through the shipped config from ``work``; with ``rate``, while the API answers that many a second."""
    config = harness.derive_config(harness.fresh_dir(work))
    collector = harness.start_collector(config, work)
    url = f"http://{harness.LOOPBACK}:{config.port('receivers.otlp.protocols.http')}/v1/traces"
    try:
        if not rate:
            return ingest.timed_ingest(url, bodies, concurrency, collector.wait_stored)
        with ApiLoad(config.port("extensions.api"), rate) as load:
            spans_per_second = ingest.timed_ingest(url, bodies, concurrency, collector.wait_stored)
        answers.update(load.answers)
        return spans_per_second
    finally:
        collector.stop()


def measure_ingest(workload: str, requests: int, rounds: int, concurrency: int, rate: float) -> None:
    bodies = ingest.build_bodies(workload, requests, random.Random(42))
    print(
        f"\ningest: {requests} {workload} requests per round, {rounds} rounds, the shipped config's API idle, "
        f"then answering {rate:g} requests/s"
    )
    figures = report.Figures()
    answers: Counter[str] = Counter()
    idle, serving = "API idle (spans/s)", f"API at {rate:g} requests/s (spans/s)"
    with tempfile.TemporaryDirectory(prefix="read-api-ingest-") as tmp:
        work = Path(tmp)
        for round_no in range(1, rounds + 1):
            figures.add(idle, ingest_round(bodies, work / f"idle-{round_no}", concurrency, 0.0, answers))
            figures.add(serving, ingest_round(bodies, work / f"serving-{round_no}", concurrency, rate, answers))
            print(f"round {round_no}: {figures[idle][-1]:,.0f} idle, {figures[serving][-1]:,.0f} serving spans/s")
    figures.print(decimals=0)
    print(report.ratio_line("serving / idle (aim >= 0.9x)", figures[serving], figures[idle]))
    print(f"API answers while ingesting: {', '.join(f'{k}: {v}' for k, v in sorted(answers.items()))}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spans", type=int, default=5_000_000)
    parser.add_argument("--days", type=int, default=7, help="days the spans are spread over")
    parser.add_argument("--repeats", type=int, default=20, help="times each question is asked")
    parser.add_argument("--requests", type=int, default=200, help="ingest: requests per round")
    parser.add_argument(
        "--workload", choices=("agent", "chat"), default="agent", help="ingest: as benchmarks/ingest.py"
    )
    parser.add_argument("--rounds", type=int, default=3, help="ingest rounds")
    parser.add_argument("--concurrency", type=int, default=4, help="ingest: client connections sending at once")
    parser.add_argument("--api-rate", type=float, default=API_RATE, help="API requests a second during ingest")
    parser.add_argument("--skip-ingest", action="store_true")
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}")
    today = time.time_ns() // DAY * DAY
    first_ns = today - args.days * DAY
    with tempfile.TemporaryDirectory(prefix="read-api-") as tmp:
        work = Path(tmp)
        store_dir = work / "data" / "clickhouse"  # where the shipped config keeps its store, from ``work``
        started = time.perf_counter()
        with multiprocessing.get_context("spawn").Pool(1) as pool:
            trace_ids = pool.apply(build_store, (str(store_dir), args.spans, args.days, first_ns, 1))
        per_day = args.spans / args.days
        print(f"made in {time.perf_counter() - started:.0f}s: {args.spans:,} spans over {args.days} days "
              f"(~{per_day:,.0f} a day)")  # fmt: skip
        measure_queries(work, trace_ids, first_ns, args.days, args.repeats)
    if not args.skip_ingest:
        measure_ingest(args.workload, args.requests, args.rounds, args.concurrency, args.api_rate)


if __name__ == "__main__":
    main()
