"""benchmarks/processors.py builds what it says it times: the shipped processors, in order, doing their work.

Nothing here times anything (timing belongs in the benchmark); it checks the chain the figures come from.
"""

from __future__ import annotations

import asyncio
import importlib.util
import sys
import time
from collections.abc import Iterator
from types import ModuleType

import pytest
import yaml
from opentelemetry.proto.trace.v1.trace_pb2 import TracesData

from collector.pdata import SpanAttributes
from tests.conftest import REPO_ROOT

SCRIPT = REPO_ROOT / "benchmarks" / "processors.py"


@pytest.fixture(scope="module")
def bench_module() -> Iterator[ModuleType]:
    # Loaded under a name of its own: the script's file name is the name of the project's processors package.
    spec = importlib.util.spec_from_file_location("processors_benchmark", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    path = list(sys.path)
    spec.loader.exec_module(module)
    yield module
    sys.path[:] = path


def test_the_chain_is_the_shipped_pipeline_without_the_memory_limiter(bench_module: ModuleType) -> None:
    bench = bench_module.Bench(REPO_ROOT, time.perf_counter)
    shipped = yaml.safe_load((REPO_ROOT / "otel-config.yaml").read_text())["service"]["pipelines"]["traces"]
    assert bench.stage_names == [name for name in shipped["processors"] if name != "memory_limiter"]


def test_the_batches_come_out_of_the_chain_priced_and_scanned(bench_module: ModuleType) -> None:
    bench = bench_module.Bench(REPO_ROOT, time.perf_counter)
    [body] = bench.bodies(1)
    traces = TracesData.FromString(body)
    asyncio.run(bench.chain().consume(traces))
    spans = [span for rs in traces.resource_spans for scope in rs.scope_spans for span in scope.spans]
    assert len(spans) == bench.spans_per_request
    priced = [span for span in spans if "gen_ai.usage.cost.amount" in SpanAttributes(span)]
    assert len(priced) == bench.spans_per_request // 2  # every LLM call (one span in two)
    assert any(event.name == "gen_ai.security.finding" for span in spans for event in span.events)  # loops found
