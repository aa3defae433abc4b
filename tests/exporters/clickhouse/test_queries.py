"""docs/queries.sql: every question's SQL runs on spans stored through the exporter and answers it right."""

from __future__ import annotations

import datetime
import logging
import re
from collections.abc import Iterator

import pytest

from collector.queue import Batch
from exporters.clickhouse.config import ClickHouseConfig
from exporters.clickhouse.store import ClickHouseStore
from tests.conftest import REPO_ROOT
from tests.exporters.clickhouse.genai_spans import (
    TRACE_A,
    TRACE_B,
    add_app_record_of_the_stream,
    an_hour_ago,
    genai_traces,
)

QUERIES = REPO_ROOT / "docs" / "queries.sql"
QUESTION = re.compile(r"^-- Q: (.+)$", re.MULTILINE)
A, B = TRACE_A.hex(), TRACE_B.hex()
WHEN = "<time>"  # dates and times depend on when the test runs; their values are checked in test_genai_tables

# The rows each question must give for genai_spans' two traces.
EXPECTED: dict[str, list[list[object]]] = {
    "Cost per day per model and tenant": [
        [WHEN, "claude-sonnet-4-5", "globex", 0.5, 1],
        [WHEN, "gpt-4o", "acme", 0.06, 3],
        [WHEN, "text-embedding-3-small", "acme", 0.0, 1],
    ],
    # gpt-4o's one stream: its two calls without a first chunk do not count as 0.
    "p95 time to first token per model (streaming calls only)": [
        ["claude-sonnet-4-5", 1.0, 1.0],
        ["gpt-4o", 0.4, 0.4],
    ],
    "Most expensive traces": [
        [B, "research-agent", "globex", 1, 1100, 0.5, WHEN],
        [A, "support-agent", "acme", 4, 3500, 0.06, WHEN],
    ],
    "Traces with agent loops": [[A, "support-agent", "acme", 1, ["call_cycle"], 3, 0.06, WHEN]],
    "Error rate by provider": [["anthropic", 1, 1, 1.0], ["openai", 4, 0, 0.0]],
    # The tool span is not an LLM call: its tokens (none) and its row are absent everywhere.
    "Tokens per service": [["support-agent", 3200, 300, 3500], ["research-agent", 1000, 100, 1100]],
    "Findings by detector per day": [
        [WHEN, "agent_loop", "call_cycle", 1, 1],
        [WHEN, "secret", "aws_access_key_id", 1, 1],
    ],
    # Durations 1, 2 and 3 s for gpt-4o: p50 2 s, p95 interpolated to 2.9 s.
    "Slowest models (call duration)": [
        ["claude-sonnet-4-5", 1, 10.0, 10.0],
        ["gpt-4o", 3, 2.0, 2.9],
        ["text-embedding-3-small", 1, 0.1, 0.1],
    ],
    "Prompt cache hit ratio per model": [
        ["gpt-4o", 3000, 500, 0.1667],
        ["claude-sonnet-4-5", 1000, 0, 0.0],
        ["text-embedding-3-small", 200, 0, 0.0],
    ],
    "Conversations by cost": [["conv-2", "globex", 1, 1, 1100, 0.5], ["conv-1", "acme", 3, 1, 3300, 0.06]],
    "Calls without a known price, by model": [["openai", "text-embedding-3-small", 1, 200]],
    # The marked span is left out of every question above; only this one reads it.
    "Calls recorded twice (an app's span and the proxy's), by service": [["support-agent", 1, 1000]],
    "Latest high and critical findings, with the call they were found on": [
        [WHEN, "call_cycle", "high", A, "support-agent", "gpt-4o", "acme"],
        [WHEN, "aws_access_key_id", "critical", B, "research-agent", "claude-sonnet-4-5", "globex"],
    ],
}


def questions() -> dict[str, str]:
    """Each question of docs/queries.sql and its statement."""
    found: dict[str, str] = {}
    for block in QUERIES.read_text().split(";\n"):
        match = QUESTION.search(block)
        if match:
            found[match.group(1)] = block[match.end() :].strip()
    return found


@pytest.fixture(scope="module")
def loaded_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClickHouseStore]:
    path = tmp_path_factory.mktemp("queries") / "clickhouse"
    store = ClickHouseStore(ClickHouseConfig(endpoint=f"chdb://{path}"), logging.getLogger("test.queries"))
    store.start()
    try:
        start = an_hour_ago()
        traces = genai_traces(start)
        add_app_record_of_the_stream(traces, start)
        store.send(Batch([traces], 7))
        yield store
    finally:
        store.close()


def _shown(value: object) -> object:
    return WHEN if isinstance(value, datetime.date) else value


def test_every_question_in_the_file_has_expected_rows() -> None:
    assert sorted(questions()) == sorted(EXPECTED)
    assert len(EXPECTED) >= 12


@pytest.mark.parametrize("question", sorted(EXPECTED))
def test_the_query_answers_its_question(loaded_store: ClickHouseStore, question: str) -> None:
    rows = loaded_store.query(questions()[question]).rows
    assert [[_shown(v) for v in row] for row in rows] == EXPECTED[question]
