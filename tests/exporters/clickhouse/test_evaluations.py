"""``gen_ai.evaluation.result`` log records, as the genai_evaluation connector emits them (CONTRACTS §2 shape), sent
by the OpenTelemetry SDK's OTLP log exporter through a running collector: one genai_evaluations row each, every
column read back, besides each record's row in otel_logs."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource

from collector import semconv
from exporters.clickhouse.config import ClickHouseConfig
from exporters.clickhouse.evaluation_schema import EVALUATOR, PASSED
from exporters.clickhouse.store import ClickHouseStore
from tests.conftest import RunningService
from tests.exporters.clickhouse.signal_data import NANOS, SPAN_ID, TRACE_ID, in_span

CLIENT_TIMEOUT_SECONDS = 10.0
CALL = {
    semconv.OPERATION_NAME: "chat",
    semconv.PROVIDER_NAME: "openai",
    semconv.REQUEST_MODEL: "gpt-4o",
    semconv.RESPONSE_MODEL: "gpt-4o-2024-08-06",
    semconv.TENANT_ID: "acme",
}
# Per CONTRACTS §2: scored and labelled by a judge; labelled by a rule; failed (no score, ERROR severity).
RESULTS: list[dict[str, Any]] = [
    {
        "severity_number": SeverityNumber.INFO,
        "attributes": {
            **CALL,
            semconv.EVALUATION_NAME: "relevance",
            semconv.EVALUATION_SCORE_VALUE: 0.75,
            semconv.EVALUATION_SCORE_LABEL: "pass",
            semconv.EVALUATION_EXPLANATION: "Answers the question asked.",
            semconv.RESPONSE_ID: "chatcmpl-123",
            EVALUATOR: "judge:gpt-4o-mini",
            PASSED: True,
        },
    },
    {
        "severity_number": SeverityNumber.INFO,
        "attributes": {
            **CALL,
            semconv.EVALUATION_NAME: "no_pii",
            semconv.EVALUATION_SCORE_LABEL: "fail",
            EVALUATOR: "rule:regex",
            PASSED: False,
        },
    },
    {
        "severity_number": SeverityNumber.ERROR,
        "attributes": {
            **CALL,
            semconv.EVALUATION_NAME: "faithfulness",
            semconv.EVALUATION_EXPLANATION: "the judge did not answer within 30s",
            semconv.ERROR_TYPE: "timeout",
            EVALUATOR: "judge:gpt-4o-mini",
        },
    },
]

CONFIG = """
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:0
exporters:
  clickhouse:
    endpoint: chdb://{chdb}
    sending_queue:
      batch:
        flush_timeout: 50ms
service:
  pipelines:
    logs:
      receivers: [otlp]
      exporters: [clickhouse]
"""


@pytest.fixture
def stored(chdb_path: Path, tmp_path: Path) -> Iterator[ClickHouseStore]:
    collector = RunningService(CONFIG.format(chdb=chdb_path), tmp_path)
    try:
        provider = LoggerProvider(resource=Resource.create({"service.name": "support-agent"}))
        url = f"http://127.0.0.1:{collector.port()}/v1/logs"
        provider.add_log_record_processor(
            SimpleLogRecordProcessor(OTLPLogExporter(endpoint=url, timeout=CLIENT_TIMEOUT_SECONDS))
        )
        logger = provider.get_logger("genai_collector.genai_evaluation", "0.1.0")
        for i, result in enumerate(RESULTS):
            logger.emit(
                timestamp=NANOS + i,
                observed_timestamp=NANOS + 10 + i,
                context=in_span(),
                event_name=semconv.EVALUATION_RESULT_EVENT,
                **result,
            )
        logger.emit(timestamp=NANOS, body="an ordinary log line", context=in_span())
        provider.shutdown()
    finally:
        collector.stop()  # drains the queue into the store
    store = ClickHouseStore(ClickHouseConfig(endpoint=f"chdb://{chdb_path}"), logging.getLogger("test.stored"))
    try:
        yield store
    finally:
        store.close()


def test_each_evaluation_result_is_one_row_with_every_column(stored: ClickHouseStore) -> None:
    result = stored.query(
        "SELECT toUnixTimestamp64Nano(Timestamp) AS ns, * EXCEPT Timestamp FROM genai_evaluations ORDER BY ns"
    )
    rows = [dict(zip(result.columns, row, strict=True)) for row in result.rows]
    common = {
        "TraceId": f"{TRACE_ID:032x}",
        "SpanId": f"{SPAN_ID:016x}",
        "ServiceName": "support-agent",
        "TenantId": "acme",
        "OperationName": "chat",
        "ProviderName": "openai",
        "RequestModel": "gpt-4o",
        "ResponseModel": "gpt-4o-2024-08-06",
    }
    assert rows == [
        {
            "ns": NANOS,
            **common,
            "EvaluationName": "relevance",
            "ScoreValue": 0.75,
            "ScoreLabel": "pass",
            "Passed": True,
            "Explanation": "Answers the question asked.",
            "ResponseId": "chatcmpl-123",
            "Evaluator": "judge:gpt-4o-mini",
            "ErrorType": "",
        },
        {
            "ns": NANOS + 1,
            **common,
            "EvaluationName": "no_pii",
            "ScoreValue": None,
            "ScoreLabel": "fail",
            "Passed": False,
            "Explanation": "",
            "ResponseId": "",
            "Evaluator": "rule:regex",
            "ErrorType": "",
        },
        {
            "ns": NANOS + 2,
            **common,
            "EvaluationName": "faithfulness",
            "ScoreValue": None,
            "ScoreLabel": "",
            "Passed": None,
            "Explanation": "the judge did not answer within 30s",
            "ResponseId": "",
            "Evaluator": "judge:gpt-4o-mini",
            "ErrorType": "timeout",
        },
    ]
    # Each result keeps its row in otel_logs, and so does the ordinary record, which is no evaluation.
    logs = stored.query("SELECT EventName, SeverityNumber FROM otel_logs ORDER BY Timestamp, EventName").rows
    assert sorted(map(tuple, logs)) == sorted(
        [("", 0), (semconv.EVALUATION_RESULT_EVENT, 9), (semconv.EVALUATION_RESULT_EVENT, 9)]
        + [(semconv.EVALUATION_RESULT_EVENT, 17)]
    )
