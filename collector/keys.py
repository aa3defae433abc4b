"""Keys: created once, shown once, stored only as SHA-256 hashes in an owner-only JSON file.

One store serves two kinds of key. Proxy keys (role ``proxy``, ``gcx-...``) let a
client call the GenAI proxy in managed mode and stamp its tenant on the spans.
API keys (roles ``admin``, ``operator``, ``viewer``, ``gca_<id>_...``) open the
collector's own endpoints; a key bound to a tenant sees only that tenant's data.

A key is 32 random bytes, so a plain SHA-256 of it can be neither reversed nor
guessed and no slow hash is needed (as with API tokens elsewhere). An API key
carries its entry's id, so checking it is a lookup by id and one constant-time
comparison of hashes; a proxy key is found by its hash, which tells an attacker
timing nothing about any stored key. The file is written atomically with mode
0600 and re-read when it changes, so a key created or revoked while the
collector runs takes effect at once.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import hmac
import json
import os
import secrets
import tempfile
import threading
from collections.abc import Collection, Iterable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Literal, get_args

from collector.private_files import PRIVATE_FILE_MODE, private_directory

Role = Literal["proxy", "admin", "operator", "viewer"]
ROLES: tuple[Role, ...] = get_args(Role)
PROXY_ROLE: Role = "proxy"
API_ROLES: tuple[Role, ...] = ("admin", "operator", "viewer")
PROXY_KEY_PREFIX = "gcx-"
API_KEY_PREFIX = "gca_"
KEY_BYTES = 32
ID_HEX_CHARS = 12


class KeysFileError(Exception):
    """The keys file cannot be read or written, or a request on it makes no sense; the message says why."""


LIMIT_NAMES = ("rpm", "tpm", "concurrency", "daily_budget", "monthly_budget")


@dataclass(frozen=True)
class Limits:
    """What one proxy key or tenant may use; None means not limited (or the default applies).

    ``rpm`` requests and ``tpm`` tokens per minute, ``concurrency`` calls in flight
    (a stream counts until it ends), budgets in USD per UTC day and UTC month.
    The same settings are a key's (keys file), a tenant's and the defaults (config).
    """

    rpm: int | None = None
    tpm: int | None = None
    concurrency: int | None = None
    daily_budget: float | None = None
    monthly_budget: float | None = None

    def validate(self) -> Iterable[tuple[str, str]]:
        for name in LIMIT_NAMES:
            value = getattr(self, name)
            if value is not None and value < 0:
                yield name, "must be 0 or more"

    def over(self, defaults: Limits) -> Limits:
        """These limits, each one not set taken from ``defaults``."""
        return Limits(**{name: _first_set(getattr(self, name), getattr(defaults, name)) for name in LIMIT_NAMES})

    @property
    def any(self) -> bool:
        return any(getattr(self, name) is not None for name in LIMIT_NAMES)

    def as_dict(self) -> dict[str, int | float]:
        """The limits that are set, by name (how the keys file stores them)."""
        return {name: getattr(self, name) for name in LIMIT_NAMES if getattr(self, name) is not None}

    @classmethod
    def from_dict(cls, document: Any) -> Limits:
        if not isinstance(document, dict) or set(document) - set(LIMIT_NAMES):
            raise TypeError(f"limits must be a mapping of {', '.join(LIMIT_NAMES)}")
        limits = cls(**document)
        for name in LIMIT_NAMES:
            value = getattr(limits, name)
            if value is not None and (not isinstance(value, int | float) or isinstance(value, bool) or value < 0):
                raise TypeError(f"limit {name} must be a number of 0 or more")
        return limits


NO_LIMITS = Limits()


def _first_set(value: int | float | None, default: int | float | None) -> Any:
    return value if value is not None else default


@dataclass(frozen=True)
class KeyEntry:
    """What is stored of a key: never the key itself."""

    id: str
    tenant: str | None
    sha256: str
    created: str
    role: Role = PROXY_ROLE
    limits: Limits = NO_LIMITS  # proxy keys only


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _api_key_id(key: str) -> str | None:
    """The entry id an API key carries (``gca_<12 hex>_<secret>``), or None when it is not one."""
    if not key.startswith(API_KEY_PREFIX):
        return None
    body = key[len(API_KEY_PREFIX) :]
    key_id, separator = body[:ID_HEX_CHARS], body[ID_HEX_CHARS : ID_HEX_CHARS + 1]
    if separator != "_" or any(c not in "0123456789abcdef" for c in key_id):
        return None
    return "key_" + key_id


class KeyStore:
    """The keys file at ``path``, cached until it changes on disk."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int] | None = None
        self._by_id: dict[str, KeyEntry] = {}
        self._by_hash: dict[str, KeyEntry] = {}

    def entries(self) -> list[KeyEntry]:
        self._refresh()
        return list(self._by_id.values())

    def has_keys(self, roles: Collection[Role] = ROLES) -> bool:
        """Whether any key of one of ``roles`` exists."""
        self._refresh()
        return any(entry.role in roles for entry in self._by_id.values())

    def verify(self, key: str, roles: Collection[Role]) -> KeyEntry | None:
        """The entry of ``key`` when it is a key of this store with one of ``roles``; else None."""
        self._refresh()
        digest = hash_key(key)
        key_id = _api_key_id(key)
        entry = self._by_id.get(key_id) if key_id is not None else self._by_hash.get(digest)
        if entry is None or not hmac.compare_digest(entry.sha256, digest) or entry.role not in roles:
            return None
        return entry

    def tenant_for(self, key: str) -> str | None:
        """The tenant of proxy key ``key``, or None when it is not a proxy key of this store."""
        entry = self.verify(key, (PROXY_ROLE,))
        return entry.tenant if entry else None

    def create(
        self, tenant: str | None = None, role: Role = PROXY_ROLE, limits: Limits = NO_LIMITS
    ) -> tuple[KeyEntry, str]:
        """A new key: its stored entry, and the key itself (never stored)."""
        if role not in ROLES:
            raise KeysFileError(f'unknown role "{role}"; expected one of {", ".join(ROLES)}')
        tenant = tenant.strip() if tenant is not None else None
        if tenant == "":
            raise KeysFileError("the tenant name is empty")
        if role == PROXY_ROLE and tenant is None:
            raise KeysFileError("a proxy key needs a tenant (--tenant NAME)")
        if role == "admin" and tenant is not None:
            raise KeysFileError("an admin key sees every tenant; --tenant applies to operator and viewer keys")
        if limits.any and role != PROXY_ROLE:
            raise KeysFileError("limits apply to proxy keys only")
        key_hex = secrets.token_hex(ID_HEX_CHARS // 2)
        secret = secrets.token_urlsafe(KEY_BYTES)
        key = PROXY_KEY_PREFIX + secret if role == PROXY_ROLE else f"{API_KEY_PREFIX}{key_hex}_{secret}"
        now = datetime.datetime.now(datetime.UTC).replace(microsecond=0).isoformat()
        entry = KeyEntry("key_" + key_hex, tenant, hash_key(key), now, role, limits)
        with self._lock:
            entries = self._read()
            entries.append(entry)
            self._write(entries)
            self._stamp = None
        return entry, key

    def revoke(self, key_id: str) -> KeyEntry:
        """Remove the key with id ``key_id``; the entry that was removed."""
        with self._lock:
            entries = self._read()
            kept = [entry for entry in entries if entry.id != key_id]
            if len(kept) == len(entries):
                raise KeysFileError(f'no key with id "{key_id}" in {self.path}')
            self._write(kept)
            self._stamp = None
        return next(entry for entry in entries if entry.id == key_id)

    def update_limits(self, key_id: str, set_: Limits, clear: Collection[str] = ()) -> KeyEntry:
        """Set the limits of proxy key ``key_id`` that ``set_`` names and remove those in ``clear``; the new entry."""
        with self._lock:
            entries = self._read()
            found = [entry for entry in entries if entry.id == key_id]
            if not found:
                raise KeysFileError(f'no key with id "{key_id}" in {self.path}')
            if found[0].role != PROXY_ROLE:
                raise KeysFileError(f"{key_id} is an {found[0].role} key; limits apply to proxy keys only")
            kept = {name: value for name, value in found[0].limits.as_dict().items() if name not in clear}
            updated = replace(found[0], limits=Limits.from_dict({**kept, **set_.as_dict()}))
            self._write([updated if entry.id == key_id else entry for entry in entries])
            self._stamp = None
        return updated

    def _refresh(self) -> None:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            self._stamp, self._by_id, self._by_hash = None, {}, {}
            return
        stamp = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
        if stamp == self._stamp:
            return
        with self._lock:
            entries = self._read()
            self._by_id = {e.id: e for e in entries}
            self._by_hash = {e.sha256: e for e in entries}
            self._stamp = stamp

    def _read(self) -> list[KeyEntry]:
        try:
            text = self.path.read_text(encoding="utf-8")
            if not text.strip():
                return []  # an emptied file holds no keys; a managed proxy fails closed on that (proxy.auth)
            document = json.loads(text)
        except FileNotFoundError:
            return []
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise KeysFileError(f"cannot read the keys file {self.path}: {exc}") from None
        try:
            entries = [
                # Files written before roles hold proxy keys only; before limits, keys with none.
                KeyEntry(**{"tenant": None, **item, "limits": Limits.from_dict(item.get("limits", {}))})
                for item in document["keys"]
            ]
        except (KeyError, TypeError) as exc:
            raise KeysFileError(f"the keys file {self.path} is not in the expected format ({exc})") from None
        unknown = sorted({str(entry.role) for entry in entries} - set(ROLES))
        if unknown:
            raise KeysFileError(f"the keys file {self.path} names unknown roles: {', '.join(unknown)}")
        return entries

    def _write(self, entries: list[KeyEntry]) -> None:
        document = {"keys": [_stored(entry) for entry in entries]}
        try:
            private_directory(self.path.parent)
            fd, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=".keys-")  # created 0600
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as out:
                    json.dump(document, out, indent=2)
                    out.write("\n")
                    out.flush()
                    os.fsync(out.fileno())
                os.chmod(temporary, PRIVATE_FILE_MODE)
                os.replace(temporary, self.path)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(temporary)
                raise
        except OSError as exc:
            raise KeysFileError(f"cannot write the keys file {self.path}: {exc.strerror}") from None


def _stored(entry: KeyEntry) -> dict[str, Any]:
    """An entry as the keys file holds it: its limits only when it has some."""
    stored = asdict(entry)
    stored.pop("limits")
    if entry.limits.any:
        stored["limits"] = entry.limits.as_dict()
    return stored
