"""GET /api/v1/about: who the caller is to this API, and where this collector takes data in.

A client (the web console first) learns from one answer what its key may
see (role, and the tenant it is bound to) and, for a store with nothing in
it yet, where to send spans: the OTLP receivers' addresses and the GenAI
proxy's base URL, as the running collector listens (ports bound at start,
so a configured port 0 shows the real one). Addresses only: no setting,
key or file path of a receiver is shown.
"""

from __future__ import annotations

from typing import Any

from collector import __version__
from collector.extensions.access import ANONYMOUS_VIEWER_ID
from collector.extensions.api import schemas
from collector.extensions.api.context import ApiContext
from collector.extensions.api.endpoints import ApiCall, Endpoint
from collector.extensions.api.rest import PREFIX, TAG
from collector.receivers.genai_proxy import GenAiProxyReceiver
from collector.receivers.otlp import OtlpReceiver

# What each protocol is, for a person reading the answer.
PROTOCOLS = {
    "otlp_http": "OTLP over HTTP (protobuf or JSON)",
    "otlp_grpc": "OTLP over gRPC",
    "genai_proxy": "GenAI proxy: an OpenAI or Anthropic SDK's base URL",
}


def _receiver_endpoint(receiver: str, protocol: str, host: str, port: int, path: str = "") -> dict[str, Any]:
    return {"receiver": receiver, "protocol": protocol, "host": host, "port": port, "path": path}


def ingest_endpoints(host: object) -> list[dict[str, Any]]:
    """Where the running collector's receivers listen (the OTLP transports, the GenAI proxy), in config order."""
    config = getattr(host, "config", None)
    running = getattr(host, "receivers", {})
    if config is None:
        return []
    endpoints: list[dict[str, Any]] = []
    for component in config.used("receivers"):
        receiver = running.get(component.id)
        name = str(component.id)
        if isinstance(receiver, OtlpReceiver):
            protocols = component.config.protocols
            if protocols.http is not None and receiver.http is not None:
                http = protocols.http
                endpoints.append(
                    _receiver_endpoint(name, "otlp_http", http.endpoint.host, receiver.http.port, http.traces_url_path)
                )
            if protocols.grpc is not None and receiver.grpc is not None:
                endpoints.append(
                    _receiver_endpoint(name, "otlp_grpc", protocols.grpc.endpoint.host, receiver.grpc.port)
                )
        elif isinstance(receiver, GenAiProxyReceiver):
            endpoints.append(_receiver_endpoint(name, "genai_proxy", component.config.endpoint.host, receiver.port))
    return endpoints


async def get_about(call: ApiCall) -> dict[str, Any]:
    principal = call.principal
    return {
        "version": __version__,
        "key": {
            "id": principal.key_id,
            "role": principal.role,
            "tenant": principal.tenant,
            "anonymous": principal.key_id == ANONYMOUS_VIEWER_ID,
        },
        "ingest": ingest_endpoints(call.context.host),
    }


def routes(context: ApiContext) -> list[Endpoint]:
    return [
        Endpoint(
            f"{PREFIX}/about",
            "about",
            "The caller's key and where this collector takes data in",
            get_about,
            response_schema=schemas.ref("About"),
            description="key: the caller's key id, role and tenant (null: every tenant); anonymous when the "
            "listener is open to reads with no key. ingest: the receivers' addresses as they listen ("
            + "; ".join(f"{name}: {text}" for name, text in PROTOCOLS.items())
            + ").",
            tags=(TAG,),
        )
    ]
