"""``genai-collector keys``: create, list and revoke the keys of the proxy and of the collector's endpoints.

Proxy keys (``--role proxy``, the default, with ``--tenant``) live in the
genai_proxy receiver's keys file; API keys (``--role admin|operator|viewer``,
``--tenant`` optional for operator and viewer) in the admin extension's. A key
is printed once, at creation; the files hold only hashes.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from collector.config.service import CollectorConfig
from collector.extensions.admin import AdminConfig
from collector.keys import PROXY_ROLE, KeyEntry, KeysFileError, KeyStore, Role
from collector.proxy_command import ProxyCommandError, proxy_config
from proxy.auth import managed_marker, persist_managed


def create_key(config: CollectorConfig, role: Role, tenant: str | None, receiver: str | None) -> str:
    """The lines to print for a new key (the key itself is shown only here)."""
    store = _proxy_store(config, receiver) if role == PROXY_ROLE else _api_store(config)
    try:
        entry, key = store.create(tenant, role)
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


def list_keys(config: CollectorConfig, receiver: str | None) -> str:
    """One line per key: id, role, tenant, created, and the file it is in; never the keys."""
    lines = []
    for store, entry in _entries(config, receiver):
        lines.append(f"{entry.id}\t{entry.role}\t{entry.tenant or '*'}\t{entry.created}\t{store.path}")
    if not lines:
        return "no keys in " + " or ".join(str(store.path) for store in _stores(config, receiver))
    return "\n".join(["id\trole\ttenant\tcreated\tfile", *lines])


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
