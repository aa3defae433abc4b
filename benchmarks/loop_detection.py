"""What genai_loop_detection costs ingest, and the memory it holds per 10,000 open traces.

Ingest: OTLP/HTTP requests of 512 spans from busy agents (each request holds
the spans of 64 agent runs: an LLM call and a tool call per step, growing
conversations in the LLM calls' messages, one run in eight looping on the same
tool call) into a collector process storing into chDB (benchmarks/ingest.py's
harness), with genai_loop_detection in the pipeline and without, in the same
round; the median of the per-round ratios is printed.

Memory: the processor alone is fed 10,000 agent runs of 8 steps that stay open
(no run ends or idles out); tracemalloc's count of the memory it then holds,
against the same spans' encoded size as a baseline for scale.

    python benchmarks/loop_detection.py [--rounds 3] [--requests 100] [--skip-ingest]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import random
import statistics
import sys
import tempfile
import tracemalloc
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from opentelemetry.proto.trace.v1.trace_pb2 import Span, TracesData  # noqa: E402

from collector.component import ComponentID, ComponentSettings  # noqa: E402
from collector.pdata import set_any_value  # noqa: E402
from collector.telemetry import Telemetry  # noqa: E402
from processors.genai_loop_detection import GenAiLoopDetectionProcessor  # noqa: E402
from processors.genai_loop_detection.config import GenAiLoopDetectionConfig  # noqa: E402

SPANS_PER_REQUEST = 512
RUNS_PER_REQUEST = 64
STEPS = SPANS_PER_REQUEST // RUNS_PER_REQUEST // 2  # an LLM call and a tool call per step
OPEN_TRACES = 10_000
SECOND = 1_000_000_000
TOOLS = ("search", "open_file", "query_db", "fetch_url")


def _add(span: Span, attributes: dict[str, object]) -> None:
    for key, value in attributes.items():
        pair = span.attributes.add()
        pair.key = key
        set_any_value(pair.value, value)


def agent_run(rng: random.Random, spans: list[Span], looping: bool) -> None:
    """The spans of one agent run: STEPS rounds of an LLM call asking for a tool call, and that call."""
    trace_id = rng.randbytes(16)
    clock = 1_700_000_000 * SECOND + rng.randrange(10**12)
    messages: list[dict[str, object]] = [
        {"role": "user", "parts": [{"type": "text", "content": "find the report " * 8}]}
    ]
    for step in range(STEPS):
        tool = TOOLS[0] if looping else rng.choice(TOOLS)
        arguments = {"query": "report"} if looping else {"query": f"report {step}", "page": rng.randrange(9)}
        call_id = f"call_{rng.getrandbits(48):x}"
        asked = {
            "role": "assistant",
            "parts": [{"type": "tool_call", "id": call_id, "name": tool, "arguments": arguments}],
        }
        chat = Span(trace_id=trace_id, span_id=rng.randbytes(8), name="chat gpt-4o", start_time_unix_nano=clock)
        clock += rng.randrange(SECOND // 2, 3 * SECOND)
        chat.end_time_unix_nano = clock
        _add(
            chat,
            {
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "openai",
                "gen_ai.request.model": "gpt-4o",
                "gen_ai.usage.input_tokens": 200 + 50 * step,
                "gen_ai.usage.output_tokens": 30,
                "gen_ai.input.messages": json.dumps(messages),
                "gen_ai.output.messages": json.dumps([asked]),
            },
        )
        spans.append(chat)
        tool_span = Span(
            trace_id=trace_id, span_id=rng.randbytes(8), name=f"execute_tool {tool}", start_time_unix_nano=clock
        )
        clock += SECOND // 5
        tool_span.end_time_unix_nano = clock
        _add(
            tool_span,
            {
                "gen_ai.operation.name": "execute_tool",
                "gen_ai.tool.name": tool,
                "gen_ai.tool.call.id": call_id,
                "gen_ai.tool.call.arguments": json.dumps(arguments),
            },
        )
        spans.append(tool_span)
        result = "no results" if looping else f"result {rng.random():.6f} " * 4
        messages += [
            asked,
            {"role": "tool", "parts": [{"type": "tool_call_response", "id": call_id, "response": result}]},
        ]


def request(rng: random.Random) -> bytes:
    traces = TracesData()
    resource_spans = traces.resource_spans.add()
    resource_spans.resource.attributes.add(key="service.name").value.string_value = "agents"
    spans: list[Span] = []
    for run in range(RUNS_PER_REQUEST):
        agent_run(rng, spans, looping=run % 8 == 0)
    resource_spans.scope_spans.add().spans.extend(spans)
    return traces.SerializeToString()


class _Null:
    async def consume(self, traces: TracesData) -> None:
        return None


def memory_per_open_traces(rng: random.Random) -> tuple[float, float]:
    """(MB the processor holds with OPEN_TRACES runs open, MB of those spans encoded as OTLP)."""
    settings = ComponentSettings(
        ComponentID("genai_loop_detection"), "processor", logging.getLogger("bench"), Telemetry()
    )
    config = GenAiLoopDetectionConfig(max_traces=OPEN_TRACES)
    bodies = [request(rng) for _ in range(OPEN_TRACES // RUNS_PER_REQUEST + 1)]
    batches = [TracesData.FromString(body) for body in bodies]
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    processor = GenAiLoopDetectionProcessor(settings, config, _Null())
    for traces in batches:
        asyncio.run(processor.consume(traces))
    held = sum(stat.size_diff for stat in tracemalloc.take_snapshot().compare_to(before, "filename"))
    tracemalloc.stop()
    runs_fed = len(batches) * RUNS_PER_REQUEST
    held_runs = len(processor.traces)  # the rest were evicted by max_traces
    encoded = sum(map(len, bodies)) * held_runs / runs_fed
    return held / 1e6, encoded / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--skip-ingest", action="store_true")
    args = parser.parse_args()
    rng = random.Random(11)
    held, encoded = memory_per_open_traces(rng)
    print(
        f"memory held with {OPEN_TRACES:,} open traces of {2 * STEPS} spans: {held:,.1f} MB "
        f"({held * 1e6 / OPEN_TRACES / 1024:,.1f} KiB a trace); the same spans encoded: {encoded:,.1f} MB"
    )
    if args.skip_ingest:
        return
    import ingest  # benchmarks/ingest.py, beside this script: its collector process and end-to-end round

    bodies = [request(rng) for _ in range(args.requests)]
    off: list[float] = []
    on: list[float] = []
    with tempfile.TemporaryDirectory(prefix="loop-bench-") as tmp:
        work = Path(tmp)
        ingest.end_to_end_round(bodies, work / "warm-up", work, 4)  # the first run is always slowest
        for round_no in range(args.rounds):
            off.append(ingest.end_to_end_round(bodies, work / f"off-{round_no}", work, 4))
            on.append(ingest.end_to_end_round(bodies, work / f"on-{round_no}", work, 4, "[genai_loop_detection]"))
    ratios = [a / b for a, b in zip(on, off, strict=True)]
    for name, values in (("ingest without genai_loop_detection (spans/s)", off), ("ingest with it (spans/s)", on)):
        shown = ", ".join(f"{v:,.0f}" for v in values)
        print(f"{name:<48} median {statistics.median(values):>10,.0f}   rounds: {shown}")
    shown = ", ".join(f"{r:.2f}" for r in ratios)
    print(f"ingest with / without: median {statistics.median(ratios):.2f}x   rounds: {shown}")


if __name__ == "__main__":
    main()
