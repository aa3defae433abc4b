"""Which headers cross the proxy, in each direction, and which it sets itself."""

from __future__ import annotations

from proxy.auth import AUTH_HEADERS, Caller
from proxy.config import UpstreamConfig

# Hop-by-hop headers (RFC 9110 §7.6.1) and those the proxy or httpx sets itself.
_NOT_FORWARDED_UP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"host",
        b"content-length",
        b"accept-encoding",  # asked as identity, so the tee reads plain bytes
        b"traceparent",  # replaced by the proxy span's own context
        b"tracestate",
    }
)
_NOT_FORWARDED_DOWN = frozenset(
    {b"connection", b"keep-alive", b"proxy-authenticate", b"te", b"trailer", b"transfer-encoding", b"upgrade"}
)
_AUTH = frozenset(name.encode() for name in AUTH_HEADERS)
# Where each upstream API takes its key (managed mode sends the configured one there).
_KEY_HEADERS: dict[str, tuple[bytes, bytes]] = {
    "openai": (b"authorization", b"Bearer "),
    "anthropic": (b"x-api-key", b""),
    "azure_openai": (b"api-key", b""),
    "gemini": (b"x-goog-api-key", b""),
}


def upstream_headers(
    raw: list[tuple[bytes, bytes]], upstream: UpstreamConfig, caller: Caller
) -> list[tuple[bytes, bytes]]:
    """The client's headers as sent upstream; in managed mode its proxy key is swapped for the provider key."""
    listed = _connection_listed(raw)  # headers the client's Connection header names are hop-by-hop too
    headers = [(k, v) for k, v in raw if k.lower() not in _NOT_FORWARDED_UP and k.lower() not in listed]
    if caller.managed:
        headers = [(k, v) for k, v in headers if k.lower() not in _AUTH]
        key = upstream.api_key.reveal()
        if key:
            name, prefix = _KEY_HEADERS[upstream.protocol]
            headers.append((name, prefix + key.encode()))
    headers.append((b"accept-encoding", b"identity"))
    return headers


def client_headers(raw: list[tuple[bytes, bytes]], drop: frozenset[bytes] = frozenset()) -> list[tuple[bytes, bytes]]:
    """The upstream's response headers as sent to the client, minus hop-by-hop ones and ``drop``."""
    listed = _connection_listed(raw)
    return [
        (k, v)
        for k, v in raw
        if k.lower() not in _NOT_FORWARDED_DOWN and k.lower() not in drop and k.lower() not in listed
    ]


def _connection_listed(raw: list[tuple[bytes, bytes]]) -> frozenset[bytes]:
    return frozenset(
        name.strip().lower() for k, v in raw if k.lower() == b"connection" for name in v.split(b",") if name.strip()
    )
