"""A batch retried after its insert did commit is stored once, in otel_traces and in the tables its views fill."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import clickhouse_connect
import pytest
from opentelemetry.proto.trace.v1.trace_pb2 import Span, TracesData

from collector.config.decode import decode
from collector.pdata import encode
from collector.queue import Batch
from exporters.clickhouse.config import ClickHouseConfig
from exporters.clickhouse.dedup import batch_token, encoded_batch_token
from exporters.clickhouse.layout import NON_REPLICATED_DEDUPLICATION_WINDOW, Layout
from exporters.clickhouse.schema import storage_tables
from exporters.clickhouse.store import ClickHouseStore
from tests.conftest import make_traces
from tests.exporters.clickhouse.genai_spans import an_hour_ago, genai_traces
from tests.exporters.clickhouse.http_fixture import FakeClickHouse

LOGGER = logging.getLogger("test.dedup")
# genai_traces: 6 spans, 5 of them LLM calls, 2 findings.
GENAI_SPANS, GENAI_CALLS, GENAI_FINDINGS = 6, 5, 2
COUNTS = (
    "SELECT (SELECT count() FROM otel_traces), (SELECT count() FROM genai_calls), "
    "(SELECT count() FROM genai_findings), (SELECT sum(Calls) FROM genai_calls_hourly), "
    "(SELECT count() FROM otel_traces_trace_id_ts FINAL)"
)
# A server profile that cuts inserts into blocks of this many rows, as a small max_insert_block_size does.
BLOCK_ROWS = 1_000
LARGE_BATCH_SPANS = 5 * BLOCK_ROWS + 1
# batch_token([_golden("a"), _golden("b")]) as every version since the token was introduced computes it.
GOLDEN_TOKEN = "genai-collector-v1-89d143f35b2d05ebac441383ca845b8b"


def _another_batch(start: int) -> TracesData:
    """The same calls as genai_traces, but a different batch (a resource attribute differs)."""
    traces = genai_traces(start)
    marker = traces.resource_spans[0].resource.attributes.add()
    marker.key, marker.value.string_value = "batch", "another"
    return traces


@pytest.fixture
def chdb_store(chdb_path: Path) -> Iterator[ClickHouseStore]:
    store = ClickHouseStore(ClickHouseConfig(endpoint=f"chdb://{chdb_path}"), LOGGER)
    store.start()
    try:
        yield store
    finally:
        store.close()


def test_the_token_is_the_content_of_the_batch_in_order() -> None:
    first, second = make_traces(3, service="a"), make_traces(3, service="b")
    token = batch_token([first, second])
    # The same messages, even parsed back from bytes (a replay from disk after a restart): the same token.
    reparsed = [TracesData.FromString(m.SerializeToString()) for m in (first, second)]
    assert batch_token(reparsed) == token
    assert batch_token([second, first]) != token
    assert batch_token([first]) != token
    changed = TracesData()
    changed.CopyFrom(second)
    changed.resource_spans[0].scope_spans[0].spans[0].name = "other"
    assert batch_token([first, changed]) != token


def _golden(service: str) -> TracesData:
    """A batch whose token is fixed below: three spans of one trace, every id and time given."""
    traces = TracesData()
    resource_spans = traces.resource_spans.add()
    resource_spans.resource.attributes.add(key="service.name").value.string_value = service
    scope_spans = resource_spans.scope_spans.add()
    scope_spans.scope.name = "golden"
    for i in range(3):
        span = scope_spans.spans.add(
            trace_id=bytes(range(16)),
            span_id=bytes([i]) * 8,
            name="chat gpt-4o",
            kind=Span.SPAN_KIND_CLIENT,
            start_time_unix_nano=1_700_000_000_000_000_000,
            end_time_unix_nano=1_700_000_001_500_000_000,
        )
        span.attributes.add(key="gen_ai.request.model").value.string_value = "gpt-4o"
        span.attributes.add(key="gen_ai.usage.input_tokens").value.int_value = 10 + i
    return traces


def test_the_token_of_a_batch_never_changes_across_versions() -> None:
    # A batch queued by an older version and sent by this one must carry the token it had: fixed here.
    messages = [_golden("a"), _golden("b")]
    assert batch_token(messages) == GOLDEN_TOKEN
    assert encoded_batch_token(encode(m) for m in messages) == GOLDEN_TOKEN
    # As a queue holds the batch: encodings given for some messages, none for the others.
    batch = Batch(list(messages), 6, [encode(messages[0]), None])
    assert encoded_batch_token(batch.encodings()) == GOLDEN_TOKEN


def test_a_retried_batch_is_stored_once_in_every_table(chdb_store: ClickHouseStore) -> None:
    start = an_hour_ago()
    batch = Batch([genai_traces(start)], GENAI_SPANS)
    chdb_store.send(batch)
    once = chdb_store.query(COUNTS).rows
    assert once == [[GENAI_SPANS, GENAI_CALLS, GENAI_FINDINGS, GENAI_CALLS, 2]]
    # The answer to the first insert was lost; the exporter sends the same batch again.
    chdb_store.send(Batch([genai_traces(start)], GENAI_SPANS))
    assert chdb_store.query(COUNTS).rows == once
    # A different batch is stored, views and all.
    chdb_store.send(Batch([_another_batch(start)], GENAI_SPANS))
    twice = chdb_store.query(COUNTS).rows
    assert twice == [[2 * GENAI_SPANS, 2 * GENAI_CALLS, 2 * GENAI_FINDINGS, 2 * GENAI_CALLS, 2]]


def test_tables_made_before_deduplication_get_the_window(chdb_path: Path) -> None:
    store = ClickHouseStore(ClickHouseConfig(endpoint=f"chdb://{chdb_path}"), LOGGER)
    store.start()
    store.close()
    # As an older version left them: no window.
    client = clickhouse_connect.get_client(dsn=f"chdb://{chdb_path}")
    for table in storage_tables(store.tables):
        client.command(f"ALTER TABLE default.{table} MODIFY SETTING non_replicated_deduplication_window = 0")
    client.close()

    store.start()
    try:
        windows = store.query(
            "SELECT extract(create_table_query, 'non_replicated_deduplication_window = (\\\\d+)') "
            "FROM system.tables WHERE database = 'default' AND engine LIKE '%MergeTree'"
        ).rows
    finally:
        store.close()
    assert windows == [[str(NON_REPLICATED_DEDUPLICATION_WINDOW)]] * len(storage_tables(store.tables))


def test_replicated_tables_rely_on_keeper_for_the_window() -> None:
    assert not Layout("otel", cluster="genai").upgrade_settings("otel_traces")
    assert not Layout("otel", engine="SharedMergeTree").deduplication_settings()
    # MergeTree on a cluster keeps its own log, so it gets the window too.
    assert Layout("otel", cluster="genai", engine="MergeTree").deduplication_settings()


@pytest.fixture
def server(chdb_path: Path) -> Iterator[FakeClickHouse]:
    profile = {"max_insert_block_size": str(BLOCK_ROWS), "use_strict_insert_block_limits": "1"}
    with FakeClickHouse(chdb_path, profile=profile) as fake:
        yield fake


def _server_store(server: FakeClickHouse) -> ClickHouseStore:
    raw = {"endpoint": server.url, "database": "otel"}
    return ClickHouseStore(decode(ClickHouseConfig, raw, "exporters.clickhouse"), LOGGER)


def test_a_retried_batch_is_stored_once_over_http(server: FakeClickHouse) -> None:
    store = _server_store(server)
    store.start()
    try:
        start = an_hour_ago()
        store.send(Batch([genai_traces(start)], GENAI_SPANS))
        store.send(Batch([genai_traces(start)], GENAI_SPANS))
        assert store.query(COUNTS).rows == [[GENAI_SPANS, GENAI_CALLS, GENAI_FINDINGS, GENAI_CALLS, 2]]
    finally:
        store.close()
    tokens = [p.get("insert_deduplication_token") for _, _, p, _ in server.requests if "INSERT" in p.get("query", "")]
    assert len(tokens) == 2 and tokens[0] == tokens[1] and tokens[0]


def test_a_large_batch_split_into_blocks_is_stored_once_when_retried(server: FakeClickHouse) -> None:
    store = _server_store(server)
    store.start()
    try:
        batch = Batch([make_traces(LARGE_BATCH_SPANS)], LARGE_BATCH_SPANS)
        store.send(batch)
        blocks = store.query(
            "SELECT count() FROM system.parts WHERE database = 'otel' AND table = 'otel_traces' AND level = 0"
        ).rows
        # ClickHouse cut the insert into blocks, each deduplicated under the token plus its index.
        assert blocks == [[LARGE_BATCH_SPANS // BLOCK_ROWS + 1]]
        store.send(batch)
        assert store.query("SELECT count(), uniqExact(SpanId) FROM otel_traces").rows == [
            [LARGE_BATCH_SPANS, LARGE_BATCH_SPANS]
        ]
    finally:
        store.close()
