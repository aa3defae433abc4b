"""The blocking half of the otlp exporter: one batch in, ExportTraceServiceRequests out over gRPC.

It runs in the exporterhelper's worker threads (a blocking grpc channel is
thread-safe, so several consumers share one). A failed call becomes a
RetryableError or PermanentError as exporters.otlp.status decides; the
exporterhelper retries the one and drops and counts the other. A response with
a partial success is delivered as far as the exporterhelper is concerned; the
spans the server rejected are counted in ``otelcol_exporter_rejected_spans``
and its message is logged as a warning.

Header values are secrets: they go into the call's metadata and nowhere else,
and any of them a server echoes back is blanked before its text is shown.
"""

from __future__ import annotations

import grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from collector.component import ComponentSettings
from collector.config.types import HostPort
from collector.queue import Batch
from exporters.otlp.channel import open_channel
from exporters.otlp.config import OtlpSettings
from exporters.otlp.requests import MAX_REQUEST_BYTES, cut_requests
from exporters.otlp.status import error_for_rpc

EXPORT_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
REJECTED_SPANS_METRIC = "otelcol_exporter_rejected_spans"
REDACTED = "***"


class OtlpSender:
    """Sends batches to one OTLP/gRPC receiver."""

    def __init__(
        self,
        settings: ComponentSettings,
        config: OtlpSettings,
        endpoint: HostPort,
        max_request_bytes: int = MAX_REQUEST_BYTES,
    ) -> None:
        self._config = config
        self._endpoint = endpoint
        self._logger = settings.logger
        self._telemetry = settings.telemetry
        self._labels = {"exporter": str(settings.id)}
        self._max_request_bytes = max_request_bytes
        self._metadata = config.metadata()
        # Longest first, so a secret containing another is blanked whole.
        self._secrets = sorted({value for _, value in self._metadata if value}, key=len, reverse=True)
        self._channel: grpc.Channel | None = None
        self._export: grpc.UnaryUnaryMultiCallable | None = None

    @property
    def endpoint(self) -> HostPort:
        return self._endpoint

    def start(self) -> None:
        self._channel = open_channel(self._endpoint, self._config)
        # The request goes out as bytes already serialized (see cut_requests), so no serializer.
        self._export = self._channel.unary_unary(
            EXPORT_METHOD,
            request_serializer=None,
            response_deserializer=ExportTraceServiceResponse.FromString,
        )

    def close(self) -> None:
        if self._channel is not None:
            self._channel.close()
            self._channel = None
            self._export = None

    def send(self, batch: Batch) -> None:
        export = self._export
        assert export is not None, "the otlp exporter is not started"
        # A batch larger than one request leaves as several; if a later one fails, the retry
        # sends the whole batch again, so the receiver may see the earlier ones twice.
        for request in cut_requests(batch.items, self._max_request_bytes):
            try:
                response = export(request, timeout=self._config.timeout, metadata=self._metadata)
            except grpc.RpcError as exc:
                # `from None`: the RpcError's own text is not shown, only the redacted summary.
                raise error_for_rpc(exc, str(self._endpoint), self.redact) from None
            self._note_partial_success(response)

    def redact(self, text: str) -> str:
        """``text`` with every header value blanked."""
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return text

    def _note_partial_success(self, response: ExportTraceServiceResponse) -> None:
        partial = response.partial_success
        message = self.redact(partial.error_message)
        if partial.rejected_spans > 0:
            self._telemetry.add(REJECTED_SPANS_METRIC, partial.rejected_spans, **self._labels)
            self._logger.warning(
                "%s rejected %d spans of the request: %s",
                self._endpoint,
                partial.rejected_spans,
                message or "(no reason given)",
            )
        elif message:
            # The specification's way for a server to warn while accepting everything.
            self._logger.warning("%s accepted the request with a warning: %s", self._endpoint, message)
