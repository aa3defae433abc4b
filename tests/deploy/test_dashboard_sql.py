"""The dashboard's ClickHouse queries, run on real data: spans through the collector into chDB, then each panel's SQL.

chDB is the engine a ClickHouse server runs, so a query that parses and answers
here does the same behind Grafana. The plugin's macros are replaced the way it
expands them, over a window that holds every span.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import RunningService, query_store, send_span
from tests.deploy.deployfiles import DEPLOY_DIR

DASHBOARD = DEPLOY_DIR / "grafana" / "dashboards" / "genai.json"
EMAIL = "jane.doe@example.org"
COST = "0.0042"

PIPELINE = """
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:0
processors:
  genai_normalize:
  genai_security:
exporters:
  clickhouse:
    endpoint: chdb://{store}
    sending_queue:
      batch:
        flush_timeout: 50ms
service:
  pipelines:
    traces:
      receivers: [otlp]
      processors: [genai_normalize, genai_security]
      exporters: [clickhouse]
"""


def _expand_macros(sql: str) -> str:
    """The ClickHouse plugin's macros and the dashboard's variables, as Grafana would send them."""
    sql = re.sub(r"\$__timeFilter\((\w+)\)", r"\1 >= toDateTime(0) AND \1 <= toDateTime(4102444800)", sql)
    sql = re.sub(r"\$__timeInterval\((\w+)\)", r"toStartOfInterval(toDateTime(\1), INTERVAL 60 second)", sql)
    sql = sql.replace("${service:regex}", ".*")
    assert not re.search(r"\$\w|\$\{", sql), f"unexpanded macro or variable in: {sql}"
    return sql


def _clickhouse_panels() -> dict[str, str]:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return {
        panel["title"]: _expand_macros(target["rawSql"])
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
        if target["datasource"]["type"] == "grafana-clickhouse-datasource"
    }


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[list[Any]]]:
    """Rows of every ClickHouse panel, over a store holding one GenAI span with a finding and one without."""
    tmp_path: Path = tmp_path_factory.mktemp("dashboard")
    store = tmp_path / "clickhouse"
    collector = RunningService(PIPELINE.format(store=store), tmp_path)
    try:
        messages = [{"role": "user", "parts": [{"type": "text", "content": f"mail me at {EMAIL}"}]}]
        send_span(
            collector,
            "chat gpt-4o-mini",
            {
                "gen_ai.operation.name": "chat",
                "gen_ai.request.model": "gpt-4o-mini",
                "gen_ai.usage.input_tokens": 42,
                "gen_ai.usage.output_tokens": 7,
                "gen_ai.usage.cost": float(COST),
                "gen_ai.input.messages": json.dumps(messages),
            },
        )
        send_span(collector, "GET /health", {"http.request.method": "GET"})
    finally:
        collector.stop()  # drains the queue into the store
    return {title: query_store(store, sql) for title, sql in _clickhouse_panels().items()}


def test_every_clickhouse_panel_query_runs(results: dict[str, list[list[Any]]]) -> None:
    assert set(results) == {
        "Findings by category",
        "Findings by detector",
        "Latest findings",
        "Most expensive traces",
    }


def test_findings_panels_show_the_finding(results: dict[str, list[list[Any]]]) -> None:
    by_category = results["Findings by category"]
    assert [row[1:] for row in by_category] == [["personal_data", 1]]
    detector, category, severity, findings, traces, _ = results["Findings by detector"][0]
    assert (detector, category, findings, traces) == ("email", "personal_data", 1, 1)
    assert severity in ("low", "medium", "high", "critical")
    latest = results["Latest findings"]
    assert len(latest) == 1 and latest[0][2] == "chat gpt-4o-mini" and latest[0][3] == "email"


def test_most_expensive_traces_sums_cost_and_tokens_of_genai_spans(results: dict[str, list[list[Any]]]) -> None:
    rows = results["Most expensive traces"]
    assert len(rows) == 1, "only spans with a gen_ai.operation.name count"
    _, _, calls, input_tokens, output_tokens, cost, _ = rows[0]
    assert (calls, input_tokens, output_tokens) == (1, 42, 7)
    assert float(cost) == pytest.approx(float(COST))
