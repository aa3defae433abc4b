"""The in-process floor for logs (records/s) and metrics (data points/s), beside protobuf decoding alone.

As benchmarks/ingest.py's floor for traces: pre-encoded OTLP requests are decoded, walked into columns and
inserted column-oriented into a fresh chDB store through ClickHouseStore.send_logs / send_metrics, in batches
of the exporter queue's default size, with nothing around it; the baseline is decoding the same bytes only.
Logs are GenAI events (a gen_ai.client.inference.operation.details record with its messages as a map body,
in a span); metrics are the GenAI client metrics' shapes (a token-usage histogram, an operation-duration
histogram with exemplars, a request counter), 16 series per request.

Printed per signal: the floor's and decode's medians over the rounds, their ranges, and floor / decode.

    python benchmarks/signals_floor.py [--requests 200] [--rounds 3] [--signals logs,metrics]
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import harness
from opentelemetry.proto.logs.v1.logs_pb2 import LogsData
from opentelemetry.proto.metrics.v1.metrics_pb2 import AggregationTemporality, MetricsData

sys.path.insert(0, str(harness.REPO_ROOT))

from collector.exporterhelper import DEFAULT_BATCH_MAX_SPANS  # noqa: E402
from collector.queue import Batch  # noqa: E402
from exporters.clickhouse.config import ClickHouseConfig  # noqa: E402
from exporters.clickhouse.log_columns import log_record_count  # noqa: E402
from exporters.clickhouse.metric_columns import data_point_count  # noqa: E402
from exporters.clickhouse.store import ClickHouseStore  # noqa: E402

RECORDS_PER_REQUEST = 512
SERIES_PER_REQUEST = 16
BASE_NANOS = 1_700_000_000_000_000_000
TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864)
DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
MODELS = ("gpt-4o-mini", "gpt-4.1", "claude-sonnet-4-5", "llama-3.1-70b-instruct")


def logs_request(rng: random.Random) -> bytes:
    """RECORDS_PER_REQUEST GenAI content events under one resource and scope."""
    logs = LogsData()
    resource_logs = logs.resource_logs.add()
    resource_logs.resource.attributes.add(key="service.name").value.string_value = "agent"
    scope_logs = resource_logs.scope_logs.add()
    scope_logs.scope.name = "opentelemetry.instrumentation.openai_v2"
    for i in range(RECORDS_PER_REQUEST):
        record = scope_logs.log_records.add(
            time_unix_nano=BASE_NANOS + i,
            observed_time_unix_nano=BASE_NANOS + i,
            severity_number=9,
            event_name="gen_ai.client.inference.operation.details",
            trace_id=rng.randbytes(16),
            span_id=rng.randbytes(8),
            flags=1,
        )
        record.attributes.add(key="gen_ai.provider.name").value.string_value = "openai"
        record.attributes.add(key="gen_ai.request.model").value.string_value = rng.choice(MODELS)
        message = record.body.kvlist_value.values.add(key="gen_ai.input.messages").value.array_value.values.add()
        message.kvlist_value.values.add(key="role").value.string_value = "user"
        message.kvlist_value.values.add(key="content").value.string_value = f"question {rng.random()}"
    return logs.SerializeToString()


def metrics_request(rng: random.Random) -> bytes:
    """SERIES_PER_REQUEST series of each GenAI client metric shape, one point each."""
    metrics = MetricsData()
    resource_metrics = metrics.resource_metrics.add()
    resource_metrics.resource.attributes.add(key="service.name").value.string_value = "agent"
    scope_metrics = resource_metrics.scope_metrics.add()
    scope_metrics.scope.name = "genai_metrics"
    cumulative = AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE
    tokens = scope_metrics.metrics.add(name="gen_ai.client.token.usage", unit="{token}").histogram
    duration = scope_metrics.metrics.add(name="gen_ai.client.operation.duration", unit="s").histogram
    requests = scope_metrics.metrics.add(name="gen_ai.client.requests").sum
    tokens.aggregation_temporality = duration.aggregation_temporality = requests.aggregation_temporality = cumulative
    requests.is_monotonic = True
    for series in range(SERIES_PER_REQUEST):
        model = MODELS[series % len(MODELS)]
        for histogram, bounds in ((tokens, TOKEN_BUCKETS), (duration, DURATION_BUCKETS)):
            point = histogram.data_points.add(
                start_time_unix_nano=BASE_NANOS, time_unix_nano=BASE_NANOS + series, count=100, sum=rng.random()
            )
            point.attributes.add(key="gen_ai.request.model").value.string_value = model
            point.explicit_bounds.extend(bounds)
            point.bucket_counts.extend(rng.randrange(10) for _ in range(len(bounds) + 1))
        exemplar = duration.data_points[-1].exemplars.add(time_unix_nano=BASE_NANOS, as_double=rng.random())
        exemplar.trace_id, exemplar.span_id = rng.randbytes(16), rng.randbytes(8)
        point = requests.data_points.add(start_time_unix_nano=BASE_NANOS, time_unix_nano=BASE_NANOS, as_int=series)
        point.attributes.add(key="gen_ai.request.model").value.string_value = model
    return metrics.SerializeToString()


class Signal:
    """How one signal is made, decoded, counted and sent."""

    def __init__(
        self,
        name: str,
        unit: str,
        request: Callable[[random.Random], bytes],
        decode: Callable[[bytes], LogsData | MetricsData],
        count: Callable[[LogsData | MetricsData], int],
    ) -> None:
        self.name, self.unit, self.request, self.decode, self.count = name, unit, request, decode, count

    def send(self, store: ClickHouseStore, batch: Batch) -> None:
        if self.name == "logs":
            store.send_logs(batch)  # type: ignore[arg-type]
        else:
            store.send_metrics(batch)  # type: ignore[arg-type]


SIGNALS = {
    "logs": Signal("logs", "records/s", logs_request, LogsData.FromString, log_record_count),  # type: ignore[arg-type]
    "metrics": Signal(
        "metrics",
        "points/s",
        metrics_request,
        MetricsData.FromString,
        data_point_count,  # type: ignore[arg-type]
    ),
}


def decode_round(signal: Signal, bodies: list[bytes]) -> float:
    started = time.perf_counter()
    items = sum(signal.count(signal.decode(body)) for body in bodies)
    return items / (time.perf_counter() - started)


def floor_round(signal: Signal, bodies: list[bytes], store_dir: Path) -> float:
    """Items/s for decode → columns → column-oriented insert, in one process, nothing else."""
    harness.fresh_dir(store_dir)
    store = ClickHouseStore(ClickHouseConfig(endpoint=f"chdb://{store_dir}"), logging.getLogger("bench"))
    store.start()
    per_item = signal.count(signal.decode(bodies[0]))
    per_batch = max(1, DEFAULT_BATCH_MAX_SPANS // per_item)
    sent = 0
    started = time.perf_counter()
    for i in range(0, len(bodies), per_batch):
        items = [signal.decode(body) for body in bodies[i : i + per_batch]]
        count = sum(signal.count(item) for item in items)
        signal.send(store, Batch(items, count))  # type: ignore[arg-type]
        sent += count
    elapsed = time.perf_counter() - started
    store.close()
    return sent / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=200, help="OTLP requests per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--signals", default="logs,metrics", help="comma-separated: logs, metrics")
    args = parser.parse_args()
    chosen = [SIGNALS[name] for name in args.signals.split(",") if name]
    rng = random.Random(7)
    with tempfile.TemporaryDirectory(prefix="bench-signals-") as work:
        for signal in chosen:
            bodies = [signal.request(rng) for _ in range(args.requests)]
            floors, decodes = [], []
            for round_ in range(args.rounds):
                decodes.append(decode_round(signal, bodies))
                floors.append(floor_round(signal, bodies, Path(work) / f"{signal.name}-{round_}"))
            floor, decode = statistics.median(floors), statistics.median(decodes)
            print(
                f"{signal.name:8} floor {floor:12,.0f} {signal.unit} ({min(floors):,.0f}-{max(floors):,.0f})   "
                f"decode {decode:12,.0f} {signal.unit} ({min(decodes):,.0f}-{max(decodes):,.0f})   "
                f"floor/decode {floor / decode:.3f}   rounds {args.rounds}, pid {os.getpid()}"
            )


if __name__ == "__main__":
    main()
