"""What the genai_evaluation connector costs ingest, and how many judge calls a second it sustains.

Ingest, in-process: OTLP requests of chat spans with their messages (bytes, as a receiver gets them) go
through what a worker does to each batch, round after round in two modes on the same bytes:

- ``off``: decode, the shipped processor chain (benchmarks/processors.py builds it from otel-config.yaml),
  encode;
- ``10% sampled``: the same, and the connector's ``consume`` too (its selection: the work its worker part
  does), with a judged ``relevance`` dimension at ``sampling_rate: 0.1`` whose judge (the mock upstream, in a
  child process) answers at once; the round ends when its batches were consumed, not when the judge calls
  are done (consume never waits on them, but they share the event loop meanwhile).

Judge calls/s: every span of the same requests judged (sampling 1.0) at ``judge.concurrency: 16``, from the
first consume to the last result emitted.

Ingest, end to end (``--end-to-end-requests``, 0 to skip): the same requests over OTLP/HTTP into
``genai-collector run`` on the shipped config, and on the shipped config with the connector (relevance at 10%,
the mock judge, results down a logs pipeline into the store), spans/s from the first send until every span is
stored; the results the store holds by then, and once the collector drained at its stop, are printed beside.

Both print medians over rounds with their range, and the ingest ratio round by round.

    python benchmarks/evaluations.py [--rounds 5] [--requests 40] [--spans 512] [--judge-calls 2000]
                                     [--end-to-end-requests 100]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib.util
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import harness  # noqa: E402
import ingest as ingest_bench  # noqa: E402  # benchmarks/ingest.py: its timed OTLP/HTTP sends
import llm_calls  # noqa: E402  # benchmarks/llm_calls.py: the mock upstream in a child process
import report  # noqa: E402
import yaml  # noqa: E402
from opentelemetry.proto.trace.v1.trace_pb2 import TracesData  # noqa: E402

from collector.component import ComponentID, ComponentSettings, SharedComponents  # noqa: E402
from collector.config.decode import decode  # noqa: E402
from collector.telemetry import Telemetry  # noqa: E402
from connectors.genai_evaluation import factory  # noqa: E402
from connectors.genai_evaluation.config import GenAiEvaluationConfig  # noqa: E402
from exporters.clickhouse.config import ClickHouseConfig  # noqa: E402
from exporters.clickhouse.store import ClickHouseStore  # noqa: E402
from tests.connectors.genai_evaluation.support import Calls  # noqa: E402


def _processor_bench() -> Any:
    """benchmarks/processors.py, loaded under a name of its own (``processors`` is the project's package)."""
    spec = importlib.util.spec_from_file_location("processor_bench", HERE / "processors.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


DEFAULT_ROUNDS = 5
DEFAULT_REQUESTS = 40
DEFAULT_SPANS = 512
DEFAULT_JUDGE_CALLS = 2000
DEFAULT_END_TO_END_REQUESTS = 100
CLIENTS = 4  # OTLP/HTTP clients sending at once, as benchmarks/ingest.py
SHIPPED_STORE = "data/clickhouse"  # the shipped config's chDB directory, relative to where it runs
RESULTS_SQL = "SELECT count() FROM genai_evaluations"
SAMPLING_RATE = 0.1
JUDGE_CONCURRENCY = 16
# Big enough that no sampled span is dropped in a round: the queue's bound is not what is measured.
QUEUE_SIZE = 1_000_000


class Counting:
    """A logs pipeline's stand-in: counts the results (log records) of the batches it is given."""

    def __init__(self) -> None:
        self.items = 0

    async def consume(self, data: Any, /) -> None:
        self.items += sum(len(scope.log_records) for resource in data.resource_logs for scope in resource.scope_logs)


def requests(count: int, spans: int, first: int = 0) -> list[bytes]:
    """``count`` OTLP requests of ``spans`` chat spans, one trace each, with a judge marker in every answer."""
    made = []
    for request in range(count):
        calls = Calls(service="bench")
        for index in range(spans):
            number = first + request * spans + index + 1
            calls.chat(number, answer=f"Paris, call {number}. mock-judge-score=4")
        made.append(calls.traces.SerializeToString())
    return made


def connector(judge_url: str, rate: float) -> tuple[Any, Counting]:
    raw = {
        "judge": {
            "model": "gpt-4o-mini",
            "upstreams": [{"name": "mock", "kind": "openai", "base_url": f"{judge_url}/v1", "models": ["gpt-*"]}],
            "concurrency": JUDGE_CONCURRENCY,
        },
        "dimensions": [{"name": "relevance", "rubric": "relevance", "sampling_rate": rate}],
        "queue_size": QUEUE_SIZE,
    }
    config = decode(GenAiEvaluationConfig, raw, "connectors.genai_evaluation")
    settings = ComponentSettings(
        ComponentID("genai_evaluation"), "connector", logging.getLogger("bench"), Telemetry(), shared=SharedComponents()
    )
    results = Counting()
    return factory.creators[("traces", "logs")](settings, config, results), results


async def ingest(batches: list[bytes], chain: Any, judge_url: str | None) -> float:
    """Spans a second through decode, the processor chain and encode (and the connector, with a judge URL)."""
    evaluation = connector(judge_url, SAMPLING_RATE)[0] if judge_url else None
    if evaluation is not None:
        await evaluation.start(None)
    spans = 0
    started = time.perf_counter()
    for body in batches:
        traces = TracesData.FromString(body)
        await chain.consume(traces)
        if evaluation is not None:
            await evaluation.consume(traces)
        traces.SerializeToString()
        spans += sum(len(ss.spans) for rs in traces.resource_spans for ss in rs.scope_spans)
    elapsed = time.perf_counter() - started
    if evaluation is not None:
        await evaluation.shutdown()  # the judge calls finish outside the timed part
    return spans / elapsed


async def judge_rate(batches: list[bytes], judge_url: str) -> float:
    """Judge calls a second at concurrency 16: every span judged, until the last result is emitted."""
    evaluation, results = connector(judge_url, 1.0)
    await evaluation.start(None)
    started = time.perf_counter()
    for body in batches:
        await evaluation.consume(TracesData.FromString(body))
    await evaluation.shutdown()  # drains the queue: every judge call answered and its result emitted
    return results.items / (time.perf_counter() - started)


def evaluated_config(work: Path, judge_url: str) -> Path:
    """The shipped config with the connector: the traces pipeline feeds it, its results go into the store."""
    config = yaml.safe_load(harness.SHIPPED_CONFIG.read_text())
    config.setdefault("connectors", {})["genai_evaluation"] = {
        "judge": {
            "model": "gpt-4o-mini",
            "upstreams": [{"name": "mock", "kind": "openai", "base_url": f"{judge_url}/v1", "models": ["gpt-*"]}],
            "concurrency": JUDGE_CONCURRENCY,
        },
        "dimensions": [{"name": "relevance", "rubric": "relevance", "sampling_rate": SAMPLING_RATE}],
    }
    pipelines = config["service"]["pipelines"]
    pipelines["traces"]["exporters"].append("genai_evaluation")
    pipelines["logs/evaluations"] = {"receivers": ["genai_evaluation"], "exporters": ["clickhouse"]}
    path = work / "evaluated.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def collector_round(bodies: list[bytes], work: Path, judge_url: str | None) -> tuple[float, int, int]:
    """Spans/s into a running collector (with the connector when there is a judge), and the evaluation results
    stored when the last span was, and after the collector's stop drained them."""
    harness.fresh_dir(work)
    base = evaluated_config(work, judge_url) if judge_url else harness.SHIPPED_CONFIG
    config = harness.derive_config(work, base=base)
    collector = harness.start_collector(config, work)
    stopped = False
    try:
        url = f"http://{harness.LOOPBACK}:{config.port('receivers.otlp.protocols.http')}/v1/traces"
        rate = ingest_bench.timed_ingest(url, bodies, CLIENTS, collector.wait_stored)
        results = int(collector.query(RESULTS_SQL)[0][0]) if judge_url else 0
        collector.stop()
        stopped = True
        drained = _stored_results(work) if judge_url else 0
        return rate, results, drained
    finally:
        if not stopped:
            collector.stop()


def _stored_results(work: Path) -> int:
    """The results in the store the stopped collector ran from ``work`` (the shipped config's relative path)."""
    store = ClickHouseStore(ClickHouseConfig(endpoint=f"chdb://{work / SHIPPED_STORE}"), logging.getLogger("bench"))
    try:
        return int(store.query(RESULTS_SQL).rows[0][0])
    finally:
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS)
    parser.add_argument("--requests", type=int, default=DEFAULT_REQUESTS)
    parser.add_argument("--spans", type=int, default=DEFAULT_SPANS)
    parser.add_argument("--judge-calls", type=int, default=DEFAULT_JUDGE_CALLS)
    parser.add_argument("--end-to-end-requests", type=int, default=DEFAULT_END_TO_END_REQUESTS)
    args = parser.parse_args()
    batches = requests(args.requests, args.spans)
    judged = requests(max(1, args.judge_calls // args.spans), min(args.spans, args.judge_calls), first=10**9)
    bench = _processor_bench().Bench(HERE.parent, time.perf_counter)
    mock = llm_calls.start_mock()
    try:
        off, on, calls = [], [], []
        collector_off: list[float] = []
        collector_on: list[tuple[float, int, int]] = []
        # A pass of each first, untimed: the price database, the rules and the judge's connections warm up.
        asyncio.run(ingest(batches, bench.chain(), None))
        asyncio.run(ingest(batches, bench.chain(), mock.url))
        for _ in range(args.rounds):
            gc.collect()
            off.append(asyncio.run(ingest(batches, bench.chain(), None)))
            gc.collect()
            on.append(asyncio.run(ingest(batches, bench.chain(), mock.url)))
            calls.append(asyncio.run(judge_rate(judged, mock.url)))
        end_to_end = requests(args.end_to_end_requests, args.spans, first=2 * 10**9)
        with tempfile.TemporaryDirectory(prefix="bench-evaluations-") as tmp:
            for _ in range(args.rounds if end_to_end else 0):
                collector_off.append(collector_round(end_to_end, Path(tmp) / "off", None)[0])
                collector_on.append(collector_round(end_to_end, Path(tmp) / "on", mock.url))
    finally:
        mock.stop()
    print(f"{args.requests} requests of {args.spans} chat spans, {args.rounds} rounds")
    figures = report.Figures()
    for value in off:
        figures.add("ingest spans/s, evaluation off", value)
    for value in on:
        figures.add("ingest spans/s, evaluation 10% sampled", value)
    for value in calls:
        figures.add(f"judge calls/s at concurrency {JUDGE_CONCURRENCY}", value)
    for value in collector_off:
        figures.add("collector spans/s, shipped config", value)
    for rate, _, _ in collector_on:
        figures.add("collector spans/s, with evaluation 10% sampled", rate)
    figures.print(decimals=0)
    print(report.ratio_line("ingest, 10% sampled / off", on, off))
    if collector_on:
        print(report.ratio_line("collector, 10% sampled / off", [rate for rate, _, _ in collector_on], collector_off))
        for rate, results, drained in collector_on:
            print(f"  with evaluation: {rate:,.0f} spans/s; results stored with the last span {results}, "
                  f"after the stop drained {drained}")  # fmt: skip


if __name__ == "__main__":
    main()
