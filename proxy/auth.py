"""Who is calling: the two auth modes of the proxy.

Passthrough forwards the client's own provider key untouched. Managed requires
a proxy key (``Authorization: Bearer`` or ``x-api-key``), replaces it with the
upstream's configured provider key, and stamps the key's tenant on the span.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from proxy.config import AuthSettings
from proxy.errors import ProxyError
from collector.keys import KeyStore, hash_key

AUTH_HEADERS = ("authorization", "x-api-key")


@dataclass(frozen=True)
class Caller:
    """The authenticated caller: its tenant (managed mode) and a hash naming its credential."""

    managed: bool
    tenant: str | None
    # Scopes conversation grouping, so two callers' identical histories never merge.
    credential_hash: str


class Authenticator:
    def __init__(self, settings: AuthSettings) -> None:
        self._mode = settings.mode
        self.keys = KeyStore(Path(settings.keys_file))
        self._managed_seen = False

    def is_managed(self) -> bool:
        if self._mode == "auto":
            # Sticky: once keys existed, a keys file that disappears must not turn the proxy
            # into pass-through, which would forward clients' proxy keys to the provider.
            self._managed_seen = self._managed_seen or self.keys.has_keys()
            return self._managed_seen
        return self._mode == "managed"

    def authenticate(self, headers: Mapping[str, str]) -> Caller:
        credential = presented_key(headers)
        if not self.is_managed():
            return Caller(False, None, hash_key(credential or ""))
        if not credential:
            raise ProxyError(401, "a proxy key is required: send it as Authorization: Bearer <key> or x-api-key")
        tenant = self.keys.tenant_for(credential)
        if tenant is None:
            raise ProxyError(401, "the proxy key is not valid", "invalid_api_key")
        return Caller(True, tenant, hash_key(credential))


def presented_key(headers: Mapping[str, str]) -> str | None:
    """The key a client sent, from either header the official SDKs use."""
    authorization = headers.get("authorization", "")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    api_key = headers.get("x-api-key", "").strip()
    return api_key or None
