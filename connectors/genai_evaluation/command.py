"""``genai-collector evaluate``: one dimension of a genai_evaluation connector over calls already stored.

::

    genai-collector evaluate --since 24h --dimension relevance [--judge-model gpt-4o-mini] [--limit N]
                             [--dry-run] [--connector ID] [--exporter ID] [--otlp-endpoint URL] [--config PATH]

It prints one JSON line per result (the ``gen_ai.evaluation.result`` record's attributes, with the
evaluated trace and span ids) and a summary. ``--dry-run`` prints the calls it would evaluate and the
most the judge calls may cost, and calls no judge. ``--otlp-endpoint`` also sends the result records
as OTLP/HTTP logs (to ``URL/v1/logs``) so that a running collector stores them as it stores live ones.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TextIO

import httpx
from opentelemetry.proto.logs.v1.logs_pb2 import LogsData

from collector.config.decode import decode
from collector.config.types import Duration
from collector.pdata import any_value
from connectors.genai_evaluation.backfill import (
    DEFAULT_LIMIT,
    Backfill,
    describe,
    since_ns,
    stored_calls_sql,
    subjects_of,
    with_judge_model,
)
from connectors.genai_evaluation.config import GenAiEvaluationConfig
from connectors.genai_evaluation.records import result_records
from connectors.genai_evaluation.result import Outcome
from connectors.genai_evaluation.subject import Subject

CONNECTOR_TYPE = "genai_evaluation"
DEFAULT_SINCE = "24h"
OTLP_TIMEOUT_SECONDS = 30.0
PROTOBUF = "application/x-protobuf"


class EvaluateError(Exception):
    """A user's mistake in the command's arguments; one line."""


@dataclass(frozen=True)
class EvaluateArguments:
    since: str = DEFAULT_SINCE
    dimension: str = ""
    judge_model: str | None = None
    limit: int = DEFAULT_LIMIT
    dry_run: bool = False
    connector: str | None = None
    otlp_endpoint: str | None = None


def connector_config(document: Mapping[str, Any], connector: str | None) -> GenAiEvaluationConfig:
    """The settings of the genai_evaluation connector ``connector`` (or the only one) in the config document."""
    section = document.get("connectors") or {}
    if not isinstance(section, dict):
        raise EvaluateError("connectors: expected a mapping")
    found = {str(key): raw for key, raw in section.items() if str(key).partition("/")[0] == CONNECTOR_TYPE}
    if connector is not None:
        if connector not in found:
            raise EvaluateError(
                f'no {CONNECTOR_TYPE} connector "{connector}"; configured: {", ".join(found) or "none"}'
            )
        name = connector
    elif len(found) == 1:
        name = next(iter(found))
    elif not found:
        raise EvaluateError(f"no {CONNECTOR_TYPE} connector is configured under connectors")
    else:
        raise EvaluateError(
            f"several {CONNECTOR_TYPE} connectors are configured ({', '.join(found)}); choose one with --connector"
        )
    return decode(GenAiEvaluationConfig, found[name], f"connectors.{name}")


def evaluate(
    document: Mapping[str, Any],
    arguments: EvaluateArguments,
    query: Any,
    traces_table: str,
    out: TextIO,
) -> None:
    """Run the command; ``query(sql)`` answers read-only SQL from the store (collector.query.client.run_query)."""
    config = connector_config(document, arguments.connector)
    names = [d.name for d in config.dimensions]
    if arguments.dimension not in names:
        raise EvaluateError(f'no dimension "{arguments.dimension}"; configured: {", ".join(names)}')
    if arguments.judge_model:
        config = with_judge_model(config, arguments.dimension, arguments.judge_model)
        if config.judge.upstream_for(arguments.judge_model) is None:
            raise EvaluateError(f'--judge-model: no judge upstream serves "{arguments.judge_model}"')
    try:
        window = Duration.from_config(arguments.since)
    except ValueError as exc:
        raise EvaluateError(f"--since: {exc}") from None
    if arguments.limit < 1:
        raise EvaluateError("--limit: must be at least 1")
    until = since_ns(0)
    sql = stored_calls_sql(traces_table, since_ns(window, until), until, arguments.limit)
    backfill = Backfill.plan(config, arguments.dimension, subjects_of(query(sql)))
    if arguments.dry_run:
        for subject in backfill.selected:
            out.write(json.dumps(describe(subject)) + "\n")
        evaluator = (
            backfill.dimension.rule.evaluator if backfill.dimension.rule else f"judge:{backfill.dimension.judge_model}"
        )
        out.write(
            f"would evaluate {len(backfill.selected)} calls on {arguments.dimension} with {evaluator}; "
            f"estimated cost at most {backfill.estimated_usd():.6f} USD\n"
        )
        return
    results: list[tuple[Subject, str, Outcome]] = []

    def on_result(subject: Subject, outcome: Outcome) -> None:
        results.append((subject, arguments.dimension, outcome))

    skipped = asyncio.run(backfill.run(on_result))
    records = result_records(results)
    for line in result_lines(records):
        out.write(line + "\n")
    if arguments.otlp_endpoint and results:
        send_logs(arguments.otlp_endpoint, records)
    passed = sum(1 for _, _, o in results if o.passed)
    errors = sum(1 for _, _, o in results if o.failed)
    out.write(
        f"evaluated {len(results)} calls on {arguments.dimension}: {passed} passed, {errors} errors"
        + (f", {skipped} left out by the judge's daily budget" if skipped else "")
        + "\n"
    )


def result_lines(records: LogsData) -> list[str]:
    """One JSON line per record: the evaluated trace and span ids and the record's attributes, sorted."""
    lines = []
    for resource_logs in records.resource_logs:
        for scope_logs in resource_logs.scope_logs:
            for record in scope_logs.log_records:
                values = {pair.key: any_value(pair.value) for pair in record.attributes}
                line = {"trace_id": record.trace_id.hex(), "span_id": record.span_id.hex(), **values}
                lines.append(json.dumps(line, sort_keys=True))
    return sorted(lines)


def send_logs(endpoint: str, records: LogsData) -> None:
    """The records to a collector's OTLP/HTTP receiver."""
    url = endpoint.rstrip("/") + "/v1/logs"
    try:
        response = httpx.post(
            url, content=records.SerializeToString(), headers={"content-type": PROTOBUF}, timeout=OTLP_TIMEOUT_SECONDS
        )
    except httpx.HTTPError as exc:
        raise EvaluateError(f"--otlp-endpoint: cannot send the results to {url}: {type(exc).__name__}") from None
    if response.status_code != 200:
        raise EvaluateError(f"--otlp-endpoint: {url} answered HTTP {response.status_code}")
