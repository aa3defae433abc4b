"""The ``limits:`` section of the proxy's config: defaults per key and per tenant, tenants' own, and the store."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit

from collector.config.types import Duration, Secret
from collector.keys import NO_LIMITS, Limits

MEMORY_STORE = "memory"
REDIS_SCHEMES = ("redis", "rediss", "unix")
DEFAULT_STORE_TIMEOUT = Duration(0.5)
# After a store failure, calls are decided by on_store_error for this long before the store is tried again.
DEFAULT_STORE_RETRY_INTERVAL = Duration(1.0)
# A shared store forgets a call in flight after this long, so a replica that died cannot hold its slots forever.
DEFAULT_CONCURRENCY_LEASE = Duration(3600.0)
# Output tokens a budget charges up front for a request that sets no bound of its own (max_tokens & co).
DEFAULT_UNBOUNDED_OUTPUT_TOKENS = 4096
# Tenants a process keeps limit state for; past this, the idle ones are forgotten first.
DEFAULT_MAX_TRACKED_SCOPES = 100_000

OnStoreError = Literal["allow", "deny"]


@dataclass(frozen=True)
class LimitsSettings:
    """``keys`` applies to each proxy key that sets no limit of its own, ``tenant`` to each tenant not in ``tenants``.

    ``store`` is ``memory`` (this process only) or a Redis URL (``redis://``,
    ``rediss://``, ``unix://``), whose password is never shown.
    """

    store: Secret = field(default_factory=lambda: Secret(MEMORY_STORE))
    on_store_error: OnStoreError = "allow"
    keys: Limits = NO_LIMITS
    tenant: Limits = NO_LIMITS
    tenants: dict[str, Limits] = field(default_factory=dict)
    unbounded_output_tokens: int = DEFAULT_UNBOUNDED_OUTPUT_TOKENS
    store_timeout: Duration = DEFAULT_STORE_TIMEOUT
    store_retry_interval: Duration = DEFAULT_STORE_RETRY_INTERVAL
    concurrency_lease: Duration = DEFAULT_CONCURRENCY_LEASE
    max_tracked_scopes: int = DEFAULT_MAX_TRACKED_SCOPES

    @property
    def shared(self) -> bool:
        return self.store.reveal() != MEMORY_STORE

    def validate(self) -> Iterable[tuple[str, str]]:
        url = self.store.reveal()
        if url != MEMORY_STORE:
            try:
                scheme = urlsplit(url).scheme
            except ValueError:
                scheme = ""
            if scheme not in REDIS_SCHEMES:
                yield "store", "expected memory or a redis://, rediss:// or unix:// URL (the value is not shown)"
            elif not _redis_url_parses(url):
                yield "store", "is not a Redis URL redis-py can use: check its port, database and options (not shown)"
        for name, tenant in self.tenants.items():
            if not name.strip():
                yield "tenants", "a tenant name is empty"
            elif not tenant.any:
                yield f"tenants.{name}", "sets no limit"
        if self.unbounded_output_tokens < 0:
            yield "unbounded_output_tokens", "must be 0 or more"
        if self.store_timeout <= 0:
            yield "store_timeout", "must be more than 0"
        if self.store_retry_interval < 0:
            yield "store_retry_interval", "must be 0 or more"
        if self.concurrency_lease <= 0:
            yield "concurrency_lease", "must be more than 0"
        if self.max_tracked_scopes < 1:
            yield "max_tracked_scopes", "must be at least 1"

    def store_shown(self) -> str:
        """The store as a log line may name it: scheme, host and port, never a password or user."""
        url = self.store.reveal()
        if url == MEMORY_STORE:
            return MEMORY_STORE
        try:
            parts = urlsplit(url)
            if parts.scheme == "unix":
                return f"unix://{parts.path}"
            return f"{parts.scheme}://{parts.hostname or ''}:{parts.port or 6379}"
        except ValueError:
            return "the configured Redis"


def _redis_url_parses(url: str) -> bool:
    """Whether redis-py reads ``url`` as it will when the store connects (a bad port, database or option fails
    there, and must fail here, as one line that does not show the URL)."""
    from redis.connection import parse_url

    try:
        parse_url(url)  # type: ignore[no-untyped-call]  # redis-py's own URL reading, untyped there
    except (ValueError, TypeError):
        return False
    return True
