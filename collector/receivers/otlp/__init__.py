"""The ``otlp`` receiver: OTLP traces over gRPC (:4317) and HTTP (:4318)."""

from __future__ import annotations

from collector.component import Component, ComponentSettings, Host, ReceiverFactory, TracesConsumer
from collector.httpserver import HttpServer
from collector.receivers.otlp.config import OtlpReceiverConfig
from collector.receivers.otlp.grpc import GrpcReceiver
from collector.receivers.otlp.http import create_app
from collector.receivers.otlp.ingest import Ingest


class OtlpReceiver:
    """Both transports of one ``otlp`` receiver; either may be off."""

    def __init__(self, settings: ComponentSettings, config: OtlpReceiverConfig, consumer: TracesConsumer) -> None:
        receiver = str(settings.id)
        protocols = config.protocols
        self.grpc: GrpcReceiver | None = None
        self.http: HttpServer | None = None
        if protocols.grpc is not None:
            self.grpc = GrpcReceiver(
                protocols.grpc, Ingest(consumer, settings.telemetry, receiver, "grpc", settings.logger, config.limits)
            )
        if protocols.http is not None:
            ingest = Ingest(consumer, settings.telemetry, receiver, "http", settings.logger, config.limits)
            app = create_app(protocols.http, ingest)
            self.http = HttpServer(app, protocols.http, listener=receiver, telemetry=settings.telemetry)
        self._logger = settings.logger
        self._hosts = {
            "grpc": protocols.grpc.endpoint.host if protocols.grpc else "",
            "http": protocols.http.endpoint.host if protocols.http else "",
        }

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


def create_receiver(settings: ComponentSettings, config: OtlpReceiverConfig, consumer: TracesConsumer) -> Component:
    return OtlpReceiver(settings, config, consumer)


factory = ReceiverFactory(type="otlp", config_type=OtlpReceiverConfig, create=create_receiver)
