"""Tenants without managed keys: a header names the caller's tenant, believed only from trusted networks.

In pass-through mode the proxy has no key to read a tenant from; a gateway or
an internal client in front of it may name one in ``auth.tenant_header``. The
header is taken only from a client whose address is in ``auth.trusted_networks``
(the peer address of the connection: behind a load balancer, the balancer's);
from anywhere else, or when it is no usable name, it is ignored and counted.
A managed key's tenant always wins over the header.
"""

from __future__ import annotations

import ipaddress
import logging

from collector.telemetry import Telemetry
from proxy.config import AuthSettings
from proxy.generated_metrics import ProxySelfMetrics

# A tenant name a header may give: printable ASCII, this long at most (it goes on every span and into limit keys).
MAX_TENANT_CHARS = 128

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class TenantHeader:
    def __init__(self, settings: AuthSettings, telemetry: Telemetry, logger: logging.Logger) -> None:
        self.name = settings.tenant_header.lower()
        self.raw_name = self.name.encode()
        self._networks: tuple[_Network, ...] = tuple(
            ipaddress.ip_network(network, strict=False) for network in settings.trusted_networks
        )
        self._ignored = ProxySelfMetrics(telemetry).proxy_tenant_header_ignored
        self._logger = logger

    def tenant(self, value: str | None, client_host: str | None) -> str | None:
        """The tenant the header names, when it may be believed; None otherwise (and counted when one was sent)."""
        if not self.name or value is None:
            return None
        if not self._trusted(client_host):
            self._ignored.add(1, reason="untrusted")
            return None
        tenant = value.strip()
        if not tenant or len(tenant) > MAX_TENANT_CHARS or not tenant.isascii() or not tenant.isprintable():
            self._ignored.add(1, reason="invalid")
            return None
        return tenant

    def _trusted(self, host: str | None) -> bool:
        if host is None:
            return False
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in self._networks)
