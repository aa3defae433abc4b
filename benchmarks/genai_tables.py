"""GenAI tables: materialized views over otel_traces against the exporter writing them itself, on chDB.

Three ways to store the same batches of GenAI chat spans (1 in FINDING_EVERY with
a security finding event), each timed from decoded spans to rows committed:

- ``otel_traces only``: the trace schema alone, as before the GenAI tables (the baseline);
- ``views``: the shipped schema, where materialized views fill genai_calls and
  genai_findings from each otel_traces insert, and the hourly rollup from genai_calls;
- ``direct``: the same tables without the two views over otel_traces; Python
  builds the genai_calls and genai_findings Arrow tables next to the otel_traces
  one and inserts all three (the rollup view over genai_calls stays).

Each round runs the three in turn on fresh directories; medians of spans/s and
their ratios to the baseline are printed. Both ways are checked to store the
same genai_calls and genai_findings row counts.

    python benchmarks/genai_tables.py [--batches 8] [--batch-spans 8192] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import clickhouse_connect
import pyarrow as pa
from clickhouse_connect.driver.client import Client
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, TracesData

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from collector import semconv  # noqa: E402
from collector.findings import CATEGORY, CONFIDENCE, DETECTOR, FINDING_EVENT, SEVERITY, finding_event  # noqa: E402
from exporters.clickhouse import genai_schema, schema  # noqa: E402
from exporters.clickhouse.columns import SERVICE_NAME_KEY, STATUS_CODE_NAMES, traces_to_table  # noqa: E402
from exporters.clickhouse.layout import Layout  # noqa: E402

DEFAULT_BATCHES = 8
DEFAULT_BATCH_SPANS = 8_192
DEFAULT_ROUNDS = 3
FINDING_EVERY = 20
MODELS = ("gpt-4o-mini", "gpt-4.1", "claude-sonnet-4-5", "llama-3.1-70b-instruct")
PROVIDERS = ("openai", "openai", "anthropic", "vllm")
TENANTS = ("acme", "globex", "initech")


def build_batch(rng: random.Random, spans: int) -> TracesData:
    """``spans`` chat spans with the attributes the shipped pipeline leaves on them."""
    traces = TracesData()
    resource_spans = traces.resource_spans.add()
    resource_spans.resource.attributes.add(key="service.name").value.string_value = "support-agent"
    scope_spans = resource_spans.scope_spans.add()
    scope_spans.scope.name = "genai-collector.proxy"
    now = time.time_ns()
    for i in range(spans):
        which = rng.randrange(len(MODELS))
        model = MODELS[which]
        span = scope_spans.spans.add(
            trace_id=rng.randbytes(16),
            span_id=rng.randbytes(8),
            name=f"chat {model}",
            kind=Span.SPAN_KIND_CLIENT,
            start_time_unix_nano=now,
            end_time_unix_nano=now + rng.randrange(200_000_000, 9_000_000_000),
        )
        attrs = span.attributes
        for key, text in (
            ("gen_ai.operation.name", "chat"),
            ("gen_ai.provider.name", PROVIDERS[which]),
            ("gen_ai.request.model", model),
            ("gen_ai.response.model", f"{model}-2025-06-01"),
            ("gen_ai.response.id", f"chatcmpl-{rng.randbytes(12).hex()}"),
            ("gen_ai.conversation.id", f"conv-{rng.randrange(1000)}"),
            ("gen_ai.usage.cost.source", "local"),
            ("gen_ai.usage.cost.currency", "USD"),
            ("tenant.id", TENANTS[i % len(TENANTS)]),
            ("server.address", "api.openai.com"),
        ):
            attrs.add(key=key).value.string_value = text
        for key, number in (
            ("gen_ai.usage.input_tokens", rng.randrange(50, 8000)),
            ("gen_ai.usage.output_tokens", rng.randrange(10, 1500)),
            ("gen_ai.usage.cache_read.input_tokens", rng.randrange(0, 50)),
        ):
            attrs.add(key=key).value.int_value = number
        attrs.add(key="gen_ai.usage.cost.amount").value.double_value = rng.random() / 100
        attrs.add(key="gen_ai.response.time_to_first_chunk").value.double_value = rng.random()
        attrs.add(key="gen_ai.request.stream").value.bool_value = True
        attrs.add(key="gen_ai.response.finish_reasons").value.array_value.values.add().string_value = "stop"
        if i % FINDING_EVERY == 0:
            event = finding_event("secrets.aws_key", "secret", "high", 0.9, {"gen_ai.security.location": "input"})
            event.time_unix_nano = now
            span.events.append(event)
            attrs.add(key="gen_ai.security.findings.count").value.int_value = 1
    return traces


def _text(value: AnyValue) -> str:
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return value.string_value
    if kind == "int_value":
        return str(value.int_value)
    if kind == "double_value":
        return repr(value.double_value)
    return ""


def _int(value: AnyValue | None) -> int:
    return value.int_value if value is not None and value.WhichOneof("value") == "int_value" else 0


def _float(value: AnyValue | None) -> float | None:
    if value is None:
        return None
    kind = value.WhichOneof("value")
    if kind == "double_value":
        return value.double_value
    if kind == "int_value":
        return float(value.int_value)
    return None


def genai_tables(batches: Iterable[TracesData]) -> tuple[pa.Table, pa.Table]:
    """The ``direct`` way: genai_calls and genai_findings rows built in Python from the spans."""
    calls: dict[str, list[object]] = {name: [] for name in CALL_COLUMNS}
    findings: dict[str, list[object]] = {name: [] for name in FINDING_COLUMNS}
    operations = semconv.MODEL_CALL_OPERATIONS
    core = frozenset(genai_schema.FINDING_CORE_KEYS)
    empty = AnyValue()
    for traces in batches:
        for resource_spans in traces.resource_spans:
            service = next(
                (kv.value.string_value for kv in resource_spans.resource.attributes if kv.key == SERVICE_NAME_KEY), ""
            )
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    attrs = {kv.key: kv.value for kv in span.attributes}
                    trace_id, span_id = span.trace_id.hex(), span.span_id.hex()
                    tenant = _text(attrs.get("tenant.id", empty))
                    for event in span.events:
                        if event.name != FINDING_EVENT:
                            continue
                        values = {kv.key: kv.value for kv in event.attributes}
                        for column, value in zip(
                            FINDING_COLUMNS,
                            (
                                event.time_unix_nano,
                                trace_id,
                                span_id,
                                service,
                                tenant,
                                _text(values.get(DETECTOR, empty)),
                                _text(values.get(CATEGORY, empty)),
                                _text(values.get(SEVERITY, empty)),
                                _float(values.get(CONFIDENCE)) or 0.0,
                                [(k, _text(v)) for k, v in values.items() if k not in core],
                            ),
                            strict=True,
                        ):
                            findings[column].append(value)
                    operation = attrs.get("gen_ai.operation.name")
                    if operation is None or operation.string_value not in operations:
                        continue
                    if semconv.CALL_DUPLICATE_OF in attrs:
                        continue
                    reasons = attrs.get("gen_ai.response.finish_reasons")
                    start, end = span.start_time_unix_nano, span.end_time_unix_nano
                    for column, value in zip(
                        CALL_COLUMNS,
                        (
                            start,
                            trace_id,
                            span_id,
                            service,
                            tenant,
                            _text(attrs.get("gen_ai.provider.name", empty)),
                            operation.string_value,
                            _text(attrs.get("gen_ai.request.model", empty)),
                            _text(attrs.get("gen_ai.response.model", empty)),
                            _int(attrs.get("gen_ai.usage.input_tokens")),
                            _int(attrs.get("gen_ai.usage.output_tokens")),
                            _int(attrs.get("gen_ai.usage.cache_read.input_tokens")),
                            _int(attrs.get("gen_ai.usage.cache_write.input_tokens")),
                            _int(attrs.get("gen_ai.usage.reasoning.output_tokens")),
                            _float(attrs.get("gen_ai.usage.cost.amount")) or 0.0,
                            _text(attrs.get("gen_ai.usage.cost.source", empty)),
                            end - start if end > start else 0,
                            _float(attrs.get("gen_ai.response.time_to_first_chunk")),
                            reasons.array_value.values[0].string_value
                            if reasons is not None and reasons.array_value.values
                            else "",
                            STATUS_CODE_NAMES.get(span.status.code, "Unset"),
                            _text(attrs.get("gen_ai.conversation.id", empty)),
                            _int(attrs.get("gen_ai.security.findings.count")),
                        ),
                        strict=True,
                    ):
                        calls[column].append(value)
    return (
        pa.Table.from_arrays([pa.array(calls[c], CALL_TYPES[c]) for c in CALL_COLUMNS], names=list(CALL_COLUMNS)),
        pa.Table.from_arrays(
            [pa.array(findings[c], FINDING_TYPES[c]) for c in FINDING_COLUMNS], names=list(FINDING_COLUMNS)
        ),
    )


_TEXT, _U64, _F64, _NS = pa.string(), pa.uint64(), pa.float64(), pa.timestamp("ns")
CALL_TYPES: dict[str, pa.DataType] = {
    "Timestamp": _NS,
    "TraceId": _TEXT,
    "SpanId": _TEXT,
    "ServiceName": _TEXT,
    "Tenant": _TEXT,
    "Provider": _TEXT,
    "Operation": _TEXT,
    "RequestModel": _TEXT,
    "ResponseModel": _TEXT,
    "InputTokens": _U64,
    "OutputTokens": _U64,
    "CacheReadTokens": _U64,
    "CacheCreationTokens": _U64,
    "ReasoningTokens": _U64,
    "Cost": _F64,
    "CostSource": _TEXT,
    "Duration": _U64,
    "TimeToFirstChunk": _F64,
    "FinishReason": _TEXT,
    "StatusCode": _TEXT,
    "ConversationId": _TEXT,
    "FindingCount": pa.uint32(),
}
CALL_COLUMNS = tuple(CALL_TYPES)
FINDING_TYPES: dict[str, pa.DataType] = {
    "Timestamp": _NS,
    "TraceId": _TEXT,
    "SpanId": _TEXT,
    "ServiceName": _TEXT,
    "Tenant": _TEXT,
    "Detector": _TEXT,
    "Category": _TEXT,
    "Severity": _TEXT,
    "Confidence": _F64,
    "Attributes": pa.map_(_TEXT, _TEXT),
}
FINDING_COLUMNS = tuple(FINDING_TYPES)


def _open(directory: Path, statements: list[str]) -> Client:
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    client = clickhouse_connect.get_client(dsn=f"chdb://{directory}")
    for statement in statements:
        client.command(statement)
    return client


def _statements(way: str) -> list[str]:
    layout, tables = Layout("default"), schema.TraceTables("otel_traces")
    genai = genai_schema.GenAITables(tables.traces)
    trace_only = schema.schema_statements(layout, tables)[:4]
    if way == "otel_traces only":
        return trace_only
    if way == "views":
        return schema.schema_statements(layout, tables)
    return [
        *trace_only,
        genai_schema.create_calls_table_sql(layout, genai),
        genai_schema.create_findings_table_sql(layout, genai),
        genai_schema.create_calls_hourly_table_sql(layout, genai),
        genai_schema.create_calls_hourly_view_sql(layout, genai),
    ]


def run_way(way: str, batches: list[TracesData], directory: Path) -> tuple[float, list[int]]:
    """Spans/s storing ``batches`` the ``way`` way, and the genai row counts it left."""
    client = _open(directory, _statements(way))
    insert: Callable[[TracesData], None]
    if way == "direct":

        def insert(traces: TracesData) -> None:
            client.insert_arrow("otel_traces", traces_to_table([traces]))
            calls, findings = genai_tables([traces])
            client.insert_arrow("genai_calls", calls)
            client.insert_arrow("genai_findings", findings)

    else:

        def insert(traces: TracesData) -> None:
            client.insert_arrow("otel_traces", traces_to_table([traces]))

    started = time.perf_counter()
    for traces in batches:
        insert(traces)
    elapsed = time.perf_counter() - started
    counts = [0, 0]
    if way != "otel_traces only":
        row = client.query("SELECT (SELECT count() FROM genai_calls), (SELECT count() FROM genai_findings)")
        counts = [int(v) for v in row.result_rows[0]]
    client.close()
    spans = sum(len(ss.spans) for t in batches for rs in t.resource_spans for ss in rs.scope_spans)
    return spans / elapsed, counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, default=DEFAULT_BATCHES)
    parser.add_argument("--batch-spans", type=int, default=DEFAULT_BATCH_SPANS)
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS)
    args = parser.parse_args()
    rng = random.Random(7)
    batches = [build_batch(rng, args.batch_spans) for _ in range(args.batches)]
    print(f"{args.batches} batches x {args.batch_spans} spans per round, {args.rounds} rounds")
    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}")
    ways = ("otel_traces only", "views", "direct")
    rates: dict[str, list[float]] = {way: [] for way in ways}
    counts: dict[str, list[int]] = {}
    with tempfile.TemporaryDirectory(prefix="genai-tables-bench-") as tmp:
        for round_no in range(1, args.rounds + 1):
            for way in ways:
                rate, counts[way] = run_way(way, batches, Path(tmp) / f"{way}-{round_no}".replace(" ", "_"))
                rates[way].append(rate)
            print(f"round {round_no}: " + "   ".join(f"{way} {rates[way][-1]:>9,.0f}" for way in ways) + " spans/s")
    if counts["views"] != counts["direct"]:
        raise SystemExit(f"the two ways stored different rows: views {counts['views']}, direct {counts['direct']}")
    baseline = statistics.median(rates["otel_traces only"])
    print()
    for way in ways:
        median = statistics.median(rates[way])
        print(f"{way:<18} {median:>9,.0f} spans/s (median)   {median / baseline:>5.2f}x otel_traces only")
    print(f"genai_calls rows {counts['views'][0]}, genai_findings rows {counts['views'][1]} (both ways)")


if __name__ == "__main__":
    main()
