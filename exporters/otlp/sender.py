"""The blocking half of the otlp exporter: one batch of a signal in, its Export requests out over gRPC.

It runs in the exporterhelper's worker threads (a blocking grpc channel is
thread-safe, so several consumers share one). A failed call becomes a
RetryableError or PermanentError as exporters.otlp.status decides; the
exporterhelper retries the one and drops and counts the other. A response with
a partial success is delivered as far as the exporterhelper is concerned; the
items the server rejected are counted in ``otelcol_exporter_rejected_spans``
(``_log_records``, ``_metric_points``) and its message is logged as a warning.

Header values are secrets: they go into the call's metadata and nowhere else,
and any of them a server echoes back is blanked before its text is shown.
"""

from __future__ import annotations

from typing import Any

import grpc

from collector.component import ComponentSettings
from collector.config.types import HostPort
from collector.queue import Batch
from collector.receivers.otlp.services import SERVICES
from collector.signal_metrics import signal_metrics
from collector.signals import Signal
from exporters.otlp.channel import open_channel
from exporters.otlp.config import OtlpSettings
from exporters.otlp.partial import note_partial_success
from exporters.otlp.redact import Redactor
from exporters.otlp.requests import MAX_REQUEST_BYTES, cut_requests
from exporters.otlp.status import error_for_rpc


class OtlpSender:
    """Sends batches of one signal to one OTLP/gRPC receiver."""

    def __init__(
        self,
        settings: ComponentSettings,
        config: OtlpSettings,
        endpoint: HostPort,
        max_request_bytes: int = MAX_REQUEST_BYTES,
        signal: Signal = "traces",
    ) -> None:
        self._config = config
        self._endpoint = endpoint
        self._signal = signal
        self._service = SERVICES[signal]
        self._logger = settings.logger
        self._rejected = signal_metrics(settings.telemetry, signal).exporter_rejected.bind(exporter=str(settings.id))
        self._max_request_bytes = max_request_bytes
        self._metadata = config.metadata()
        self._redact = Redactor(value for _, value in self._metadata)
        self._channel: grpc.Channel | None = None
        self._export: grpc.UnaryUnaryMultiCallable | None = None

    @property
    def endpoint(self) -> HostPort:
        return self._endpoint

    def start(self) -> None:
        self._channel = open_channel(self._endpoint, self._config)
        # The request goes out as bytes already serialized (see cut_requests), so no serializer.
        self._export = self._channel.unary_unary(
            self._service.grpc_method,
            request_serializer=None,
            response_deserializer=self._service.response_type.FromString,
        )

    def close(self) -> None:
        if self._channel is not None:
            self._channel.close()
            self._channel = None
            self._export = None

    def send(self, batch: Batch[Any]) -> None:
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
            note_partial_success(
                response, str(self._endpoint), self._redact, self._rejected, self._logger, self._signal
            )

    def redact(self, text: str) -> str:
        """``text`` with every header value blanked."""
        return self._redact(text)
