"""``genai-collector proxy``: the GenAI proxy outside the collector.

The standalone proxy reads the ``genai_proxy`` receiver's settings from the same
otel-config.yaml and ships its spans with the OpenTelemetry SDK's OTLP/HTTP
exporter to a collector elsewhere, so several proxies can feed one collector.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Mapping

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Mount, Route

from collector.config.service import CollectorConfig
from collector.extensions.admin import PROMETHEUS_TEXT
from collector.httpserver import HttpServer
from collector.receivers.genai_proxy import call_price, stream_check
from collector.telemetry import Telemetry
from proxy.app import ProxyService
from proxy.config import ProxyConfig
from proxy.export import ExporterSink

RECEIVER_TYPE = "genai_proxy"
DEFAULT_OTLP_ENDPOINT = "http://127.0.0.1:4318"
logger = logging.getLogger("genai_collector.proxy")


class ProxyCommandError(Exception):
    """A mistake in how the command was called; the message is one line for the user."""


def proxy_config(config: CollectorConfig, receiver: str | None) -> ProxyConfig:
    """The settings of the named genai_proxy receiver, or of the only one."""
    proxies = {
        str(cid): component.config
        for cid, component in config.components["receivers"].items()
        if cid.type == RECEIVER_TYPE
    }
    if receiver is not None:
        if receiver not in proxies:
            known = ", ".join(sorted(proxies)) or "none"
            raise ProxyCommandError(f'no genai_proxy receiver "{receiver}" in the config; configured: {known}')
        settings: ProxyConfig = proxies[receiver]
        return settings
    if not proxies:
        raise ProxyCommandError("the config defines no genai_proxy receiver")
    if len(proxies) > 1:
        raise ProxyCommandError(
            f"several genai_proxy receivers ({', '.join(sorted(proxies))}); choose one with --receiver"
        )
    only: ProxyConfig = next(iter(proxies.values()))
    return only


def otlp_traces_url(endpoint: str | None, environ: Mapping[str, str] | None = None) -> str:
    """Where spans go: --otlp-endpoint, else the SDK's own environment variables, else the local collector."""
    env = os.environ if environ is None else environ
    explicit = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    if endpoint is None and explicit:
        return explicit  # the SDK's per-signal variable is the full URL
    base = endpoint or env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or DEFAULT_OTLP_ENDPOINT
    return base.rstrip("/") + "/v1/traces"


async def serve_proxy(settings: ProxyConfig, traces_url: str) -> None:
    """Run the proxy until SIGINT or SIGTERM, then drain calls and spans."""
    telemetry = Telemetry()
    sink = ExporterSink(OTLPSpanExporter(endpoint=traces_url))
    service = ProxyService(settings, sink, telemetry, logger, stream_check=stream_check(settings), price=call_price())

    async def metrics(request: Request) -> Response:
        return PlainTextResponse(telemetry.render(), media_type=PROMETHEUS_TEXT)

    app = Starlette(routes=[Route("/metrics", metrics, methods=["GET"]), Mount("/", service.app)])
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await service.start()
    server = HttpServer(app, settings, listener=RECEIVER_TYPE, telemetry=telemetry, date_header=False)
    try:
        await server.start()
    except BaseException:
        await service.stop()
        raise
    mode = "managed keys" if service.auth.is_managed() else "pass-through keys"
    logger.info(
        "GenAI proxy listening on %s:%d (%s), spans to %s", settings.endpoint.host, server.port, mode, traces_url
    )
    await stop.wait()
    await server.stop()
    await service.stop()
