"""The OTLP Export services, one per signal: gRPC names, responses and their partial success.

The request of each service has the wire format of its signal's data message
(``TracesData``, ``LogsData``, ``MetricsData``); its response may carry a
partial success naming how many items were rejected (``rejected_spans``,
``rejected_log_records``, ``rejected_data_points``). The receiver answers with
these, and the otlp and otlphttp exporters call and read them.
"""

from __future__ import annotations

from dataclasses import dataclass

from google.protobuf.message import Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceResponse
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from collector.signals import Signal

EXPORT_METHOD = "Export"


@dataclass(frozen=True)
class ExportService:
    """One signal's Export service."""

    signal: Signal
    grpc_service: str
    response_type: type[Message]
    # The partial success's count of rejected items.
    rejected_field: str

    @property
    def grpc_method(self) -> str:
        """The full method name a gRPC client calls."""
        return f"/{self.grpc_service}/{EXPORT_METHOD}"

    def answer(self, rejected: int = 0, message: str = "") -> Message:
        """The response: empty, or with a partial success when items were rejected or there is a message."""
        response = self.response_type()
        if rejected or message:
            partial = response.partial_success  # type: ignore[attr-defined]
            setattr(partial, self.rejected_field, rejected)
            partial.error_message = message
        return response

    def partial_success(self, response: Message) -> tuple[int, str]:
        """How many items ``response`` says were rejected, and the server's message."""
        partial = response.partial_success  # type: ignore[attr-defined]
        return int(getattr(partial, self.rejected_field)), str(partial.error_message)


SERVICES: dict[Signal, ExportService] = {
    "traces": ExportService(
        "traces", "opentelemetry.proto.collector.trace.v1.TraceService", ExportTraceServiceResponse, "rejected_spans"
    ),
    "logs": ExportService(
        "logs", "opentelemetry.proto.collector.logs.v1.LogsService", ExportLogsServiceResponse, "rejected_log_records"
    ),
    "metrics": ExportService(
        "metrics",
        "opentelemetry.proto.collector.metrics.v1.MetricsService",
        ExportMetricsServiceResponse,
        "rejected_data_points",
    ),
}
