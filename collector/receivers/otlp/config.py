"""Settings of the ``otlp`` receiver, in the OpenTelemetry Collector's shape."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from collector.config.types import HostPort

DEFAULT_GRPC_ENDPOINT = HostPort("127.0.0.1", 4317)
DEFAULT_HTTP_ENDPOINT = HostPort("127.0.0.1", 4318)
DEFAULT_TRACES_URL_PATH = "/v1/traces"
DEFAULT_MAX_REQUEST_BODY_BYTES = 20 * 1024 * 1024
DEFAULT_MAX_RECV_MSG_SIZE_MIB = 4


@dataclass(frozen=True)
class GrpcSettings:
    endpoint: HostPort = DEFAULT_GRPC_ENDPOINT
    max_recv_msg_size_mib: int = DEFAULT_MAX_RECV_MSG_SIZE_MIB

    def validate(self) -> Iterable[tuple[str, str]]:
        if self.max_recv_msg_size_mib < 1:
            yield "max_recv_msg_size_mib", "must be at least 1"


@dataclass(frozen=True)
class HttpSettings:
    endpoint: HostPort = DEFAULT_HTTP_ENDPOINT
    traces_url_path: str = DEFAULT_TRACES_URL_PATH
    max_request_body_size: int = DEFAULT_MAX_REQUEST_BODY_BYTES

    def validate(self) -> Iterable[tuple[str, str]]:
        if not self.traces_url_path.startswith("/"):
            yield "traces_url_path", f'must start with "/", got "{self.traces_url_path}"'
        if self.max_request_body_size < 1:
            yield "max_request_body_size", "must be at least 1"


@dataclass(frozen=True)
class Protocols:
    """Each protocol is on when its key is present (even with no settings), off when absent."""

    grpc: GrpcSettings | None = None
    http: HttpSettings | None = None


@dataclass(frozen=True)
class OtlpReceiverConfig:
    protocols: Protocols = Protocols(grpc=GrpcSettings(), http=HttpSettings())

    def validate(self) -> Iterable[tuple[str, str]]:
        if self.protocols.grpc is None and self.protocols.http is None:
            yield "protocols", "enable at least one of grpc, http"

    def listeners(self) -> Iterable[tuple[str, HostPort]]:
        if self.protocols.grpc is not None:
            yield "protocols.grpc.endpoint", self.protocols.grpc.endpoint
        if self.protocols.http is not None:
            yield "protocols.http.endpoint", self.protocols.http.endpoint
