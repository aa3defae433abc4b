"""``genai-collector evaluate`` over calls a running collector stored: the same results as live evaluation."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from collector.cli import main
from collector.signals import merged
from connectors.genai_evaluation.command import result_lines
from tests.conftest import RunningService, collector_yaml, query_store
from tests.connectors.genai_evaluation.support import (
    JUDGE_KEY,
    JUDGE_MODEL,
    Calls,
    build,
    config,
    evaluate,
    run,
    upstreams,
)
from tests.proxy.mock_upstream import MockUpstream, serve

CALLS = 12


def _connector(url: str) -> dict[str, Any]:
    return {
        "judge": {"model": JUDGE_MODEL, "upstreams": upstreams(url), "concurrency": 4},
        "dimensions": [
            {"name": "relevance", "rubric": "relevance", "sampling_rate": 0.5},
            {"name": "short", "rule": {"type": "length", "max_chars": 30}, "filters": {"models": ["gpt-4o"]}},
        ],
    }


def _calls() -> Calls:
    calls = Calls(start_ns=time.time_ns() - 60 * 1_000_000_000)
    for number in range(1, CALLS + 1):
        score = 1 + number % 5
        answer = f"Paris, number {number}. mock-judge-score={score}" + (" and more words" * (number % 3))
        calls.chat(number, answer=answer, model="gpt-4o" if number % 2 else "gpt-4o-mini")
    return calls


def test_backfill_equals_live_evaluation(
    tmp_path: Path, chdb_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    calls = _calls()
    mock = MockUpstream(openai_key=JUDGE_KEY)
    with serve(mock) as url:
        collector = RunningService(collector_yaml(chdb_path), tmp_path)
        try:
            response = httpx.post(
                f"http://127.0.0.1:{collector.port()}/v1/traces",
                content=calls.traces.SerializeToString(),
                headers={"content-type": "application/x-protobuf"},
                timeout=30,
            )
            assert response.status_code == 200
        finally:
            collector.stop()
        assert query_store(chdb_path, "SELECT count() FROM genai_calls") == [[CALLS]]

        settings = config(_connector(url))
        live = build(settings)
        run(evaluate(live, calls.traces))
        expected = {
            name: [line for line in result_lines(merged(live.logs.batches)) if f'"{name}"' in line]
            for name in ("relevance", "short")
        }
        assert expected["relevance"] and expected["short"]

        document = yaml.safe_load(collector_yaml(chdb_path))
        document["connectors"] = {"genai_evaluation": _connector(url)}
        path = tmp_path / "config.yaml"
        path.write_text(yaml.safe_dump(document))
        for name in ("relevance", "short"):
            capsys.readouterr()
            assert main(["evaluate", "--config", str(path), "--since", "1h", "--dimension", name]) == 0
            out = capsys.readouterr().out.splitlines()
            assert out[:-1] == expected[name]
            assert out[-1].startswith(f"evaluated {len(expected[name])} calls on {name}: ")

        # --dry-run lists the calls and prices them, calling no judge.
        judged = len(mock.requests_to("/v1/chat/completions"))
        assert main(["evaluate", "--config", str(path), "--dimension", "relevance", "--dry-run"]) == 0
        out = capsys.readouterr().out.splitlines()
        assert len(out) == len(expected["relevance"]) + 1
        assert out[-1].startswith(f"would evaluate {len(expected['relevance'])} calls on relevance with judge:")
        assert "estimated cost at most 0.0" in out[-1] and len(mock.requests_to("/v1/chat/completions")) == judged


def test_mistakes_are_one_line(tmp_path: Path, chdb_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    document = yaml.safe_load(collector_yaml(chdb_path))
    document["connectors"] = {"genai_evaluation": _connector("http://127.0.0.1:9")}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(document))
    for arguments, message in [
        (["--dimension", "kindness"], 'error: no dimension "kindness"; configured: relevance, short'),
        (["--dimension", "relevance", "--since", "yesterday"], "error: --since: expected a duration like 72h"),
        (
            ["--dimension", "relevance", "--judge-model", "llama"],
            'error: --judge-model: no judge upstream serves "llama"',
        ),
    ]:
        assert main(["evaluate", "--config", str(path), *arguments]) == 2
        assert capsys.readouterr().err.startswith(message)
