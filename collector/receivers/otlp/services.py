"""The OTLP Export services the receiver serves, one per signal: gRPC names, HTTP paths' defaults, responses.

The request of each service has the wire format of its signal's data message
(``TracesData``, ``LogsData``, ``MetricsData``); its response may carry a
partial success naming the items rejected (``rejected_spans``,
``rejected_log_records``, ``rejected_data_points``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from google.protobuf.message import Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsPartialSuccess,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsPartialSuccess,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceResponse,
)

from collector.signals import Signal


@dataclass(frozen=True)
class ExportService:
    """One signal's Export service."""

    signal: Signal
    grpc_service: str
    # The response, with a partial success when ``rejected`` items were rejected or there is a message.
    answer: Callable[[int, str], Message]


def _traces_answer(rejected: int, message: str) -> Message:
    if not rejected and not message:
        return ExportTraceServiceResponse()
    partial = ExportTracePartialSuccess(rejected_spans=rejected, error_message=message)
    return ExportTraceServiceResponse(partial_success=partial)


def _logs_answer(rejected: int, message: str) -> Message:
    if not rejected and not message:
        return ExportLogsServiceResponse()
    partial = ExportLogsPartialSuccess(rejected_log_records=rejected, error_message=message)
    return ExportLogsServiceResponse(partial_success=partial)


def _metrics_answer(rejected: int, message: str) -> Message:
    if not rejected and not message:
        return ExportMetricsServiceResponse()
    partial = ExportMetricsPartialSuccess(rejected_data_points=rejected, error_message=message)
    return ExportMetricsServiceResponse(partial_success=partial)


EXPORT_METHOD = "Export"
SERVICES: dict[Signal, ExportService] = {
    "traces": ExportService("traces", "opentelemetry.proto.collector.trace.v1.TraceService", _traces_answer),
    "logs": ExportService("logs", "opentelemetry.proto.collector.logs.v1.LogsService", _logs_answer),
    "metrics": ExportService("metrics", "opentelemetry.proto.collector.metrics.v1.MetricsService", _metrics_answer),
}
