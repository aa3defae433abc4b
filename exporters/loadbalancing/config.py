"""Settings of the ``loadbalancing`` exporter, named as in the OpenTelemetry Collector contrib's.

Only what this exporter does is accepted: routing by trace id, the OTLP/gRPC
protocol, and a static list of backends. Anything else is an unknown key.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from collector.config.types import HostPort
from exporters.otlp.config import OtlpSettings, endpoint_problem


@dataclass(frozen=True)
class ProtocolSettings:
    """How every backend is reached: the otlp exporter's settings, without ``endpoint``."""

    otlp: OtlpSettings = field(default_factory=OtlpSettings)


@dataclass(frozen=True)
class StaticResolverSettings:
    hostnames: tuple[HostPort, ...] = ()


@dataclass(frozen=True)
class ResolverSettings:
    static: StaticResolverSettings = field(default_factory=StaticResolverSettings)


@dataclass(frozen=True)
class LoadBalancingConfig:
    """Spans of one trace all go to one backend of ``resolver.static.hostnames``."""

    routing_key: Literal["traceID"] = "traceID"
    protocol: ProtocolSettings = field(default_factory=ProtocolSettings)
    resolver: ResolverSettings = field(default_factory=ResolverSettings)

    def validate(self) -> Iterable[tuple[str, str]]:
        # Checked here rather than on the resolver block, which is not validated when absent.
        path = "resolver.static.hostnames"
        hostnames = self.resolver.static.hostnames
        if not hostnames:
            yield path, "list at least one backend (host:port of an OTLP/gRPC receiver)"
        seen: set[tuple[str, int]] = set()
        for index, endpoint in enumerate(hostnames):
            problem = endpoint_problem(endpoint)
            if problem is not None:
                yield f"{path}[{index}]", problem
            # Host names are case-insensitive: Backend-1 and backend-1 are one backend.
            key = (endpoint.host.lower(), endpoint.port)
            if key in seen:
                yield f"{path}[{index}]", f"{endpoint} is listed twice"
            seen.add(key)
