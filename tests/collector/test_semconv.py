"""collector.semconv: the one list of convention names, what changed, and the one allow-list of model calls."""

from __future__ import annotations

import re

import pytest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from collector import semconv
from collector.pdata import set_any_value
from connectors.genai_metrics.spans import call_facts
from exporters.clickhouse.genai_schema import GenAITables, calls_select_sql
from exporters.clickhouse.layout import Layout
from tests.conftest import REPO_ROOT

SEMCONV_DOC = REPO_ROOT / "docs" / "semconv.md"
EVERY_OPERATION = sorted(
    {
        semconv.CHAT,
        semconv.TEXT_COMPLETION,
        semconv.GENERATE_CONTENT,
        semconv.EMBEDDINGS,
        semconv.EXECUTE_TOOL,
        semconv.CREATE_AGENT,
        semconv.INVOKE_AGENT,
        semconv.INVOKE_WORKFLOW,
        semconv.HANDLE_CONVERSATION_TURN,
        semconv.PLAN,
        semconv.RETRIEVAL,
        semconv.FETCH_RESPONSE,
        semconv.APPLY_GUARDRAIL,
        *semconv.MEMORY_OPERATIONS,
    }
)


def test_the_doc_lists_every_rename() -> None:
    text = SEMCONV_DOC.read_text(encoding="utf-8")
    for old, new in semconv.RENAMED.items():
        row = next((line for line in text.splitlines() if f"`{old}`" in line), "")
        assert f"`{new}`" in row, f"docs/semconv.md has no row {old} -> {new}"
    for old, new in semconv.RENAMED_COST_SOURCES.items():
        assert f"`{old}`" in text and f"`{new}`" in text


def test_previous_names_come_newest_first() -> None:
    assert semconv.spellings(semconv.USAGE_CACHE_WRITE_INPUT_TOKENS) == (
        "gen_ai.usage.cache_write.input_tokens",
        "gen_ai.usage.cache_creation.input_tokens",
    )
    assert semconv.spellings(semconv.REQUEST_MODEL) == (semconv.REQUEST_MODEL,)


def test_the_clickhouse_tables_and_prometheus_count_the_same_operations() -> None:
    select = calls_select_sql(Layout("default"), GenAITables("otel_traces"))
    [listed] = re.findall(r"\['gen_ai\.operation\.name'\] IN \(([^)]*)\)", select)
    in_tables = {value.strip(" '") for value in listed.split(",")}

    def counted_by_prometheus(operation: str) -> bool:
        span = Span(start_time_unix_nano=1, end_time_unix_nano=2)
        set_any_value(span.attributes.add(key=semconv.OPERATION_NAME).value, operation)
        return call_facts(span, "svc") is not None

    in_metrics = {operation for operation in EVERY_OPERATION if counted_by_prometheus(operation)}
    assert in_tables == in_metrics == {"chat", "text_completion", "generate_content", "embeddings"}


@pytest.mark.parametrize("operation", EVERY_OPERATION)
def test_only_inference_and_embeddings_are_model_calls(operation: str) -> None:
    expected = operation in ("chat", "text_completion", "generate_content", "embeddings")
    assert semconv.is_model_call(operation) is expected
