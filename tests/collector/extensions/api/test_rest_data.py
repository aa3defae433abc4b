"""GET /api/v1/calls, /stats, /findings, /conversations/{id} and /services on a running collector: exact answers."""

from __future__ import annotations

from typing import Any

import pytest

from tests.collector.extensions.api.world import HOUR, MINUTE, SECOND, World, rfc3339

CALLS = [
    "chat gpt-4o-mini",
    "chat gpt-4o globex",
    "embeddings text-embedding-3-small",
    "chat claude-3-5-sonnet",
    "chat gpt-4o",
]


def call_names(world: World, answer: dict[str, Any]) -> list[str]:
    by_span = {span_id: name for name, span_id in world.spans.items()}
    return [by_span[call["span_id"]] for call in answer["calls"]]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, CALLS),
        ({"model": "gpt-4o"}, ["chat gpt-4o globex", "chat gpt-4o"]),
        ({"model": "gpt-4o-2024-08-06"}, ["chat gpt-4o"]),
        ({"provider": "openai"}, ["chat gpt-4o-mini", "chat gpt-4o globex", "embeddings text-embedding-3-small",
                                  "chat gpt-4o"]),
        ({"operation": "embeddings"}, ["embeddings text-embedding-3-small"]),
        ({"service": "batch-job"}, ["embeddings text-embedding-3-small", "chat claude-3-5-sonnet"]),
        ({"tenant": "acme"}, ["embeddings text-embedding-3-small", "chat claude-3-5-sonnet", "chat gpt-4o"]),
        ({"conversation": "c-acme-1"}, ["chat gpt-4o"]),
        ({"has_findings": "true"}, ["chat gpt-4o globex", "chat claude-3-5-sonnet", "chat gpt-4o"]),
        ({"min_severity": "high"}, ["chat gpt-4o globex", "chat gpt-4o"]),
        ({"error": "true"}, ["chat gpt-4o globex"]),
        ({"min_duration": "2s"}, ["chat gpt-4o globex", "chat claude-3-5-sonnet", "chat gpt-4o"]),
        ({"max_duration": "1s"}, ["chat gpt-4o-mini", "embeddings text-embedding-3-small"]),
        ({"span_name": "chat claude-3-5-sonnet"}, ["chat claude-3-5-sonnet"]),
        ({"attribute": "tenant.id=globex"}, ["chat gpt-4o globex"]),
    ],
)  # fmt: skip
def test_calls_each_filter(world: World, params: dict[str, Any], expected: list[str]) -> None:
    assert call_names(world, world.json("/api/v1/calls", **world.window(), **params)) == expected


def test_a_call_has_every_field_genai_calls_holds(world: World) -> None:
    (call,) = world.json("/api/v1/calls", **world.window(), conversation="c-acme-1")["calls"]
    assert call == {
        "time": "2025-06-02T10:01:01Z",
        "trace_id": world.traces["chat gpt-4o"],
        "span_id": world.spans["chat gpt-4o"],
        "service": "support-bot",
        "tenant": "acme",
        "provider": "openai",
        "operation": "chat",
        "request_model": "gpt-4o",
        "response_model": "gpt-4o-2024-08-06",
        "tokens": {"input": 100, "output": 20, "cache_read": 10, "cache_creation": 0, "reasoning": 0},
        "cost_usd": 0.0125,
        "cost_source": "",
        "duration_ms": 2000.0,
        "time_to_first_chunk_ms": 250.0,
        "finish_reason": "stop",
        "status": "Unset",
        "conversation_id": "c-acme-1",
        "finding_count": 1,
    }


def test_calls_page_by_page(world: World) -> None:
    seen: list[str] = []
    page = world.json("/api/v1/calls", **world.window(), limit="2")
    while True:
        seen.extend(call_names(world, page))
        if page["next_cursor"] is None:
            break
        page = world.json("/api/v1/calls", **world.window(), limit="2", cursor=page["next_cursor"])
    assert seen == CALLS


def _stats(world: World, key: str = "admin", **params: Any) -> dict[str, Any]:
    return world.json("/api/v1/stats", key, **params)  # type: ignore[no-any-return]


def _by_model(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {row["model"]: row for row in rows}


def test_stats_by_model_from_the_rollup_equal_those_from_the_calls(world: World) -> None:
    whole_hour = _stats(world, **world.window(), group_by="model")
    # One second in: no longer whole hours, so genai_calls answers; no call falls in that second.
    from_calls = _stats(world, **world.window(HOUR + SECOND), group_by="model")
    assert (whole_hour["source"], from_calls["source"]) == ("rollup", "calls")
    assert whole_hour["rows"] == from_calls["rows"]
    rows = _by_model(whole_hour["rows"])
    assert list(rows) == ["claude-3-5-sonnet", "gpt-4o", "gpt-4o-mini", "text-embedding-3-small"]
    gpt = rows["gpt-4o"]
    assert (gpt["calls"], gpt["errors"]) == (2, 1)
    assert gpt["tokens"] == {"input": 300, "output": 60, "cache_read": 10, "cache_creation": 0, "reasoning": 0}
    assert gpt["cost_usd"] == pytest.approx(0.0425)
    assert gpt["duration_ms"] == {"p50": 2500.0, "p95": 2950.0, "p99": 2990.0}
    assert gpt["time_to_first_chunk_ms"] == {"p50": 250.0, "p95": 250.0, "p99": 250.0}
    assert rows["gpt-4o-mini"]["calls"] == 1  # the duplicate record is not a call
    assert rows["claude-3-5-sonnet"]["time_to_first_chunk_ms"] == {"p50": None, "p95": None, "p99": None}


def test_stats_in_buckets_and_groups(world: World) -> None:
    hourly = _stats(world, **world.window(HOUR - 60 * MINUTE), group_by="tenant", bucket="hour")
    assert hourly["source"] == "rollup"
    assert [(row["bucket"], row["tenant"], row["calls"]) for row in hourly["rows"]] == [
        ("2025-06-02T10:00:00Z", "", 1),
        ("2025-06-02T10:00:00Z", "acme", 3),
        ("2025-06-02T10:00:00Z", "globex", 1),
    ]
    by_operation = _stats(world, **world.window(), group_by="operation,provider")
    assert by_operation["source"] == "calls"  # the rollup does not keep the operation
    assert [(row["operation"], row["provider"], row["calls"]) for row in by_operation["rows"]] == [
        ("chat", "anthropic", 1),
        ("chat", "openai", 3),
        ("embeddings", "openai", 1),
    ]
    daily = _stats(world, start="2025-06-02T00:00:00Z", end="2025-06-03T00:00:00Z", bucket="day", model="gpt-4o")
    assert [(row["bucket"], row["calls"]) for row in daily["rows"]] == [("2025-06-02T00:00:00Z", 2)]


@pytest.mark.parametrize(
    ("bucket", "expected"),
    [
        ("minute", [("10:01", 1), ("10:20", 2), ("10:30", 1), ("10:40", 1)]),
        ("5minutes", [("10:00", 1), ("10:20", 2), ("10:30", 1), ("10:40", 1)]),
        ("15minutes", [("10:00", 1), ("10:15", 2), ("10:30", 2)]),
    ],
)
def test_stats_in_buckets_shorter_than_an_hour_come_from_the_calls(
    world: World, bucket: str, expected: list[tuple[str, int]]
) -> None:
    answer = _stats(world, **world.window(), bucket=bucket)
    assert (answer["source"], answer["bucket"]) == ("calls", bucket)  # the rollup holds whole hours only
    assert [(row["bucket"], row["calls"]) for row in answer["rows"]] == [
        (f"2025-06-02T{minute}:00Z", calls) for minute, calls in expected
    ]


def test_stats_without_groups_is_one_row_of_totals_in_the_callers_scope(world: World) -> None:
    (everyone,) = _stats(world, **world.window())["rows"]
    (acme,) = _stats(world, "acme", **world.window())["rows"]
    assert (everyone["calls"], everyone["errors"], everyone["tokens"]["input"]) == (5, 1, 660)
    assert (acme["calls"], acme["errors"], acme["tokens"]["input"]) == (3, 0, 450)
    (empty,) = _stats(world, **world.window(HOUR - 60 * MINUTE, HOUR))["rows"]
    assert (empty["calls"], empty["duration_ms"]) == (0, {"p50": None, "p95": None, "p99": None})


@pytest.mark.parametrize(
    ("params", "parameter"),
    [({"group_by": "colour"}, "group_by"), ({"group_by": "model,model"}, "group_by"), ({"bucket": "week"}, "bucket")],
)
def test_stats_refuses_groups_and_buckets_it_does_not_know(
    world: World, params: dict[str, str], parameter: str
) -> None:
    answer = world.get("/api/v1/stats", **params)
    assert (answer.status_code, answer.json()["parameter"]) == (400, parameter)


FINDINGS = ["injection.ignore_previous", "pii.email", "secret.openai_key"]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, FINDINGS),
        ({"min_severity": "high"}, ["injection.ignore_previous", "secret.openai_key"]),
        ({"category": "pii"}, ["pii.email"]),
        ({"detector": "secret.openai_key"}, ["secret.openai_key"]),
        ({"service": "support-bot"}, ["injection.ignore_previous", "secret.openai_key"]),
        ({"tenant": "acme"}, ["pii.email", "secret.openai_key"]),
        ({"limit": "1"}, ["injection.ignore_previous"]),
    ],
)
def test_findings_each_filter(world: World, params: dict[str, Any], expected: list[str]) -> None:
    answer = world.json("/api/v1/findings", **world.window(), **params)
    assert [finding["detector"] for finding in answer["findings"]] == expected


def test_findings_of_one_trace_and_their_fields(world: World) -> None:
    answer = world.json("/api/v1/findings", **world.window(), trace_id=world.traces["chat gpt-4o"])
    assert answer["findings"] == [
        {
            "time": "2025-06-02T10:01:02Z",
            "trace_id": world.traces["chat gpt-4o"],
            "span_id": world.spans["chat gpt-4o"],
            "service": "support-bot",
            "tenant": "acme",
            "detector": "secret.openai_key",
            "category": "secret",
            "severity": "high",
            "confidence": 0.9,
            "attributes": {"gen_ai.security.location": "input"},
        }
    ]


def test_findings_page_by_page(world: World) -> None:
    first = world.json("/api/v1/findings", **world.window(), limit="2")
    second = world.json("/api/v1/findings", **world.window(), limit="2", cursor=first["next_cursor"])
    assert [f["detector"] for f in first["findings"] + second["findings"]] == FINDINGS
    assert second["next_cursor"] is None


def test_a_conversation_gathers_its_calls_and_findings(world: World) -> None:
    answer = world.json("/api/v1/conversations/c-acme-1", end=rfc3339(HOUR + 60 * MINUTE))
    assert answer["start"] == rfc3339(HOUR + 60 * MINUTE - 31 * 24 * 60 * MINUTE)  # max_time_window by default
    assert answer["summary"] == {
        "calls": 1,
        "errors": 0,
        "tokens": {"input": 100, "output": 20, "cache_read": 10, "cache_creation": 0, "reasoning": 0},
        "cost_usd": 0.0125,
        "first": "2025-06-02T10:01:01Z",
        "last": "2025-06-02T10:01:01Z",
        "models": ["gpt-4o"],
        "services": ["support-bot"],
        "trace_count": 1,
    }
    assert answer["trace_ids"] == [world.traces["chat gpt-4o"]]
    assert [call["span_id"] for call in answer["calls"]] == [world.spans["chat gpt-4o"]]
    assert [finding["detector"] for finding in answer["findings"]] == ["secret.openai_key"]
    assert answer["truncated"] is False


def test_conversations_latest_first_with_their_totals_in_the_callers_scope(world: World) -> None:
    answer = world.json("/api/v1/conversations", **world.window())
    assert [item["conversation_id"] for item in answer["conversations"]] == ["c-globex-1", "c-acme-1"]
    globex, acme = answer["conversations"]
    assert (globex["calls"], globex["errors"], globex["cost_usd"], globex["trace_count"]) == (1, 1, 0.03, 1)
    assert acme == {
        "conversation_id": "c-acme-1",
        **world.json("/api/v1/conversations/c-acme-1", end=rfc3339(HOUR + 60 * MINUTE))["summary"],
    }
    seen_by_acme = world.json("/api/v1/conversations", "acme", **world.window())["conversations"]
    assert [item["conversation_id"] for item in seen_by_acme] == ["c-acme-1"]
    assert world.json("/api/v1/conversations", **world.window(), service="cron")["conversations"] == []


def test_conversations_page_by_page(world: World) -> None:
    first = world.json("/api/v1/conversations", **world.window(), limit="1")
    second = world.json("/api/v1/conversations", **world.window(), limit="1", cursor=first["next_cursor"])
    pages = [item["conversation_id"] for item in first["conversations"] + second["conversations"]]
    assert pages == ["c-globex-1", "c-acme-1"]
    assert second["next_cursor"] is None


@pytest.mark.parametrize(("conversation", "key"), [("c-nobody", "admin"), ("c-acme-1", "globex")])
def test_an_unknown_or_unseen_conversation_is_404(world: World, conversation: str, key: str) -> None:
    answer = world.get(f"/api/v1/conversations/{conversation}", key, end=rfc3339(HOUR + 60 * MINUTE))
    assert (answer.status_code, answer.json()["code"]) == (404, "not_found")


def test_services_with_their_spans_and_calls(world: World) -> None:
    everyone = world.json("/api/v1/services", **world.window())["services"]
    assert everyone == [
        {"name": "batch-job", "span_count": 2, "llm_calls": 2},
        {"name": "cron", "span_count": 2, "llm_calls": 1},
        {"name": "support-bot", "span_count": 4, "llm_calls": 2},
    ]
    acme = world.json("/api/v1/services", "acme", **world.window())["services"]
    assert acme == [
        {"name": "batch-job", "span_count": 2, "llm_calls": 2},
        {"name": "support-bot", "span_count": 3, "llm_calls": 1},
    ]
