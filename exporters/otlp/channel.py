"""Open the gRPC channel an otlp exporter sends on: plaintext or TLS, compression, user agent."""

from __future__ import annotations

from pathlib import Path

import grpc

from collector import __version__
from collector.config.types import HostPort
from collector.errors import StartError
from exporters.otlp.config import OtlpSettings

USER_AGENT = f"genai-collector/{__version__}"
_COMPRESSION = {"gzip": grpc.Compression.Gzip, "none": grpc.Compression.NoCompression}


def open_channel(endpoint: HostPort, settings: OtlpSettings) -> grpc.Channel:
    """A blocking (thread-safe) channel to ``endpoint``; raises StartError when a TLS file cannot be read."""
    options = [("grpc.primary_user_agent", USER_AGENT)]
    compression = _COMPRESSION[settings.compression]
    if settings.tls.insecure:
        return grpc.insecure_channel(str(endpoint), options=options, compression=compression)
    return grpc.secure_channel(str(endpoint), _credentials(settings), options=options, compression=compression)


def _credentials(settings: OtlpSettings) -> grpc.ChannelCredentials:
    tls = settings.tls
    # Without a ca_file, grpc verifies the server against the system's roots.
    return grpc.ssl_channel_credentials(
        root_certificates=_read("tls.ca_file", tls.ca_file),
        private_key=_read("tls.key_file", tls.key_file),
        certificate_chain=_read("tls.cert_file", tls.cert_file),
    )


def _read(setting: str, path: str) -> bytes | None:
    if not path:
        return None
    try:
        return Path(path).expanduser().read_bytes()
    except OSError as exc:
        raise StartError(f"cannot read {setting} {path}: {exc.strerror or exc}") from None
