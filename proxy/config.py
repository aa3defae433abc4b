"""Settings of the GenAI proxy: where it listens, which upstreams serve which models, auth and features.

The same dataclasses configure the ``genai_proxy`` receiver inside the collector
and the standalone ``genai-collector proxy`` command.
"""

from __future__ import annotations

import fnmatch
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit

from collector.config.types import Duration, HostPort, Secret
from collector.listeners.settings import HttpServerSettings
from collector.semconv import LATEST, Version
from proxy.limits.settings import LimitsSettings

DEFAULT_ENDPOINT = HostPort("127.0.0.1", 8080)
DEFAULT_MAX_REQUEST_BODY_BYTES = 32 * 1024 * 1024
DEFAULT_CONNECT_TIMEOUT = Duration(10.0)
DEFAULT_READ_TIMEOUT = Duration(600.0)
DEFAULT_KEYS_FILE = "./data/proxy-keys.json"
DEFAULT_SPAN_QUEUE_SIZE = 10_000
DEFAULT_CONVERSATION_TTL = Duration(3600.0)
DEFAULT_CONVERSATION_ENTRIES = 100_000

UpstreamKind = Literal["openai", "anthropic", "openai_compatible", "gemini", "azure_openai"]
# The wire API an upstream speaks, which decides the paths routed to it: OpenAI-compatible servers speak OpenAI's.
UpstreamProtocol = Literal["openai", "anthropic", "gemini", "azure_openai"]
# gen_ai.provider.name by kind (the conventions' values); OpenAI-compatible servers speak OpenAI's telemetry flavour.
DEFAULT_PROVIDERS: dict[str, str] = {
    "openai": "openai",
    "openai_compatible": "openai",
    "anthropic": "anthropic",
    "gemini": "gcp.gemini",
    "azure_openai": "azure.ai.openai",
}
AuthMode = Literal["auto", "passthrough", "managed"]


@dataclass(frozen=True)
class UpstreamConfig:
    """One LLM API the proxy forwards to.

    ``base_url`` is written as each provider's SDK writes it: OpenAI-style APIs
    include the version (``https://api.openai.com/v1``); Anthropic's, Gemini's
    (``https://generativelanguage.googleapis.com``) and Azure OpenAI's resource
    endpoint (``https://NAME.openai.azure.com``) do not. ``models`` are names or
    globs (``gpt-*``); empty means every model of this upstream's API. For Azure
    OpenAI they match deployment names, and ``deployments`` maps a deployment to
    the model it serves (a deployment not listed is named by the response's model).
    """

    name: str = ""
    kind: UpstreamKind = "openai"
    base_url: str = ""
    api_key: Secret = field(default_factory=lambda: Secret(""))
    models: tuple[str, ...] = ()
    # gen_ai.provider.name on this upstream's spans; by default the kind's
    # (openai for OpenAI-compatible servers: the telemetry flavour they speak).
    provider: str = ""
    deployments: dict[str, str] = field(default_factory=dict)  # Azure OpenAI: deployment name -> model

    @property
    def provider_name(self) -> str:
        return self.provider or DEFAULT_PROVIDERS[self.kind]

    @property
    def protocol(self) -> UpstreamProtocol:
        """The wire API the upstream speaks, which picks the paths routed to it."""
        return "openai" if self.kind == "openai_compatible" else self.kind

    @property
    def family(self) -> str:
        """The body and error format the upstream speaks: "openai" (Azure's too), "anthropic" or "gemini"."""
        return "openai" if self.kind in ("openai_compatible", "azure_openai") else self.kind

    def serves(self, model: str) -> bool:
        if model in self.deployments:
            return True
        return not self.models or any(fnmatch.fnmatchcase(model, pattern) for pattern in self.models)

    def model_of(self, name: str | None) -> str | None:
        """The model a request naming ``name`` asks for: an Azure deployment's mapped model, else ``name``.

        An Azure deployment not in ``deployments`` is unknown until the response names its model.
        """
        if name is None or self.kind != "azure_openai":
            return name
        return self.deployments.get(name)

    def validate(self) -> Iterable[tuple[str, str]]:
        if not self.name:
            yield "name", "is required"
        try:
            parts = urlsplit(self.base_url)
            valid = parts.scheme in ("http", "https") and bool(parts.hostname)
        except ValueError:
            valid = False
        if not valid:
            yield "base_url", f'expected http(s)://host[:port][/path], got "{self.base_url}"'
        if self.deployments and self.kind != "azure_openai":
            yield "deployments", "is for azure_openai upstreams only"
        key = self.api_key.reveal()
        if key != key.strip() or any(ord(char) < 0x20 or ord(char) == 0x7F for char in key):
            # A key read from a file often ends in a newline; it could never go into a header.
            yield "api_key", "contains whitespace at its ends or control characters (the value is not shown)"


@dataclass(frozen=True)
class RetrySettings:
    """Retries before the first byte reaches the client, on 429/502/503/504 and connect failures."""

    enabled: bool = False
    max_attempts: int = 3
    max_backoff: Duration = Duration(10.0)

    def validate(self) -> Iterable[tuple[str, str]]:
        if self.max_attempts < 1:
            yield "max_attempts", "must be at least 1"


@dataclass(frozen=True)
class TimeoutSettings:
    connect: Duration = DEFAULT_CONNECT_TIMEOUT
    # Longest silence between two bytes of the upstream's response.
    read: Duration = DEFAULT_READ_TIMEOUT

    def validate(self) -> Iterable[tuple[str, str]]:
        if self.connect <= 0:
            yield "connect", "must be more than 0"
        if self.read <= 0:
            yield "read", "must be more than 0"


@dataclass(frozen=True)
class AuthSettings:
    """``passthrough`` forwards the client's provider key; ``managed`` requires a proxy key.

    ``auto`` is managed as soon as the keys file holds a key, passthrough otherwise.
    """

    mode: AuthMode = "auto"
    keys_file: str = DEFAULT_KEYS_FILE
    # Pass-through mode: a header naming the caller's tenant (e.g. X-GenAI-Tenant), believed only from
    # clients in trusted_networks (CIDRs); see proxy/tenants.py.
    tenant_header: str = ""
    trusted_networks: tuple[str, ...] = ()

    def validate(self) -> Iterable[tuple[str, str]]:
        for i, network in enumerate(self.trusted_networks):
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError:
                yield f"trusted_networks[{i}]", f'"{network}" is not an IP network (e.g. 10.0.0.0/8 or 127.0.0.1/32)'
        name = self.tenant_header
        if name and (not name.isascii() or not all(c.isalnum() or c in "-_" for c in name)):
            yield "tenant_header", f'"{name}" is not a header name'
        if self.trusted_networks and not name:
            yield "trusted_networks", "is for tenant_header; set tenant_header too"
        if name and not self.trusted_networks:
            yield "tenant_header", "needs trusted_networks: the header is believed only from them"


@dataclass(frozen=True)
class ConversationSettings:
    """Grouping of stateless multi-call conversations by their message history."""

    enabled: bool = True
    ttl: Duration = DEFAULT_CONVERSATION_TTL
    max_entries: int = DEFAULT_CONVERSATION_ENTRIES
    # Opt-in: the trace id hidden in the assistant's text as zero-width characters.
    invisible_signature: bool = False
    # Opt-in: the trace id added to the arguments of returned tool calls (non-streaming).
    tool_call_trace_id: bool = False

    def validate(self) -> Iterable[tuple[str, str]]:
        if self.max_entries < 1:
            yield "max_entries", "must be at least 1"


@dataclass(frozen=True)
class EarlyStopSettings:
    """Opt-in: end a stream whose output shows a finding at ``min_severity`` or above (or of ``detectors``)."""

    enabled: bool = False
    min_severity: Literal["low", "medium", "high", "critical"] = "critical"
    detectors: tuple[str, ...] = ()  # detector ids or categories, stopped on whatever their severity


@dataclass(frozen=True)
class ProxyConfig(HttpServerSettings):
    """The ``genai_proxy`` receiver, and the standalone proxy's ``proxy`` section.

    The listener's timeouts and limits (``read_header_timeout``, ``max_connections``,
    ``admission``...) are ``HttpServerSettings``'.
    """

    endpoint: HostPort = DEFAULT_ENDPOINT
    upstreams: tuple[UpstreamConfig, ...] = ()
    auth: AuthSettings = field(default_factory=AuthSettings)
    capture_content: bool = False
    max_request_body_size: int = DEFAULT_MAX_REQUEST_BODY_BYTES
    timeouts: TimeoutSettings = field(default_factory=TimeoutSettings)
    retry: RetrySettings = field(default_factory=RetrySettings)
    conversations: ConversationSettings = field(default_factory=ConversationSettings)
    early_stop: EarlyStopSettings = field(default_factory=EarlyStopSettings)
    # Requests, tokens, calls in flight and USD budgets per proxy key and tenant (proxy/limits).
    limits: LimitsSettings = field(default_factory=LimitsSettings)
    # Spans waiting for the pipeline; beyond this they are dropped and counted, never waited for.
    span_queue_size: int = DEFAULT_SPAN_QUEUE_SIZE
    # The GenAI conventions' release the spans follow: the newest, or v1.41 for dashboards built on it.
    semconv: Version = LATEST

    def validate(self) -> Iterable[tuple[str, str]]:
        yield from super().validate()
        if not self.upstreams:
            yield "upstreams", "define at least one upstream"
        names = [u.name for u in self.upstreams]
        for i, name in enumerate(names):
            if name and names.index(name) != i:
                yield f"upstreams[{i}].name", f'"{name}" is used by another upstream'
        if self.max_request_body_size < 1:
            yield "max_request_body_size", "must be at least 1"
        elif self.admission.request_limit_bytes < self.max_request_body_size:
            yield (
                "admission.request_limit_mib",
                (
                    f"must hold at least max_request_body_size ({self.max_request_body_size} bytes), "
                    "or the largest request could never be read"
                ),
            )
        if self.span_queue_size < 1:
            yield "span_queue_size", "must be at least 1"

    def listeners(self) -> Iterable[tuple[str, HostPort]]:
        yield "endpoint", self.endpoint
