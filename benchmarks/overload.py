"""Peak memory of the collector under sustained overload: OTLP clients pushing faster than it stores.

The collector runs the shipped config (otel-config.yaml: memory_limiter, every GenAI processor, the disk queue,
prometheus; listeners on free loopback ports, data under a temporary directory). Each round starts a fresh one
and records, as the baseline, its resident memory at rest once healthy. Then ``--clients`` OTLP/HTTP clients (in
a child process) push benchmarks/loop_detection.py's 512-span GenAI agent requests for ``--seconds``, each
sending the next request as soon as the last was accepted and retrying 429/503 after Retry-After, as OTLP
exporters do. Meanwhile the resident memory of the collector's whole process tree is summed every 100 ms;
the peak of that sum, and the kernel's high-water mark (VmHWM) of its main process, are the figures.

Whether it was overloaded shows beside them: spans accepted/s against spans stored/s over the same window,
the backlog left (accepted minus stored) and the refusals the clients got. The memory bounds the config sets
(memory_limiter, the queue's sizes) are printed first.

    make bench-overload
    python benchmarks/overload.py [--rounds 3] [--seconds 60] [--clients 8] [--bodies 32]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import harness
import loop_detection
import otlp_load
import report
import yaml

REST_SECONDS = 2.0  # how long the idle collector is sampled for its baseline
# Accepting this much faster than storing counts as overloaded even without refusals (the backlog grows).
OVERLOAD_RATIO = 1.1


def bounds(config: harness.DerivedConfig) -> str:
    """The memory-related settings of the config under test, as written there."""
    document: dict[str, Any] = yaml.safe_load(config.path.read_text())
    limiter = (document.get("processors") or {}).get("memory_limiter")
    exporters = document.get("exporters") or {}
    queues = {name: settings.get("sending_queue") for name, settings in exporters.items() if settings}
    return f"memory_limiter: {limiter}; sending queues: {queues}"


def run_round(figures: report.Figures, work: Path, bodies: list[bytes], args: argparse.Namespace, first: bool) -> None:
    config = harness.derive_config(work)
    if first:
        print(bounds(config))
    collector = harness.start_collector(config, work)
    try:
        with harness.RssSampler(collector.process.pid) as rest:
            time.sleep(REST_SECONDS)
        url = f"http://{harness.LOOPBACK}:{config.port('receivers.otlp.protocols.http')}/v1/traces"
        stored_before = collector.stored()
        with harness.RssSampler(collector.process.pid) as loaded:
            load = otlp_load.OtlpLoad(url, bodies, args.clients).start()
            try:
                time.sleep(args.seconds)
            finally:
                pushed = load.stop()
        stored = collector.stored() - stored_before
        if pushed.error:
            raise RuntimeError(f"the OTLP load failed: {pushed.error}")
        high_water = harness.peak_rss_bytes(collector.process.pid)
    finally:
        collector.stop()
    figures.add("resident memory at rest (MB)", report.megabytes(rest.peak))
    figures.add("peak resident memory under overload, process tree (MB)", report.megabytes(loaded.peak))
    figures.add("high-water mark of the main process, VmHWM (MB)", report.megabytes(high_water))
    figures.add("spans accepted/s", pushed.spans_per_second)
    figures.add("spans stored/s", stored / pushed.seconds)
    figures.add("backlog at the end: accepted minus stored (spans)", pushed.accepted_spans - stored)
    figures.add("refusals (429/503)", pushed.refusals)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=60.0, help="how long the clients push in each round")
    parser.add_argument("--clients", type=int, default=8, help="OTLP/HTTP clients pushing at once")
    parser.add_argument("--bodies", type=int, default=32, help="distinct agent requests the clients cycle through")
    args = parser.parse_args()

    rng = random.Random(16)
    bodies = [loop_detection.request(rng) for _ in range(args.bodies)]
    print(
        f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}; collector on "
        f"{harness.SHIPPED_CONFIG.name}; {args.clients} OTLP/HTTP clients pushing {loop_detection.SPANS_PER_REQUEST}"
        f"-span agent requests for {args.seconds:.0f}s, {args.rounds} rounds"
    )
    figures = report.Figures()
    with tempfile.TemporaryDirectory(prefix="overload-bench-") as tmp:
        for round_number in range(1, args.rounds + 1):
            run_round(figures, harness.fresh_dir(Path(tmp) / f"round-{round_number}"), bodies, args, round_number == 1)
            print(f"round {round_number} done", flush=True)
    print()
    figures.print(decimals=0)
    print()
    peak, rest = (
        figures["peak resident memory under overload, process tree (MB)"],
        figures["resident memory at rest (MB)"],
    )
    print(report.ratio_line("peak under overload / at rest", peak, rest))
    accepted, stored = figures["spans accepted/s"], figures["spans stored/s"]
    print(report.ratio_line("accepted / stored spans/s", accepted, stored))
    if not any(figures["refusals (429/503)"]) and max(report.ratios(accepted, stored)) < OVERLOAD_RATIO:
        print(
            "no refusals, and the store kept pace with what was accepted: the collector took data no faster than it "
            "stored it (the clients were held back by its answers, not refused)"
        )


if __name__ == "__main__":
    main()
