"""The ``otlp`` receiver: OTLP traces, logs and metrics over gRPC (:4317) and HTTP (:4318).

One instance serves every signal it is in a pipeline of (as the Collector's
otlp receiver does): each signal's creator registers its pipeline consumer
with the instance ``ComponentSettings.shared`` holds, and the listeners serve
the Export service and URL path of each registered signal. A signal in no
pipeline is not served (404, gRPC UNIMPLEMENTED).
"""

from __future__ import annotations

from typing import Any

from collector.component import (
    Component,
    ComponentSettings,
    Consumer,
    Host,
    LogsConsumer,
    MetricsConsumer,
    ReceiverFactory,
    TracesConsumer,
)
from collector.httpserver import HttpServer
from collector.receivers.otlp.config import OtlpReceiverConfig
from collector.receivers.otlp.grpc import GrpcReceiver
from collector.receivers.otlp.http import serving_app
from collector.receivers.otlp.ingest import Ingest
from collector.signals import Signal


class OtlpReceiver:
    """Both transports of one ``otlp`` receiver, for every signal registered; either transport may be off."""

    def __init__(
        self, settings: ComponentSettings, config: OtlpReceiverConfig, consumer: TracesConsumer | None = None
    ) -> None:
        self._settings = settings
        self._config = config
        self.grpc: GrpcReceiver | None = None
        self.http: HttpServer | None = None
        # The HTTP app's ingests by signal, filled as signals register (before start).
        self._http_ingests: dict[Signal, Ingest] = {}
        self._logger = settings.logger
        protocols = config.protocols
        self._hosts = {
            "grpc": protocols.grpc.endpoint.host if protocols.grpc else "",
            "http": protocols.http.endpoint.host if protocols.http else "",
        }
        if consumer is not None:
            self.register("traces", consumer)

    def register(self, signal: Signal, consumer: Consumer[Any]) -> None:
        """Serve ``signal`` into ``consumer``; before start. The transports are made with the first signal."""
        settings, config, protocols = self._settings, self._config, self._config.protocols
        receiver = str(settings.id)

        def ingest(transport: str) -> Ingest:
            return Ingest(consumer, settings.telemetry, receiver, transport, settings.logger, config.limits, signal)

        if protocols.grpc is not None:
            if self.grpc is None:
                self.grpc = GrpcReceiver(protocols.grpc, ingest("grpc"))
            else:
                self.grpc.serve(ingest("grpc"))
        if protocols.http is not None:
            self._http_ingests[signal] = ingest("http")
            if self.http is None:
                app = serving_app(protocols.http, self._http_ingests)
                self.http = HttpServer(app, protocols.http, listener=receiver, telemetry=settings.telemetry)

    async def start(self, host: Host) -> None:
        if self.grpc is not None:
            await self.grpc.start()
            self._logger.info("OTLP/gRPC listening on %s:%d", self._hosts["grpc"], self.grpc.port)
        if self.http is not None:
            try:
                await self.http.start()
            except Exception:
                await self.shutdown()
                raise
            self._logger.info("OTLP/HTTP listening on %s:%d", self._hosts["http"], self.http.port)

    def health_problems(self) -> list[str]:
        problems = [f"OTLP/HTTP {problem}" for problem in (self.http.health_problems() if self.http else [])]
        if self.grpc is not None and not self.grpc.serving:
            problems.append("OTLP/gRPC not serving")
        return problems

    async def shutdown(self) -> None:
        if self.http is not None:
            await self.http.stop()
        if self.grpc is not None:
            await self.grpc.stop()


def _shared(settings: ComponentSettings, config: OtlpReceiverConfig) -> OtlpReceiver:
    """The one receiver of ``settings.id`` in this service, whichever signal asks first."""
    return settings.shared.get_or_make("receiver", settings.id, lambda: OtlpReceiver(settings, config))


def create_receiver(settings: ComponentSettings, config: OtlpReceiverConfig, consumer: TracesConsumer) -> Component:
    receiver = _shared(settings, config)
    receiver.register("traces", consumer)
    return receiver


def create_logs_receiver(settings: ComponentSettings, config: OtlpReceiverConfig, consumer: LogsConsumer) -> Component:
    receiver = _shared(settings, config)
    receiver.register("logs", consumer)
    return receiver


def create_metrics_receiver(
    settings: ComponentSettings, config: OtlpReceiverConfig, consumer: MetricsConsumer
) -> Component:
    receiver = _shared(settings, config)
    receiver.register("metrics", consumer)
    return receiver


factory = ReceiverFactory(
    type="otlp",
    config_type=OtlpReceiverConfig,
    create=create_receiver,
    create_logs=create_logs_receiver,
    create_metrics=create_metrics_receiver,
)
