"""Proxy keys for managed auth: created once, shown once, stored only as SHA-256 hashes.

A key is 32 random bytes, so a plain SHA-256 of it cannot be reversed or
guessed; no slow hash is needed (as with API tokens elsewhere). The keys file is
JSON, written atomically with mode 0600, and re-read when it changes, so a key
created while the proxy runs works at once.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import secrets
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

KEY_PREFIX = "gcx-"
KEY_BYTES = 32


class KeysFileError(Exception):
    """The keys file cannot be read or written; the message says which and why."""


@dataclass(frozen=True)
class KeyEntry:
    id: str
    tenant: str
    sha256: str
    created: str


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


class KeyStore:
    """The keys file at ``path``, cached until it changes on disk."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._by_hash: dict[str, KeyEntry] = {}

    def entries(self) -> list[KeyEntry]:
        self._refresh()
        return list(self._by_hash.values())

    def has_keys(self) -> bool:
        self._refresh()
        return bool(self._by_hash)

    def tenant_for(self, key: str) -> str | None:
        """The tenant of ``key``, or None when it is not a key of this store."""
        self._refresh()
        entry = self._by_hash.get(hash_key(key))
        return entry.tenant if entry else None

    def create(self, tenant: str) -> tuple[KeyEntry, str]:
        """A new key for ``tenant``: its stored entry, and the key itself (never stored)."""
        if not tenant.strip():
            raise KeysFileError("a tenant name is required")
        key = KEY_PREFIX + secrets.token_urlsafe(KEY_BYTES)
        now = datetime.datetime.now(datetime.UTC).replace(microsecond=0).isoformat()
        entry = KeyEntry(id="key_" + secrets.token_hex(6), tenant=tenant, sha256=hash_key(key), created=now)
        with self._lock:
            entries = self._read()
            entries.append(entry)
            self._write(entries)
            self._stamp = None
        return entry, key

    def _refresh(self) -> None:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            self._stamp, self._by_hash = None, {}
            return
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp == self._stamp:
            return
        with self._lock:
            self._by_hash = {e.sha256: e for e in self._read()}
            self._stamp = stamp

    def _read(self) -> list[KeyEntry]:
        try:
            document = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return []
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise KeysFileError(f"cannot read the keys file {self.path}: {exc}") from None
        try:
            return [KeyEntry(**item) for item in document["keys"]]
        except (KeyError, TypeError) as exc:
            raise KeysFileError(f"the keys file {self.path} is not in the expected format ({exc})") from None

    def _write(self, entries: list[KeyEntry]) -> None:
        document = {"keys": [entry.__dict__ for entry in entries]}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=".keys-")
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(document, out, indent=2)
                out.write("\n")
            os.chmod(temporary, 0o600)
            os.replace(temporary, self.path)
        except OSError as exc:
            raise KeysFileError(f"cannot write the keys file {self.path}: {exc.strerror}") from None
