"""Real instrumentations over OTLP into a collector running genai_normalize and genai_cost: one vocabulary, priced."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, RunningService, query_store
from tests.proxy.mock_upstream import MockUpstream, serve

INSTRUMENTATIONS = ("openai_v2", "openinference", "openllmetry")
# Keys of the other dialects that must be gone once normalised.
OLD_KEYS = (
    "gen_ai.system",
    "gen_ai.usage.prompt_tokens",
    "gen_ai.usage.completion_tokens",
    "llm.token_count.prompt",
    "llm.model_name",
    "llm.system",
    "openinference.span.kind",
    "gen_ai.openai.response.service_tier",
)


def _config(chdb_dir: Path) -> str:
    return f"""
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:0
processors:
  genai_normalize:
  genai_cost:
exporters:
  clickhouse:
    endpoint: chdb://{chdb_dir}
    sending_queue:
      batch:
        flush_timeout: 50ms
service:
  pipelines:
    traces:
      receivers: [otlp]
      processors: [genai_normalize, genai_cost]
      exporters: [clickhouse]
"""


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """Every instrumentation's calls, through the collector, into one store; returns it with the producers' logs."""
    work = tmp_path_factory.mktemp("genai-pipeline")
    chdb_dir = work / "clickhouse"
    collector = RunningService(_config(chdb_dir), work)
    logs = []
    try:
        traces_url = f"http://127.0.0.1:{collector.port()}/v1/traces"
        with serve(MockUpstream()) as upstream:
            for name in INSTRUMENTATIONS:
                result = subprocess.run(
                    [sys.executable, "-m", "tests.processors.produce_spans", name, upstream, traces_url],
                    cwd=REPO_ROOT,
                    capture_output=True,
                    text=True,
                    timeout=120,
                )
                assert result.returncode == 0, result.stderr
                logs.append(result.stderr)
    finally:
        collector.stop()
    return chdb_dir, logs


@pytest.mark.parametrize("instrumentation", INSTRUMENTATIONS)
def test_chat_spans_land_in_the_current_vocabulary_and_priced(
    stored: tuple[Path, list[str]], instrumentation: str
) -> None:
    chdb_dir, _ = stored
    rows = query_store(
        chdb_dir,
        "SELECT SpanAttributes['gen_ai.operation.name'], SpanAttributes['gen_ai.provider.name'], "
        "SpanAttributes['gen_ai.request.model'], toInt64OrZero(SpanAttributes['gen_ai.usage.input_tokens']), "
        "toInt64OrZero(SpanAttributes['gen_ai.usage.output_tokens']), SpanAttributes['gen_ai.usage.cost.source'], "
        "toFloat64OrZero(SpanAttributes['gen_ai.usage.cost.amount']), mapKeys(SpanAttributes) "
        f"FROM otel_traces WHERE ServiceName = 'app-{instrumentation}' ORDER BY Timestamp",
    )
    chats = [row for row in rows if row[0] == "chat"]
    assert len(chats) == 3, rows
    for operation, provider, model, input_tokens, output_tokens, source, cost, keys in chats:
        assert (operation, provider, model) == ("chat", "openai", "gpt-4o-mini")
        assert input_tokens > 0 and output_tokens > 0
        assert source == "local" and cost > 0
        assert not [key for key in keys if key in OLD_KEYS]
    embeddings = [row for row in rows if row[0] == "embeddings"]
    assert len(embeddings) == 1
    assert embeddings[0][1] == "openai" and embeddings[0][5] == "local"


def test_messages_are_in_the_conventions_json(stored: tuple[Path, list[str]]) -> None:
    chdb_dir, _ = stored
    rows = query_store(
        chdb_dir,
        "SELECT ServiceName, SpanAttributes['gen_ai.input.messages'] FROM otel_traces "
        "WHERE SpanAttributes['gen_ai.operation.name'] = 'chat' AND SpanAttributes['gen_ai.input.messages'] != ''",
    )
    services = {row[0] for row in rows}
    # openai-v2 on its default conventions puts content in log events, not on spans.
    assert {"app-openinference", "app-openllmetry"} <= services
    for _, messages in rows:
        assert '"parts"' in messages and '"role"' in messages
