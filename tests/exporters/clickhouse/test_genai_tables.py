"""genai_calls, genai_findings and the hourly rollup, filled by the views as spans reach otel_traces."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

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
                       "gpt-4o", "gpt-4o-2025-01-01", 1000, 100, 0, 0, 0, 0.02, "price_table", 2 * SECONDS, 0.4,
                       "stop", "Unset", "conv-1", 0]  # fmt: skip
    assert rows[4][4:8] == ["globex", "anthropic", "chat", "claude-sonnet-4-5"]
    assert rows[4][12:17] == [300, 0, 0.5, "price_table", 10 * SECONDS]
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
