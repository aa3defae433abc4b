"""The ``genai_proxy`` receiver: the GenAI proxy run by the collector, its spans into the pipeline.

With worker processes (``service.workers``, the default) the proxy serves from
a process of its own (collector.runtime.proxy_process), so ingest work never
delays a call; its spans cross to the pipeline as OTLP bytes. With none, it
serves on the collector's event loop and its spans go to the pipeline's
consumer as protobuf objects, with no serialisation in between. Either way,
shutting down stops taking calls, lets calls in flight finish, then hands the
last spans to the pipeline, which is still running (receivers stop first).
"""

from __future__ import annotations

import time

from collector.component import Component, ComponentSettings, Host, ReceiverFactory, TracesConsumer
from collector.counting import CountingConsumer
from collector.findings import SEVERITY_RANK
from collector.generated_metrics import PipelineSelfMetrics
from collector.httpserver import HttpServer
from collector.runtime.proxy_process import ProxyProcess
from processors.genai_cost.prices import PriceBook
from processors.genai_cost.prices import Usage as PricedUsage
from processors.genai_security.rules import BUILTIN_RULES
from processors.genai_security.scanner import Scanner
from proxy.app import ProxyService
from proxy.config import ProxyConfig
from proxy.export import PipelineSink
from proxy.guard import StreamCheck
from proxy.limits.limiter import Pricer
from proxy.record import Usage


class GenAiProxyReceiver:
    def __init__(self, settings: ComponentSettings, config: ProxyConfig, consumer: TracesConsumer) -> None:
        self._config = config
        self._logger = settings.logger
        # Counted as the otlp receiver counts its spans, so /metrics shows what the proxy fed the pipeline.
        metrics, receiver = PipelineSelfMetrics(settings.telemetry), str(settings.id)
        counted = CountingConsumer(
            consumer,
            accepted=metrics.receiver_accepted_spans.bind(receiver=receiver, transport="http"),
            refused=metrics.receiver_refused_spans.bind(receiver=receiver, transport="http"),
        )
        self._listener = str(settings.id)
        self._telemetry = settings.telemetry
        self._process: ProxyProcess | None = None
        self.proxy: ProxyService | None = None
        if settings.worker_processes:
            level = settings.logger.getEffectiveLevel()
            self._process = ProxyProcess(config, counted, settings.telemetry, self._listener, level)
        else:
            self.proxy = ProxyService(
                config,
                PipelineSink(counted),
                settings.telemetry,
                settings.logger,
                stream_check=stream_check(config),
                price=call_price(),
            )
        self._server: HttpServer | None = None

    @property
    def port(self) -> int:
        if self._process is not None:
            return self._process.port
        return self._server.port if self._server else self._config.endpoint.port

    async def start(self, host: Host) -> None:
        if self._process is not None:
            await self._process.start()
            self._logger.info(
                "GenAI proxy listening on %s:%d (in a process of its own)", self._config.endpoint.host, self.port
            )
            return
        assert self.proxy is not None
        await self.proxy.start()
        server = HttpServer(
            self.proxy.app, self._config, listener=self._listener, telemetry=self._telemetry, date_header=False
        )
        try:
            await server.start()
        except BaseException:
            await self.proxy.stop()
            raise
        self._server = server
        mode = "managed keys" if self.proxy.auth.is_managed() else "pass-through keys"
        self._logger.info("GenAI proxy listening on %s:%d (%s)", self._config.endpoint.host, server.port, mode)

    def health_problems(self) -> list[str]:
        if self._process is not None:
            return self._process.health_problems()
        if self._server is None:
            return ["the proxy is not serving"]
        return [f"the proxy: {problem}" for problem in self._server.health_problems()]

    async def shutdown(self) -> None:
        if self._process is not None:
            await self._process.stop()
            return
        if self._server is not None:
            await self._server.stop()
            self._server = None
        if self.proxy is not None:
            await self.proxy.stop()


def stream_check(config: ProxyConfig) -> StreamCheck | None:
    """The early-stop check the proxy runs on streamed output: the chosen genai_security detectors."""
    settings = config.early_stop
    if not settings.enabled:
        return None
    floor = SEVERITY_RANK[settings.min_severity]
    chosen = set(settings.detectors)
    rules = [
        rule
        for rule in BUILTIN_RULES
        if SEVERITY_RANK[rule.severity] >= floor or rule.id in chosen or rule.category in chosen
    ]
    scanner = Scanner(rules)

    def check(text: str) -> str | None:
        findings = scanner.scan(text, "assistant")
        return findings[0].rule_id if findings else None

    return check


def call_price() -> Pricer:
    """What a call costs in USD for the proxy's budgets: genai_cost's prices (genai-prices, used offline)."""
    book = PriceBook()

    def price(provider: str, model: str, usage: Usage) -> float | None:
        priced = PricedUsage(
            input_tokens=usage.input_tokens or 0,
            output_tokens=usage.output_tokens or 0,
            cache_read_tokens=usage.cache_read_input_tokens or 0,
            cache_write_tokens=usage.cache_write_input_tokens or 0,
            reasoning_tokens=usage.reasoning_output_tokens or 0,
        )
        cost = book.cost(provider, model, priced, time.time_ns())
        return cost.total if cost is not None else None

    return price


def create_receiver(settings: ComponentSettings, config: ProxyConfig, consumer: TracesConsumer) -> Component:
    return GenAiProxyReceiver(settings, config, consumer)


factory = ReceiverFactory(type="genai_proxy", config_type=ProxyConfig, create=create_receiver)
