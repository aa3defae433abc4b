"""query_limits: validation, the embedded engine's memory budget, and a budget that cannot fit as one config line."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from collector.cli import main
from collector.config.decode import decode
from collector.config.problems import ConfigError
from collector.config.service import parse_config
from collector.query.limits import (
    DEFAULT_MAX_MEMORY_USAGE,
    QueryLimits,
    locked_profile,
    memory_problems,
    plan_memory,
)
from collector.registry import default_registry
from collector.service import check_memory_budgets

GIB = 1024 * 1024 * 1024
MIB = 1024 * 1024
CONFIG = """
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:0
processors:
  memory_limiter:
    limit_mib: 1000
exporters:
  clickhouse:
    endpoint: chdb://{store}
    query_limits:
      max_memory_usage: {per_query}
service:
  pipelines:
    traces:
      receivers: [otlp]
      processors: [memory_limiter]
      exporters: [clickhouse]
"""


def test_defaults_are_valid_and_mistakes_name_their_key() -> None:
    assert list(QueryLimits().validate()) == []
    with pytest.raises(ConfigError) as raised:
        decode(
            QueryLimits,
            {"max_concurrent_queries": 0, "max_queued_queries": -1, "max_execution_time": "0s", "max_threads": 0},
            "exporters.clickhouse.query_limits",
        )
    assert [str(p) for p in raised.value.problems] == [
        "exporters.clickhouse.query_limits.max_concurrent_queries: must be at least 1",
        "exporters.clickhouse.query_limits.max_threads: must be at least 1",
        "exporters.clickhouse.query_limits.max_queued_queries: must not be negative",
        "exporters.clickhouse.query_limits.max_execution_time: must be more than 0",
    ]


def test_queries_get_half_the_engine_cap_shared_by_the_query_threads() -> None:
    plan = plan_memory(QueryLimits(max_concurrent_queries=4), memory_limit=8 * GIB, total_bytes=64 * GIB)
    assert (plan.engine_cap, plan.per_query) == (8 * GIB, 1 * GIB)
    small = plan_memory(QueryLimits(), memory_limit=1 * GIB, total_bytes=64 * GIB)
    assert (small.engine_cap, small.per_query) == (1 * GIB, 256 * MIB)
    # Without a memory_limiter the engine keeps its own cap, 0.9 of the machine.
    alone = plan_memory(QueryLimits(), memory_limit=0, total_bytes=64 * GIB)
    assert (alone.engine_cap, alone.per_query) == (0, DEFAULT_MAX_MEMORY_USAGE)
    explicit = plan_memory(QueryLimits(max_memory_usage=100 * MIB), memory_limit=1 * GIB, total_bytes=64 * GIB)
    assert explicit.per_query == 100 * MIB


def test_an_explicit_budget_beyond_the_engines_share_is_a_problem() -> None:
    fits = QueryLimits(max_memory_usage=256 * MIB)
    assert list(memory_problems(fits, memory_limit=1 * GIB, total_bytes=64 * GIB)) == []
    too_much = QueryLimits(max_memory_usage=512 * MIB)
    assert list(memory_problems(too_much, memory_limit=1 * GIB, total_bytes=64 * GIB)) == [
        (
            "max_memory_usage",
            "2 concurrent queries × 512 MiB exceed the 512 MiB queries may use (half of the memory_limiter's soft "
            "limit); lower max_memory_usage or max_concurrent_queries",
        )
    ]


def test_the_collector_config_check_names_the_yaml_path(tmp_path: Path) -> None:
    import yaml

    document = yaml.safe_load(CONFIG.format(store=tmp_path / "store", per_query=1 * GIB))
    config = parse_config(document, default_registry())
    with pytest.raises(ConfigError) as raised:
        check_memory_budgets(config, total=64 * GIB)
    # memory_limiter: 1000 MiB hard, 800 MiB soft; queries may use half of it.
    assert [str(p) for p in raised.value.problems] == [
        "exporters.clickhouse.query_limits.max_memory_usage: 2 concurrent queries × 1024 MiB exceed the 400 MiB "
        "queries may use (half of the memory_limiter's soft limit); lower max_memory_usage or max_concurrent_queries"
    ]
    fitting = parse_config(yaml.safe_load(CONFIG.format(store=tmp_path / "s", per_query=100 * MIB)), default_registry())
    assert check_memory_budgets(fitting, total=64 * GIB) == 800 * MIB


def test_validate_reports_it_in_one_line_and_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "otel-config.yaml"
    config.write_text(textwrap.dedent(CONFIG.format(store=tmp_path / "store", per_query=2 * GIB)))
    assert main(["validate", "--config", str(config)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("exporters.clickhouse.query_limits.max_memory_usage: 2 concurrent")


def test_the_profile_sets_readonly_last() -> None:
    embedded = locked_profile(QueryLimits(), 100, embedded=True)
    server = locked_profile(QueryLimits(), 100, embedded=False)
    assert list(embedded)[-1] == "readonly" and embedded["readonly"] == "1"
    assert list(server)[-1] == "readonly" and server["readonly"] == "2"
    assert "allow_python_table_function" in embedded and "allow_python_table_function" not in server
