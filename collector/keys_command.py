"""``genai-collector keys``: create, update, list and revoke the keys of the proxy and of the collector's endpoints.

Proxy keys (``--role proxy``, the default, with ``--tenant``) live in the
genai_proxy receiver's keys file; API keys (``--role admin|operator|viewer``,
``--tenant`` optional for operator and viewer) in the admin extension's. A key
is printed once, at creation; the files hold only hashes. A proxy key may carry
limits (``--rpm``, ``--tpm``, ``--concurrency``, ``--daily-budget``,
``--monthly-budget``), set at creation or changed by ``update`` (``none``
removes one, so the config's default applies); a running proxy applies them at once.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from collector.config.service import CollectorConfig
from collector.extensions.admin import AdminConfig
from collector.keys import LIMIT_NAMES, NO_LIMITS, PROXY_ROLE, KeyEntry, KeysFileError, KeyStore, Limits, Role
from collector.proxy_command import ProxyCommandError, proxy_config
from proxy.auth import managed_marker, persist_managed
from proxy.config import ProxyConfig
from proxy.limits.store import Scope

CLEAR = "none"  # a limit flag's value that removes the key's own limit
# Limit flags: (name in the keys file, flag, type of its value, help).
LIMIT_FLAGS: tuple[tuple[str, str, type, str], ...] = (
    ("rpm", "--rpm", int, "requests per minute"),
    ("tpm", "--tpm", int, "tokens per minute (input and output)"),
    ("concurrency", "--concurrency", int, "calls in flight at once (a stream counts until it ends)"),
    ("daily_budget", "--daily-budget", float, "USD per UTC day"),
    ("monthly_budget", "--monthly-budget", float, "USD per UTC month"),
)


def add_limit_arguments(parser: argparse.ArgumentParser) -> None:
    for name, flag, kind, text in LIMIT_FLAGS:
        parser.add_argument(flag, dest=name, type=_limit_value(kind), metavar="N", help=f"{text}; {CLEAR} removes it")


def _limit_value(kind: type) -> argparse._ActionType:
    def parse(text: str) -> int | float | str:
        if text.strip().lower() == CLEAR:
            return CLEAR
        try:
            value: int | float = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected {'an integer' if kind is int else 'a number'} or {CLEAR}"
            ) from None
        if value < 0:
            raise argparse.ArgumentTypeError("must be 0 or more")
        return value

    return parse


def limits_of(args: argparse.Namespace) -> tuple[Limits, list[str]]:
    """The limits the flags set, and the names of those they remove (``none``)."""
    values = {name: getattr(args, name, None) for name in LIMIT_NAMES}
    cleared = [name for name, value in values.items() if value == CLEAR]
    return Limits(**{name: value for name, value in values.items() if value not in (None, CLEAR)}), cleared


def create_key(
    config: CollectorConfig, role: Role, tenant: str | None, receiver: str | None, limits: Limits = NO_LIMITS
) -> str:
    """The lines to print for a new key (the key itself is shown only here)."""
    store = _proxy_store(config, receiver) if role == PROXY_ROLE else _api_store(config)
    try:
        entry, key = store.create(tenant, role, limits)
        if role == PROXY_ROLE:
            # From its first key on, a proxy in auto mode stays managed, even if the keys file is lost before it starts.
            persist_managed(store.path)
    except KeysFileError as exc:
        raise ProxyCommandError(str(exc)) from None
    except OSError as exc:
        raise ProxyCommandError(f"cannot record managed mode in {managed_marker(store.path)}: {exc.strerror}") from None
    scope = f"tenant {entry.tenant}" if entry.tenant else "every tenant"
    return (
        f"{key}\n"
        f"# {entry.role} key {entry.id} ({scope}), stored as a hash in {store.path}.\n"
        "# This is the only time the key is shown: keep it now."
    )


def update_key(config: CollectorConfig, key_id: str, limits: Limits, cleared: list[str], receiver: str | None) -> str:
    """Set or remove proxy key ``key_id``'s limits; a running proxy applies them at its next call."""
    if not limits.any and not cleared:
        raise ProxyCommandError("nothing to update: give a limit flag (--rpm N, ..., or --rpm none to remove one)")
    store = _proxy_store(config, receiver)
    try:
        entry = store.update_limits(key_id, limits, cleared)
    except KeysFileError as exc:
        raise ProxyCommandError(str(exc)) from None
    return (
        f"updated proxy key {entry.id} (tenant {entry.tenant}): {_limits_text(entry.limits) or 'no limits of its own'}"
    )


def list_keys(config: CollectorConfig, receiver: str | None) -> str:
    """One line per key: id, role, tenant, created, limits, usage and its file; never the keys.

    A proxy key's limits are its own over the config's ``limits.keys``; its usage
    is read from a shared store (Redis). Tenants with limits follow the keys.
    """
    settings = _proxy_settings(config, receiver)
    usage = _usage_reader(settings)
    lines = []
    for store, entry in _entries(config, receiver):
        limits_text = usage_text = ""
        if entry.role == PROXY_ROLE and settings is not None:
            limits = entry.limits.over(settings.limits.keys)
            limits_text = _limits_text(limits) or "-"
            usage_text = usage(Scope("key", entry.id, limits)) if limits.any else "-"
        fields = [entry.id, entry.role, entry.tenant or "*", entry.created, limits_text or "-", usage_text or "-"]
        lines.append("\t".join([*fields, str(store.path)]))
    if settings is not None:
        lines.extend(_tenant_lines(settings, usage))
    if not lines:
        return "no keys in " + " or ".join(str(store.path) for store in _stores(config, receiver))
    return "\n".join(["id\trole\ttenant\tcreated\tlimits\tusage\tfile", *lines])


def _tenant_lines(settings: ProxyConfig, usage: Callable[[Scope], str]) -> list[str]:
    """The tenants the config gives limits (``limits.tenants``), as lines of the same table."""
    lines = []
    for name, own in sorted(settings.limits.tenants.items()):
        limits = own.over(settings.limits.tenant)
        fields = [f"tenant:{name}", "tenant", name, "-", _limits_text(limits), usage(Scope("tenant", name, limits))]
        lines.append("\t".join([*fields, "(config)"]))
    return lines


def _limits_text(limits: Limits) -> str:
    parts = []
    for name, value in limits.as_dict().items():
        parts.append(f"{name}=${value:g}" if name.endswith("budget") else f"{name}={value}")
    return " ".join(parts)


def _usage_reader(settings: ProxyConfig | None) -> Callable[[Scope], str]:
    """Usage per scope from the shared store; with the in-memory store only the proxy knows it (its /metrics)."""
    if settings is None or not settings.limits.shared:
        return lambda scope: "(in the proxy's memory)"
    from proxy.limits.redis_store import read_usage

    def usage(scope: Scope) -> str:
        try:
            used = read_usage(settings.limits.store.reveal(), settings.limits.store_timeout, scope, time.time())
        except Exception as exc:  # the store's error type only: its message could quote the URL
            return f"(store unreachable: {type(exc).__name__})"
        return " ".join(f"{name}={value}" for name, value in used.items())

    return usage


def _proxy_settings(config: CollectorConfig, receiver: str | None) -> ProxyConfig | None:
    try:
        return proxy_config(config, receiver)
    except ProxyCommandError:
        if receiver is not None:
            raise
        return None


def revoke_key(config: CollectorConfig, key_id: str, receiver: str | None) -> str:
    """Remove key ``key_id`` from whichever file holds it; a running collector stops accepting it at once."""
    for store, entry in _entries(config, receiver):
        if entry.id == key_id:
            try:
                store.revoke(key_id)
            except KeysFileError as exc:
                raise ProxyCommandError(str(exc)) from None
            return f"revoked {entry.role} key {entry.id} ({entry.tenant or 'every tenant'}) in {store.path}"
    files = " or ".join(str(store.path) for store in _stores(config, receiver))
    raise ProxyCommandError(f'no key with id "{key_id}" in {files}')


def _entries(config: CollectorConfig, receiver: str | None) -> Iterator[tuple[KeyStore, KeyEntry]]:
    for store in _stores(config, receiver):
        try:
            entries = store.entries()
        except KeysFileError as exc:
            raise ProxyCommandError(str(exc)) from None
        for entry in entries:
            yield store, entry


def _stores(config: CollectorConfig, receiver: str | None) -> list[KeyStore]:
    """The API key store, then the proxy's when the config has a genai_proxy receiver."""
    stores = [_api_store(config)]
    try:
        stores.append(_proxy_store(config, receiver))
    except ProxyCommandError:
        if receiver is not None:
            raise
    return stores


def _proxy_store(config: CollectorConfig, receiver: str | None) -> KeyStore:
    return KeyStore(Path(proxy_config(config, receiver).auth.keys_file))


def _api_store(config: CollectorConfig) -> KeyStore:
    """The keys file of the admin extension (its default when the config has none)."""
    paths = {
        component.config.keys_path()
        for component in config.components["extensions"].values()
        if isinstance(component.config, AdminConfig)
    }
    if len(paths) > 1:
        listed = ", ".join(sorted(str(path) for path in paths))
        raise ProxyCommandError(f"the admin extensions name different keys files ({listed}); use one")
    return KeyStore(paths.pop() if paths else AdminConfig().keys_path())
