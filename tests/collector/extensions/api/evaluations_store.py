"""A collector whose store holds the genai_evaluation connector's result records, stored as the clickhouse
exporter of a logs pipeline stores them (``genai_evaluations`` filled from ``otel_logs`` by its view)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

from opentelemetry.proto.logs.v1.logs_pb2 import LogsData

from collector import semconv
from collector.queue import Batch
from collector.signals import item_count
from connectors.genai_evaluation.records import result_records
from connectors.genai_evaluation.result import Outcome
from connectors.genai_evaluation.subject import Subject
from exporters.clickhouse.config import ClickHouseConfig
from exporters.clickhouse.store import ClickHouseStore
from tests.conftest import RunningService

HOUR_NS = 3600 * 1_000_000_000
BASE_NS = 1_767_225_600 * 1_000_000_000  # 2026-01-01T00:00:00Z


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
    store.serves_logs_or_metrics = True
    store.start()
    try:
        # As the clickhouse exporter of a logs pipeline stores them: otel_logs rows, genai_evaluations by its view.
        for logs in _results():
            store.send_logs(Batch([logs], item_count(logs)))
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


