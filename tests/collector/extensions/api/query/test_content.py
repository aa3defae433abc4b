"""Content events joined to their calls: the older per-message events in the newest message shape, the
operation.details event's attributes as they are, and a scope that shows a call's content only with the call."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, LogsData

from collector import semconv
from collector.extensions.api.query.content import assemble, calls_content
from collector.extensions.api.query.runner import QueryRunner
from collector.extensions.api.query.sql import Scope, TimeRange
from collector.extensions.api.query.tables import StoreTables
from collector.pdata import any_value, set_any_value
from collector.queue import Batch
from exporters.clickhouse.config import ClickHouseConfig
from exporters.clickhouse.store import ClickHouseStore
from processors.genai_normalize.events import INFERENCE_DETAILS_EVENT, normalize_record
from tests.conftest import make_traces

KEY = ("ab" * 16, "cd" * 8)


def _record(event: str, body: Any = None, attributes: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "TraceId": KEY[0],
        "SpanId": KEY[1],
        "EventName": event,
        "Body": "" if body is None else json.dumps(body),
        "ContentAttributes": attributes or {},
    }


def _decoded(found: dict[tuple[str, str], dict[str, str]]) -> dict[str, Any]:
    return {name: json.loads(text) for name, text in found[KEY].items()}


def test_per_message_events_become_the_newest_message_shape_in_time_order() -> None:
    records = [
        _record("gen_ai.system.message", {"content": "Be brief."}),
        _record(
            "gen_ai.user.message",
            {"content": [{"type": "text", "text": "What is this?"}, {"type": "image_url", "image_url": {"url": "u"}}]},
        ),
        _record(
            "gen_ai.assistant.message",
            {
                "content": "Let me look.",
                "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "look", "arguments": "not json"}}],
            },
        ),
        _record("gen_ai.tool.message", {"content": "a cat", "id": "c1"}),
        # Choices as their index says, not as they were recorded; a choice without its message still counts.
        _record("gen_ai.choice", {"index": 1, "finish_reason": "length", "message": {"content": "A c"}}),
        _record("gen_ai.choice", {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": 2}}),
    ]
    assert _decoded(assemble(records)) == {
        semconv.INPUT_MESSAGES: [
            {"role": "system", "parts": [{"type": "text", "content": "Be brief."}]},
            {
                "role": "user",
                "parts": [
                    {"type": "text", "content": "What is this?"},
                    {"type": "uri", "modality": "image", "uri": "u"},
                ],
            },
            {
                "role": "assistant",
                "parts": [
                    {"type": "text", "content": "Let me look."},
                    {"type": "tool_call", "id": "c1", "name": "look", "arguments": "not json"},
                ],
            },
            {"role": "tool", "parts": [{"type": "tool_call_response", "id": "c1", "response": "a cat"}]},
        ],
        semconv.OUTPUT_MESSAGES: [
            {"role": "assistant", "parts": [{"type": "text", "content": "2"}], "finish_reason": "stop"},
            {"role": "assistant", "parts": [{"type": "text", "content": "A c"}], "finish_reason": "length"},
        ],
    }


def test_the_details_event_is_taken_as_it_is_and_wins_over_per_message_events() -> None:
    inputs = '[{"role":"user","parts":[{"type":"text","content":"hi"}]}]'
    instructions = '[{"type":"text","content":"Be brief."}]'
    records = [
        _record("gen_ai.user.message", {"content": "an older copy"}),
        _record(
            INFERENCE_DETAILS_EVENT,
            attributes={semconv.INPUT_MESSAGES: inputs, semconv.SYSTEM_INSTRUCTIONS: instructions, "other": "x"},
        ),
        _record("gen_ai.choice", {"index": 0, "finish_reason": "stop", "message": {"content": "hello"}}),
    ]
    assert assemble(records)[KEY] == {
        semconv.INPUT_MESSAGES: inputs,
        semconv.SYSTEM_INSTRUCTIONS: instructions,
        semconv.OUTPUT_MESSAGES: '[{"role":"assistant","parts":[{"type":"text","content":"hello"}],'
        '"finish_reason":"stop"}]',
    }


def test_events_recorded_without_content_give_nothing() -> None:
    # What openai-v2 records with content capture off: the roles, an empty body, a choice without text.
    records = [
        _record("gen_ai.user.message"),
        _record("gen_ai.system.message", {}),
        _record("gen_ai.choice", {"index": 0, "finish_reason": "stop", "message": {"role": "assistant"}}),
        _record("gen_ai.assistant.message", "not an object"),
    ]
    assert assemble(records) == {}


@pytest.fixture
def store(chdb_path: Path) -> Iterator[ClickHouseStore]:
    store = ClickHouseStore(ClickHouseConfig(endpoint=f"chdb://{chdb_path}"), logging.getLogger("test.content"))
    store.start()
    try:
        yield store
    finally:
        store.close()


def test_a_scope_sees_the_content_of_the_calls_it_sees_only(store: ClickHouseStore) -> None:
    traces = make_traces(2)
    spans = traces.resource_spans[0].scope_spans[0].spans
    logs = LogsData()
    records = logs.resource_logs.add().scope_logs.add().log_records
    keys = []
    for span, tenant in zip(spans, ("acme", "globex"), strict=True):
        attribute = span.attributes.add(key=semconv.TENANT_ID)
        attribute.value.string_value = tenant
        keys.append((span.trace_id.hex(), span.span_id.hex()))
        # The events carry no tenant of their own: they are their span's.
        record = records.add(time_unix_nano=span.start_time_unix_nano + 1, event_name="gen_ai.user.message")
        record.trace_id, record.span_id = span.trace_id, span.span_id
        record.body.kvlist_value.values.add(key="content").value.string_value = f"secret of {tenant}"
    store.send(Batch([traces], 2))
    store.send_logs(Batch([logs], 2))
    runner, tables = QueryRunner(store), StoreTables.of(store)
    window = TimeRange(spans[0].start_time_unix_nano, spans[0].end_time_unix_nano)

    def content(scope: Scope) -> dict[tuple[str, str], dict[str, Any]]:
        return asyncio.run(calls_content(runner, tables, scope, keys, window))

    def text(tenant: str) -> list[dict[str, Any]]:
        return [{"role": "user", "parts": [{"type": "text", "content": f"secret of {tenant}"}]}]

    assert content(Scope("acme")) == {keys[0]: {semconv.INPUT_MESSAGES: text("acme")}, keys[1]: {}}
    assert content(Scope.everything()) == {
        keys[0]: {semconv.INPUT_MESSAGES: text("acme")},
        keys[1]: {semconv.INPUT_MESSAGES: text("globex")},
    }


def test_events_genai_normalize_mapped_forward_give_the_same_content_as_the_events_as_sent() -> None:
    sent = [
        ("gen_ai.system.message", {"content": "Be brief."}),
        ("gen_ai.user.message", {"content": "What is 1+1?"}),
        ("gen_ai.assistant.message", {"tool_calls": [{"id": "c1", "function": {"name": "add", "arguments": "{}"}}]}),
        ("gen_ai.tool.message", {"content": "2", "id": "c1"}),
        ("gen_ai.choice", {"index": 0, "finish_reason": "stop", "message": {"content": "2"}}),
    ]
    mapped = []
    for event, body in sent:
        record = LogRecord(event_name=event)
        set_any_value(record.body, body)
        normalize_record(record, keep_original=False)
        attributes = {pair.key: json.dumps(any_value(pair.value)) for pair in record.attributes}
        remaining = any_value(record.body) if record.HasField("body") else None
        mapped.append(_record(event, remaining, attributes))
    assert all(not record["Body"] or "index" in record["Body"] for record in mapped)  # the content left the body
    assert assemble(mapped) == assemble([_record(event, body) for event, body in sent])
