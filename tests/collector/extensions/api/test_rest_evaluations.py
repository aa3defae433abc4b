"""GET /api/v1/evaluations over a genai_evaluations table holding the genai_evaluation connector's records."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.collector.extensions.api.evaluations_store import evaluations_collector
from tests.collector.extensions.api.world import make_keys
from tests.conftest import RunningService

WINDOW = {"start": "2026-01-01T00:00:00Z", "end": "2026-01-01T03:00:00Z"}


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("evaluations")


@pytest.fixture(scope="module")
def keys(root: Path) -> dict[str, str]:
    return make_keys(root / "api-keys.json")


@pytest.fixture(scope="module")
def collector(root: Path, keys: dict[str, str]) -> Iterator[RunningService]:
    yield from evaluations_collector(root, root / "api-keys.json")


def _answer(collector: RunningService, key: str | None, **params: str) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    url = f"http://127.0.0.1:{collector.api_port()}/api/v1/evaluations"
    return httpx.get(url, params={**WINDOW, **params}, headers=headers, timeout=30)


def _get(collector: RunningService, keys: dict[str, str], key: str = "admin", **params: str) -> dict[str, Any]:
    response = _answer(collector, keys[key], **params)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def test_hourly_rollup_by_dimension_model_and_service(collector: RunningService, keys: dict[str, str]) -> None:
    answer = _get(collector, keys)
    assert answer["hours"] == [
        {
            "hour": "2026-01-01T00:00:00Z", "dimension": "relevance", "model": "gpt-4o-2024", "service": "billing",
            "results": 1, "scored": 1, "mean_score": 1.0, "passed": 0, "failed": 1, "pass_rate": 0.0, "errors": 0,
        },
        {
            "hour": "2026-01-01T00:00:00Z", "dimension": "relevance", "model": "gpt-4o-2024", "service": "shop",
            "results": 3, "scored": 2, "mean_score": 3.5, "passed": 1, "failed": 1, "pass_rate": 0.5, "errors": 1,
        },
        {
            "hour": "2026-01-01T01:00:00Z", "dimension": "json", "model": "gpt-4o-2024", "service": "shop",
            "results": 1, "scored": 1, "mean_score": 0.0, "passed": 0, "failed": 1, "pass_rate": 0.0, "errors": 0,
        },
        {
            "hour": "2026-01-01T01:00:00Z", "dimension": "relevance", "model": "gpt-4o-2024", "service": "shop",
            "results": 1, "scored": 1, "mean_score": 4.0, "passed": 1, "failed": 0, "pass_rate": 1.0, "errors": 0,
        },
    ]  # fmt: skip
    assert answer["truncated"] is False


def test_worst_first_and_filters(collector: RunningService, keys: dict[str, str]) -> None:
    answer = _get(collector, keys, dimension="relevance", service="shop", model="gpt-4o")
    assert [(r["span_id"], r["score"], r["passed"]) for r in answer["worst"]] == [
        ("0000000000000002", 2.0, False),
        ("0000000000000005", 4.0, True),
        ("0000000000000001", 5.0, True),
        ("0000000000000003", None, None),
    ]
    assert answer["worst"][0]["explanation"] == "off topic"
    assert answer["worst"][-1]["error_type"] == "unparseable_answer"
    assert answer["worst"][0]["evaluator"] == "judge:gpt-4o-mini"
    by_trace = _get(collector, keys, trace_id=(4).to_bytes(16, "big").hex())
    assert [r["service"] for r in by_trace["worst"]] == ["billing"]
    assert _get(collector, keys, model="llama")["hours"] == []


def test_a_key_bound_to_a_tenant_sees_only_its_evaluations(collector: RunningService, keys: dict[str, str]) -> None:
    def spans(key: str) -> list[str]:
        answer = _get(collector, keys, key)
        assert sum(row["results"] for row in answer["hours"]) == len(answer["worst"])
        return sorted(row["span_id"][-1] for row in answer["worst"])

    assert spans("acme") == ["1", "2"]
    assert spans("globex") == ["4"]
    assert spans("admin") == ["1", "2", "3", "4", "5", "6"]
    assert _answer(collector, None).status_code == 401
