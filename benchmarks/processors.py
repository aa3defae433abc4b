"""What the shipped processor chain costs a span, in-process, beside the same batches through no-op processors.

The chain is the one otel-config.yaml ships (its traces pipeline, memory_limiter
left out: it reads no span), each processor built by its factory from its config
and handed the next one, as the collector builds it. The batches are
benchmarks/loop_detection.py's OTLP requests of 512 spans from busy agents (LLM
calls with growing conversations, tool calls, one run in eight looping), as
bytes. Each round runs three modes in turn on the same bytes:

- ``decode+encode``: parse each request and serialise it again, the floor under any in-process work;
- ``no-op chain``: the same, through as many pass-through processors as the shipped chain has;
- ``shipped chain``: the same, through the shipped processors (built afresh each round: what they hold
  grows with the traffic they have seen).

Each mode prints spans/s and µs a span, medians over rounds with their range; the
shipped chain's ratios to the others are taken round by round. ``--per-stage``
adds, to each round, a pass through every leading part of the chain (its first
processor, its first two, ...): what each processor adds to the ones before it
is its share, in µs a span. (The processors share one view of each span and
edit spans in shared passes, so none can be timed on its own.)

``--baseline PATH`` runs the same rounds against another checkout of the
project (the main branch exported with ``git archive``, say), each round of
each checkout in a child process of its own, the checkouts' rounds interleaved
so that the machine's load falls on both alike. ``--cpu-time`` times with the
process's CPU clock rather than the wall clock: on a machine shared with other
work, time spent waiting for a core is then not counted. ``--gc-freeze`` moves
what the process holds once warmed up (modules, the price database, the rules)
out of the garbage collector's sight (``gc.freeze``), as a long-running process
can after it starts: its full collections then walk only what the traffic left.

    python benchmarks/processors.py [--rounds 5] [--requests 40] [--per-stage] [--cpu-time] [--gc-freeze]
                                    [--baseline PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import os
import random
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import report  # noqa: E402  # benchmarks/report.py, beside this script

DEFAULT_ROUNDS = 5
DEFAULT_REQUESTS = 100  # 51,200 spans: long enough for full collections to weigh in as in a running process
SEED = 11
SKIPPED = ("memory_limiter",)  # reads no span: what it costs does not grow with the batch
MODES = ("decode+encode", "no-op chain", "shipped chain")
COLLECTOR_ENV_PREFIX = "GENAI_COLLECTOR_"  # the shipped config's own variables: cleared, so its defaults hold


class _Sink:
    """The end of the chain: where the exporters' fan-out would be."""

    async def consume(self, traces: Any) -> None:
        return None


class _PassThrough:
    """A processor that does nothing but hand the batch on."""

    def __init__(self, next_consumer: Any) -> None:
        self._next = next_consumer

    async def consume(self, traces: Any) -> None:
        await self._next.consume(traces)


class Bench:
    """The shipped chain's parts, loaded from one checkout of the project (``repo``), and rounds through them."""

    def __init__(self, repo: Path, clock: Callable[[], float]) -> None:
        # The checkout's own packages and its own benchmarks/loop_detection.py, ahead of anything else.
        sys.path[:0] = [str(repo), str(repo / "benchmarks")]
        import loop_detection
        import yaml

        from collector.component import ComponentSettings, TracesData
        from collector.config.loader import expand_env
        from collector.config.service import parse_config
        from collector.registry import builtin_registry
        from collector.telemetry import Telemetry

        self._clock = clock
        self.spans_per_request: int = loop_detection.SPANS_PER_REQUEST
        self._request: Callable[[random.Random], bytes] = loop_detection.request
        self._decode: Callable[[bytes], Any] = TracesData.FromString
        self._settings, self._telemetry = ComponentSettings, Telemetry
        registry = builtin_registry()
        environ = {key: value for key, value in os.environ.items() if not key.startswith(COLLECTOR_ENV_PREFIX)}
        document = expand_env(yaml.safe_load((repo / "otel-config.yaml").read_text()), environ)
        config = parse_config(document, registry)
        self._stages = [
            (cid, config.components["processors"][cid].config, registry.processors[cid.type])
            for cid in config.pipelines["traces"].processors
            if cid.type not in SKIPPED
        ]
        self.stage_names = [str(cid) for cid, _, _ in self._stages]

    def bodies(self, requests: int) -> list[bytes]:
        rng = random.Random(SEED)
        return [self._request(rng) for _ in range(requests)]

    def chain(self, length: int | None = None) -> Any:
        """A fresh shipped chain (only its first ``length`` processors, when given)."""
        consumer: Any = _Sink()
        for cid, config, factory in reversed(self._stages[:length]):
            settings = self._settings(cid, "processor", logging.getLogger("bench"), self._telemetry())
            consumer = factory.create(settings, config, consumer)
        return consumer

    def noop_chain(self) -> Any:
        consumer: Any = _Sink()
        for _ in self._stages:
            consumer = _PassThrough(consumer)
        return consumer

    def seconds(self, bodies: Sequence[bytes], head: Any) -> float:
        """Decode each body, hand it to ``head`` (if any) and encode it again; the seconds it all took."""
        gc.collect()  # what earlier rounds left is not this round's to collect (the chain's own garbage is)
        return asyncio.run(self._feed(bodies, head))

    async def _feed(self, bodies: Sequence[bytes], head: Any) -> float:
        decode, clock = self._decode, self._clock
        started = clock()
        for body in bodies:
            traces = decode(body)
            if head is not None:
                await head.consume(traces)
            traces.SerializeToString()
        return clock() - started

    def round(self, bodies: Sequence[bytes], per_stage: bool) -> dict[str, float]:
        """Each mode's spans/s for one pass of ``bodies``, and with ``per_stage`` each processor's µs a span."""
        spans = len(bodies) * self.spans_per_request
        heads = {MODES[0]: None, MODES[1]: self.noop_chain(), MODES[2]: self.chain()}
        figures = {f"{mode} spans/s": spans / self.seconds(bodies, head) for mode, head in heads.items()}
        if per_stage:
            before = self.seconds(bodies, None)
            for length, name in enumerate(self.stage_names, start=1):
                total = self.seconds(bodies, self.chain(length))
                figures[f"{name} µs/span"] = (total - before) / spans * 1e6
                before = total
        return figures


def rounds_of(repo: Path, args: argparse.Namespace, rounds: int) -> list[dict[str, float]]:
    """``rounds`` rounds of one checkout, after a round to warm up (caches fill, the interpreter specialises)."""
    bench = Bench(repo, time.process_time if args.cpu_time else time.perf_counter)
    bodies = bench.bodies(args.requests)
    bench.round(bodies, args.per_stage)
    if args.gc_freeze:
        gc.collect()
        gc.freeze()
    return [bench.round(bodies, args.per_stage) for _ in range(rounds)]


def run_rounds(repos: Sequence[Path], args: argparse.Namespace) -> list[dict[str, list[float]]]:
    """Each checkout's figures, round by round; several checkouts run in child processes, interleaved."""
    results: list[dict[str, list[float]]] = [{} for _ in repos]
    if len(repos) == 1:
        for figures in rounds_of(repos[0], args, args.rounds):
            _collect(results[0], figures)
        return results
    flags = [f"--{name.replace('_', '-')}" for name in ("per_stage", "cpu_time", "gc_freeze") if getattr(args, name)]
    for _ in range(args.rounds):
        for index, repo in enumerate(repos):
            command = [sys.executable, __file__, "--child", str(repo), "--requests", str(args.requests), *flags]
            output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
            _collect(results[index], json.loads(output))
    return results


def _collect(into: dict[str, list[float]], figures: dict[str, float]) -> None:
    for name, value in figures.items():
        into.setdefault(name, []).append(value)


def print_figures(label: str, figures: dict[str, list[float]]) -> None:
    print(f"{label}:")
    report.Figures({name: values for name, values in figures.items() if name.endswith("spans/s")}).print(0)
    for mode in MODES:
        per_span = report.summarize([1e6 / value for value in figures[f"{mode} spans/s"]])
        print(f"  {mode} µs/span: median {per_span.median:.2f}, range {per_span.low:.2f} - {per_span.high:.2f}")
    chain = figures[f"{MODES[2]} spans/s"]
    for baseline in MODES[:2]:
        print(report.ratio_line(f"  shipped chain / {baseline}", chain, figures[f"{baseline} spans/s"]))
    stages = report.Figures({name: values for name, values in figures.items() if name.endswith("µs/span")})
    if stages.rounds:
        print("  what each processor adds to the ones before it:")
        stages.print(decimals=2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS)
    parser.add_argument("--requests", type=int, default=DEFAULT_REQUESTS, help="512-span requests a round")
    parser.add_argument("--per-stage", action="store_true", help="also time what each processor adds")
    parser.add_argument("--cpu-time", action="store_true", help="the process's CPU time, not the wall clock")
    parser.add_argument("--gc-freeze", action="store_true", help="freeze what the warmed-up process holds (gc.freeze)")
    parser.add_argument("--baseline", type=Path, help="another checkout, its rounds interleaved with this one's")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)  # one round of one checkout, as JSON
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(rounds_of(args.child, args, 1)[0]))
        return
    repos = [HERE.parent, *([args.baseline.resolve()] if args.baseline else [])]
    results = run_rounds(repos, args)
    clock = "CPU time" if args.cpu_time else "wall clock"
    frozen = ", gc.freeze() once warmed up" if args.gc_freeze else ""
    workload = f"{args.requests} requests of benchmarks/loop_detection.py's agent spans"
    print(f"{args.rounds} rounds of {workload}, {clock}{frozen}")
    for repo, figures in zip(repos, results, strict=True):
        print_figures(str(repo), figures)
    if args.baseline:
        chain = f"{MODES[2]} spans/s"
        print(report.ratio_line("shipped chain, this checkout / baseline", results[0][chain], results[1][chain]))


if __name__ == "__main__":
    main()
