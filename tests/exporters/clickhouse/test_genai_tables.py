"""genai_calls, genai_findings and the hourly rollup, filled by the views as spans reach otel_traces."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import clickhouse_connect
import pytest
from opentelemetry.proto.trace.v1.trace_pb2 import TracesData

from collector.pdata import set_any_value
from collector.queue import Batch
from exporters.clickhouse.config import ClickHouseConfig
from exporters.clickhouse.store import ClickHouseStore
from tests.exporters.clickhouse.genai_spans import SECONDS, TRACE_A, TRACE_B, an_hour_ago, genai_traces


@pytest.fixture
def store_with_calls(chdb_path: Path) -> Iterator[tuple[ClickHouseStore, int]]:
    store = ClickHouseStore(ClickHouseConfig(endpoint=f"chdb://{chdb_path}"), logging.getLogger("test.genai"))
    store.start()
    start = an_hour_ago()
    try:
        store.send(Batch([genai_traces(start)], 6))
        yield store, start
    finally:
        store.close()


def test_one_typed_row_per_llm_call_and_none_for_other_spans(store_with_calls: tuple[ClickHouseStore, int]) -> None:
    store, start = store_with_calls
    rows = store.query(
        "SELECT toUnixTimestamp64Nano(Timestamp), TraceId, SpanId, ServiceName, Tenant, Provider, Operation, "
        "RequestModel, ResponseModel, InputTokens, OutputTokens, CacheReadTokens, CacheCreationTokens, "
        "ReasoningTokens, Cost, CostSource, Duration, TimeToFirstChunk, FinishReason, StatusCode, ConversationId, "
        "FindingCount FROM genai_calls ORDER BY SpanId"
    ).rows
    assert [row[2] for row in rows] == ["0101010101010101", "0202020202020202", "0303030303030303",
                                        "0505050505050505", "0606060606060606"]  # fmt: skip
    assert rows[1] == [start + SECONDS, TRACE_A.hex(), "0202020202020202", "support-agent", "acme", "openai", "chat",
                       "gpt-4o", "gpt-4o-2025-01-01", 1000, 100, 0, 0, 0, 0.02, "local", 2 * SECONDS, 0.4,
                       "stop", "Unset", "conv-1", 0]  # fmt: skip
    assert rows[4][4:8] == ["globex", "anthropic", "chat", "claude-sonnet-4-5"]
    # Previous names: v1.41.0's cache write and the former gen_ai.usage.cost with its source "computed".
    assert rows[4][12:17] == [300, 0, 0.5, "local", 10 * SECONDS]
    assert rows[4][19] == "Error" and rows[4][21] == 1
    # No price and no stream: cost 0 with an empty source, and no time to first chunk (not 0).
    assert rows[3][6] == "embeddings" and rows[3][14:18] == [0.0, "", 100_000_000, None]


def test_one_row_per_finding_with_the_other_attributes_in_a_map(
    store_with_calls: tuple[ClickHouseStore, int],
) -> None:
    store, start = store_with_calls
    rows = store.query(
        "SELECT toUnixTimestamp64Nano(Timestamp), TraceId, SpanId, ServiceName, Tenant, Detector, Category, "
        "Severity, Confidence, Attributes FROM genai_findings ORDER BY Timestamp"
    ).rows
    assert rows == [
        [start + SECONDS, TRACE_B.hex(), "0606060606060606", "research-agent", "globex", "aws_access_key_id",
         "secret", "critical", 0.95, {"gen_ai.security.location": "input"}],
        [start + 5 * SECONDS, TRACE_A.hex(), "0303030303030303", "support-agent", "acme", "call_cycle",
         "agent_loop", "high", 0.85, {
             "gen_ai.security.loop.scope": "trace",
             "gen_ai.security.loop.pattern": "chat gpt-4o -> execute_tool search",
             "gen_ai.security.loop.repetitions": "3",
             "gen_ai.security.loop.cost": "0.06",
         }],
    ]  # fmt: skip


def test_the_hourly_rollup_aggregates_across_inserts(store_with_calls: tuple[ClickHouseStore, int]) -> None:
    store, start = store_with_calls
    # A second batch of the same calls (another batch, so not a retry the store deduplicates):
    # the rollup merges its states with the first one's.
    again = genai_traces(start)
    marker = again.resource_spans[0].resource.attributes.add()
    marker.key, marker.value.string_value = "batch", "second"
    store.send(Batch([again], 6))
    rows = store.query(
        "SELECT toUnixTimestamp(Hour), sum(Calls), sum(Errors), sum(InputTokens), sum(ReasoningTokens), "
        "round(sum(Cost), 6), quantilesMerge(0.5, 0.9, 0.95, 0.99)(DurationQuantiles)[1] "
        "FROM genai_calls_hourly WHERE RequestModel = 'gpt-4o' GROUP BY Hour"
    ).rows
    assert rows == [[start // SECONDS, 6, 0, 6000, 80, 0.12, 2_000_000_000]]
    engine = store.query("SELECT engine FROM system.tables WHERE name = 'genai_calls_hourly'").rows
    assert engine == [["AggregatingMergeTree"]]


def _calls_and_bystanders(start: int) -> TracesData:
    """One chat call, the spans around it that are not calls, and the proxy's record of the same call."""
    traces = TracesData()
    spans = traces.resource_spans.add().scope_spans.add().spans
    call = {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "gpt-4o",
        "gen_ai.usage.input_tokens": 10,
        "gen_ai.usage.cost.amount": 0.001,
    }
    operations = (
        "invoke_agent", "invoke_workflow", "handle_conversation_turn", "create_agent", "execute_tool", "plan",
        "retrieval", "search_memory", "upsert_memory", "apply_guardrail", "fetch_response",
    )  # fmt: skip
    for number, operation in enumerate(operations, start=10):
        span = spans.add(trace_id=TRACE_A, span_id=bytes([number]) * 8, name=operation, start_time_unix_nano=start)
        for key, value in {**call, "gen_ai.operation.name": operation}.items():
            set_any_value(span.attributes.add(key=key).value, value)
    for number, extra in ((1, {}), (2, {"gen_ai.call.duplicate_of": "0101010101010101"})):
        span = spans.add(trace_id=TRACE_A, span_id=bytes([number]) * 8, name="chat gpt-4o", start_time_unix_nano=start)
        for key, value in {**call, **extra}.items():
            set_any_value(span.attributes.add(key=key).value, value)
    return traces


def test_only_calls_to_a_model_count_and_each_once(chdb_path: Path) -> None:
    store = ClickHouseStore(ClickHouseConfig(endpoint=f"chdb://{chdb_path}"), logging.getLogger("test.genai"))
    store.start()
    try:
        store.send(Batch([_calls_and_bystanders(an_hour_ago())], 13))
        calls = store.query("SELECT SpanId, Operation FROM genai_calls").rows
        hourly = store.query("SELECT sum(Calls), sum(InputTokens), sum(Cost) FROM genai_calls_hourly").rows
        kept = store.query("SELECT count() FROM otel_traces").rows
    finally:
        store.close()
    assert calls == [["0101010101010101", "chat"]]
    assert hourly == [[1, 10, 0.001]]
    assert kept == [[13]]  # every span stays in otel_traces, the marked duplicate too


def test_a_calls_view_made_by_an_older_version_gets_todays_select(chdb_path: Path) -> None:
    config = ClickHouseConfig(endpoint=f"chdb://{chdb_path}")
    store = ClickHouseStore(config, logging.getLogger("test.genai"))
    store.start()
    store.close()
    older = "SELECT * FROM default.otel_traces WHERE SpanAttributes['gen_ai.operation.name'] = 'chat'"
    client = clickhouse_connect.get_client(dsn=f"chdb://{chdb_path}")
    try:
        client.command(f"ALTER TABLE default.otel_traces_genai_calls_mv MODIFY QUERY {older}")
    finally:
        client.close()

    store = ClickHouseStore(config, logging.getLogger("test.genai"))
    store.start()
    try:
        store.send(Batch([_calls_and_bystanders(an_hour_ago())], 13))
        [[select]] = store.query("SELECT as_select FROM system.tables WHERE name = 'otel_traces_genai_calls_mv'").rows
        calls = store.query("SELECT count() FROM genai_calls").rows
    finally:
        store.close()
    assert "gen_ai.call.duplicate_of" in str(select)
    assert calls == [[1]]
