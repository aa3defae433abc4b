"""The genai_evaluation connector wired as the docs show it: a traces pipeline feeds it, its results go down a
logs pipeline into genai_evaluations, its judge calls' spans down a traces pipeline of their own; the results
equal those of the same connector built by hand over the same spans, and no judge call is judged."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

import httpx
import yaml

from collector import semconv
from collector.signals import merged
from connectors.genai_evaluation.command import result_lines
from tests.conftest import RunningService, collector_yaml, query_store
from tests.connectors.genai_evaluation.support import (
    JUDGE_KEY,
    attributes,
    build,
    config,
    evaluate,
    run,
)
from tests.connectors.genai_evaluation.test_backfill import CALLS, _calls, _connector
from tests.proxy.mock_upstream import MockUpstream, serve

CLIENT_TIMEOUT_SECONDS = 30.0


def _config(chdb_path: Path, connector: dict[str, Any], api: Path | None = None) -> str:
    document = yaml.safe_load(collector_yaml(chdb_path))
    if api is not None:  # the Read API, open to loopback readers (no keys in the file)
        loopback = "127.0.0.1:0"
        document["extensions"]["api"] = {"endpoint": loopback, "grpc_endpoint": loopback, "keys_file": str(api)}
        document["service"]["extensions"].append("api")
    document["connectors"] = {"genai_evaluation": connector}
    pipelines = document["service"]["pipelines"]
    pipelines["traces"]["exporters"] = ["clickhouse", "genai_evaluation"]
    pipelines["logs/evaluations"] = {"receivers": ["genai_evaluation"], "exporters": ["clickhouse"]}
    pipelines["traces/evaluator"] = {"receivers": ["genai_evaluation"], "exporters": ["clickhouse"]}
    return yaml.safe_dump(document)


def test_results_reach_genai_evaluations_and_judge_calls_are_stored_but_never_judged(
    tmp_path: Path, chdb_path: Path
) -> None:
    calls = _calls()
    mock = MockUpstream(openai_key=JUDGE_KEY)
    with serve(mock) as url:
        collector = RunningService(_config(chdb_path, _connector(url)), tmp_path)
        try:
            response = httpx.post(
                f"http://127.0.0.1:{collector.port()}/v1/traces",
                content=calls.traces.SerializeToString(),
                headers={"content-type": "application/x-protobuf"},
                timeout=CLIENT_TIMEOUT_SECONDS,
            )
            assert response.status_code == 200, response.text
        finally:
            collector.stop()  # the connector drains its queued evaluations into the logs pipeline first
        judged_in_collector = len(mock.requests_to("/v1/chat/completions"))
        live = build(config(_connector(url)))
        run(evaluate(live, calls.traces))

    expected = sorted(result_lines(merged(live.logs.batches)))
    assert expected and judged_in_collector == len(mock.requests_to("/v1/chat/completions")) - judged_in_collector
    stored = query_store(
        chdb_path,
        "SELECT EvaluationName, SpanId, ScoreValue, ScoreLabel, Passed, Evaluator, ErrorType FROM genai_evaluations",
    )
    by_hand = {
        (values[semconv.EVALUATION_NAME], record.span_id.hex(), values.get(semconv.EVALUATION_SCORE_VALUE))
        for record in live.logs.records()
        for values in [attributes(record)]
    }
    assert {(name, span, score) for name, span, score, *_ in stored} == by_hand
    assert len(stored) == len(expected)
    # Every judge call was recorded as a span of its own, marked, in the evaluator's pipeline; none was judged.
    judge_spans = query_store(
        chdb_path,
        f"SELECT SpanId FROM otel_traces WHERE SpanAttributes['{semconv.EVALUATOR_CALL}'] = 'true'",
    )
    assert len(judge_spans) == judged_in_collector > 0
    evaluated = {span for _, span, *_ in stored}
    assert evaluated.isdisjoint({span for [span] in judge_spans})
    assert query_store(chdb_path, "SELECT count() FROM genai_calls WHERE ServiceName = 'shop'") == [[CALLS]]

    # The Read API's trace view carries the results on the trace's spans.
    [[trace_id, on_trace]] = query_store(
        chdb_path, "SELECT TraceId, count() FROM genai_evaluations GROUP BY TraceId ORDER BY TraceId LIMIT 1"
    )
    reader = RunningService(_config(chdb_path, _connector("http://127.0.0.1:9"), api=tmp_path / "keys.json"), tmp_path)
    api = f"http://127.0.0.1:{reader.api_port()}/api/v1"
    try:
        response = httpx.get(f"{api}/traces/{trace_id}", timeout=CLIENT_TIMEOUT_SECONDS)
        since = (datetime.datetime.now(datetime.UTC) - datetime.timedelta(hours=1)).isoformat()
        window = {"start": since, "service": "shop", "limit": str(CALLS)}
        listed = httpx.get(f"{api}/calls", params={**window, "evaluations": "true"}, timeout=CLIENT_TIMEOUT_SECONDS)
    finally:
        reader.stop()
    assert response.status_code == 200, response.text
    shown = response.json()["evaluations"]
    assert len(shown) == on_trace and {result["trace_id"] for result in shown} == {trace_id}
    assert {(r["dimension"], r["span_id"], r["score"]) for r in shown} <= by_hand
    # And the calls view, each call with the results on it.
    assert listed.status_code == 200, listed.text
    on_calls = {(r["dimension"], r["span_id"], r["score"]) for c in listed.json()["calls"] for r in c["evaluations"]}
    assert on_calls == by_hand
    assert all(r["span_id"] == c["span_id"] for c in listed.json()["calls"] for r in c["evaluations"])

