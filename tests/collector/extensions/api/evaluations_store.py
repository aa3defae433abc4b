"""A collector whose store holds a genai_evaluations table of the genai_evaluation connector's records.

The table is made here from the columns the contract between the connector and the store names
(one row per gen_ai.evaluation.result record); the store's own DDL replaces this fixture once the
clickhouse exporter's logs path writes it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from opentelemetry.proto.logs.v1.logs_pb2 import LogsData

from collector import semconv
from collector.pdata import any_value, resource_attribute
from connectors.genai_evaluation.records import EVALUATOR, PASSED, result_records
from connectors.genai_evaluation.result import Outcome
from connectors.genai_evaluation.subject import Subject
from exporters.clickhouse.config import ClickHouseConfig
from exporters.clickhouse.store import ClickHouseStore
from tests.conftest import RunningService

HOUR_NS = 3600 * 1_000_000_000
BASE_NS = 1_767_225_600 * 1_000_000_000  # 2026-01-01T00:00:00Z
EVALUATIONS_DDL = """
CREATE TABLE genai_evaluations (
    Timestamp DateTime64(9), TraceId String, SpanId String, ServiceName LowCardinality(String),
    TenantId LowCardinality(String), EvaluationName LowCardinality(String), ScoreValue Nullable(Float64),
    ScoreLabel String, Passed Nullable(Bool), Explanation String, ResponseId String, Evaluator String,
    ErrorType String, OperationName String, ProviderName String, RequestModel String, ResponseModel String
) ENGINE = MergeTree ORDER BY (EvaluationName, ServiceName, toStartOfHour(Timestamp), TraceId)
"""
COLUMNS = (
    "Timestamp", "TraceId", "SpanId", "ServiceName", "TenantId", "EvaluationName", "ScoreValue", "ScoreLabel",
    "Passed", "Explanation", "ResponseId", "Evaluator", "ErrorType", "OperationName", "ProviderName",
    "RequestModel", "ResponseModel",
)  # fmt: skip


def rows_of(logs: LogsData) -> list[list[Any]]:
    """The genai_evaluations rows of the connector's records, one per record."""
    import datetime

    rows = []
    for resource_logs in logs.resource_logs:
        service = str(resource_attribute(resource_logs.resource, semconv.SERVICE_NAME) or "")
        for scope_logs in resource_logs.scope_logs:
            for record in scope_logs.log_records:
                values = {pair.key: any_value(pair.value) for pair in record.attributes}
                when = datetime.datetime.fromtimestamp(record.time_unix_nano / 1e9, datetime.UTC)
                rows.append(
                    [
                        when, record.trace_id.hex(), record.span_id.hex(), service,
                        values.get(semconv.TENANT_ID, ""), values[semconv.EVALUATION_NAME],
                        values.get(semconv.EVALUATION_SCORE_VALUE), values.get(semconv.EVALUATION_SCORE_LABEL, ""),
                        values.get(PASSED), values.get(semconv.EVALUATION_EXPLANATION, ""),
                        values.get(semconv.RESPONSE_ID, ""), values[EVALUATOR], values.get(semconv.ERROR_TYPE, ""),
                        values.get(semconv.OPERATION_NAME, ""), values.get(semconv.PROVIDER_NAME, ""),
                        values.get(semconv.REQUEST_MODEL, ""), values.get(semconv.RESPONSE_MODEL, ""),
                    ]
                )  # fmt: skip
    return rows


# The tenant of some evaluated calls (tenant.id), for the key-bound reads.
TENANTS = {1: "acme", 2: "acme", 4: "globex"}


def _subject(number: int, service: str, model: str) -> Subject:
    attributes = {semconv.REQUEST_MODEL: model, semconv.RESPONSE_MODEL: f"{model}-2024", semconv.OPERATION_NAME: "chat"}
    if number in TENANTS:
        attributes[semconv.TENANT_ID] = TENANTS[number]
    resource = {"service.name": service}
    return Subject(number.to_bytes(16, "big"), number.to_bytes(8, "big"), "chat", 0, 0, attributes, resource)


def _results() -> list[LogsData]:
    judge = "judge:gpt-4o-mini"
    hour0 = [
        (_subject(1, "shop", "gpt-4o"), "relevance", Outcome(judge, score=5.0, passed=True)),
        (_subject(2, "shop", "gpt-4o"), "relevance", Outcome(judge, score=2.0, passed=False, explanation="off topic")),
        (_subject(3, "shop", "gpt-4o"), "relevance", Outcome(judge, explanation="no", error_type="unparseable_answer")),
        (_subject(4, "billing", "gpt-4o"), "relevance", Outcome(judge, score=1.0, passed=False)),
    ]
    hour1 = [
        (_subject(5, "shop", "gpt-4o"), "relevance", Outcome(judge, score=4.0, passed=True)),
        (_subject(6, "shop", "gpt-4o"), "json", Outcome("rule:json_valid", score=0.0, label="fail", passed=False)),
    ]
    return [result_records(hour0, now_ns=BASE_NS + 60), result_records(hour1, now_ns=BASE_NS + HOUR_NS + 60)]


def evaluations_collector(root: Path, keys_file: Path | None = None) -> Iterator[RunningService]:
    """A running collector with the api extension over a store holding ``_results()``; reads are open on
    loopback unless ``keys_file`` holds keys."""
    chdb = root / "clickhouse"
    store = ClickHouseStore(ClickHouseConfig(endpoint=f"chdb://{chdb}"), logging.getLogger("test.store"))
    store.start()
    try:
        client = store._connect()
        client.command(EVALUATIONS_DDL)
        client.insert("genai_evaluations", [row for logs in _results() for row in rows_of(logs)], COLUMNS)
        client.close()
    finally:
        store.close()
    running = RunningService(_config(chdb, keys_file or root / "api-keys.json"), root)
    try:
        yield running
    finally:
        running.stop()


def _config(chdb: Path, keys_file: Path) -> str:
    return f"""
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:0
exporters:
  clickhouse:
    endpoint: chdb://{chdb}
extensions:
  api:
    endpoint: 127.0.0.1:0
    grpc_endpoint: 127.0.0.1:0
    keys_file: {keys_file}
service:
  extensions: [api]
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [clickhouse]
"""


