"""The DDL each layout generates, held in golden files: a change to the schema shows up as a diff to review.

Regenerate after an intended change with ``UPDATE_GOLDEN=1 pytest tests/exporters/clickhouse/test_golden_ddl.py``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from collector.config.decode import decode
from exporters.clickhouse.config import ClickHouseConfig
from exporters.clickhouse.layout import Layout
from exporters.clickhouse.schema import TraceTables, schema_statements

GOLDEN = Path(__file__).resolve().parent / "golden"

CONFIGS: dict[str, dict[str, object]] = {
    # The shipped default, on a server.
    "single_server": {"endpoint": "http://ch:8123"},
    # A 2x2 cluster with default replication paths and a retention; one metric table renamed.
    "cluster": {
        "endpoint": "http://ch:8123",
        "database": "otel",
        "cluster_name": "genai",
        "ttl": "720h",
        "logs_table_name": "app_logs",
        "metrics_tables": {"histogram": {"name": "app_histograms"}},
    },
    # An explicit engine with its arguments, as table_engine gives them.
    "cluster_engine_params": {
        "endpoint": "http://ch:8123",
        "cluster_name": "genai",
        "table_engine": {
            "name": "ReplicatedMergeTree",
            "params": "'/clickhouse/tables/{shard}/{database}/{table}', '{replica}'",
        },
    },
}


def generated(raw: dict[str, object]) -> str:
    config = decode(ClickHouseConfig, raw, "exporters.clickhouse")
    layout = Layout(
        config.database, config.ttl, config.cluster_name, config.table_engine.name, config.table_engine.params
    )
    statements = schema_statements(layout, TraceTables(config.traces_table_name), config.signal_tables)
    return "".join(f"{s};\n\n" for s in statements)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_generated_ddl_matches_the_golden_file(name: str) -> None:
    path = GOLDEN / f"{name}.sql"
    text = generated(CONFIGS[name])
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text()


def test_every_cluster_statement_runs_on_the_cluster() -> None:
    statements = [s for s in generated(CONFIGS["cluster"]).split(";\n\n") if s.strip()]
    assert all(" ON CLUSTER `genai`" in s for s in statements)
    assert not any("ENGINE = MergeTree(" in s or "ENGINE = AggregatingMergeTree(" in s for s in statements)
