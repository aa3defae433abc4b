"""Who is calling: the two auth modes of the proxy, and managed mode kept across restarts.

Passthrough forwards the client's own provider key untouched. Managed requires
a proxy key (``Authorization: Bearer``, ``x-api-key``, Azure's ``api-key``,
Gemini's ``x-goog-api-key`` or its ``key`` query parameter), replaces it with
the upstream's configured provider key, and stamps the key's tenant on the span.

Once a proxy is managed (``auth.mode: managed``, or ``auto`` with a key in the
keys file) it writes a marker file beside the keys file, ``<keys_file>.managed``.
In ``auto`` mode the marker keeps the proxy managed after a restart, whatever
became of the keys file: otherwise a keys file lost or emptied would turn it
into pass-through and forward clients' proxy keys to the provider. A managed
proxy with no readable key refuses every call with 401 (fail closed) and says
so in one log line, repeated only when that changes.
"""

from __future__ import annotations

import datetime
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote_to_bytes

from collector.keys import NO_LIMITS, PROXY_ROLE, KeysFileError, KeyStore, Limits, hash_key
from collector.private_files import PRIVATE_FILE_MODE, private_directory
from proxy.config import AuthSettings
from proxy.errors import ProxyError

# Where each provider's SDK sends its key: OpenAI, Anthropic, Azure OpenAI, Gemini.
AUTH_HEADERS = ("authorization", "x-api-key", "api-key", "x-goog-api-key")
# Gemini's other place for a key: the query string (?key=...).
KEY_QUERY_PARAMETER = b"key"
MANAGED_MARKER_SUFFIX = ".managed"

_logger = logging.getLogger("genai_collector.proxy")


@dataclass(frozen=True)
class Caller:
    """The authenticated caller: its tenant (its key's, or a trusted header's) and a hash naming its credential."""

    managed: bool
    tenant: str | None
    # Scopes conversation grouping, so two callers' identical histories never merge.
    credential_hash: str
    key_id: str | None = None  # the proxy key's (managed mode)
    key_limits: Limits = NO_LIMITS  # what the keys file sets for that key


def managed_marker(keys_file: Path) -> Path:
    """Where a proxy using ``keys_file`` records that it is managed."""
    return keys_file.with_name(keys_file.name + MANAGED_MARKER_SUFFIX)


def persist_managed(keys_file: Path) -> None:
    """Record (once) that the proxy using ``keys_file`` is managed; raises OSError when it cannot."""
    marker = managed_marker(keys_file)
    if marker.exists():
        return
    private_directory(marker.parent)
    since = datetime.datetime.now(datetime.UTC).replace(microsecond=0).isoformat()
    try:
        fd = os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    except FileExistsError:
        return  # another process wrote it first
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(
            f"managed since {since}: calls need a proxy key from {keys_file.name}, even if that file is lost.\n"
            "To return to pass-through on purpose, see docs/proxy.md (Auth).\n"
        )


class Authenticator:
    def __init__(self, settings: AuthSettings, logger: logging.Logger | None = None) -> None:
        self._mode = settings.mode
        self.keys = KeyStore(Path(settings.keys_file))
        self._logger = logger or _logger
        self.marker = managed_marker(self.keys.path)
        self._managed = self._mode == "managed" or (self._mode == "auto" and self.marker.exists())
        self._persisted = False
        self._keys_state: str | None = None  # what was last logged about the keys: "present", "absent", or an error
        try:
            if self.is_managed():
                self._keys_present()  # says at start, in one line, when every call will be refused
        except KeysFileError:
            pass  # already logged

    def is_managed(self) -> bool:
        """Managed: by config, by a marker left earlier, or (auto) once the keys file held a key."""
        if self._mode == "passthrough":
            return False
        if not self._managed and self._keys_present():
            self._managed = True
            self._logger.info("a proxy key exists in %s: the proxy is managed from now on", self.keys.path)
        if self._managed and not self._persisted:
            self._persist()
        return self._managed

    def authenticate(self, headers: Mapping[str, str], raw_query: bytes = b"") -> Caller:
        credential = presented_key(headers, raw_query)
        if not self.is_managed():
            return Caller(False, None, hash_key(credential or ""))
        try:
            present = self._keys_present()
        except KeysFileError:
            present = False  # managed and unable to check a key: refused, like a missing file
        if not present:
            raise ProxyError(401, "the proxy has no usable keys file, so no proxy key is accepted; see its log")
        if not credential:
            raise ProxyError(
                401, "a proxy key is required: send it where your SDK sends its provider key (Authorization: Bearer)"
            )
        entry = self.keys.verify(credential, (PROXY_ROLE,))
        if entry is None:
            raise ProxyError(401, "the proxy key is not valid", "invalid_api_key")
        return Caller(True, entry.tenant, entry.sha256, entry.id, entry.limits)

    def _keys_present(self) -> bool:
        """Whether the keys file holds a key; its state is logged when it changes, never per call."""
        try:
            present = self.keys.has_keys()
        except KeysFileError as exc:
            if self._managed:
                self._note_keys(str(exc), logging.ERROR, "%s; %s: every call is refused with 401", exc, self._why())
            else:
                self._note_keys(str(exc), logging.ERROR, "%s: every call is answered 500 until it is fixed", exc)
            raise
        if present:
            self._note_keys("present", logging.INFO, "the proxy keys file %s holds keys again", self.keys.path)
        elif self._managed:
            self._note_keys(
                "absent",
                logging.ERROR,
                "the proxy keys file %s is missing or empty and %s: every call is refused with 401 until a key is "
                "created (genai-collector keys create); docs/proxy.md says how to return to pass-through",
                self.keys.path,
                self._why(),
            )
        return present

    def _why(self) -> str:
        return "auth.mode is managed" if self._mode == "managed" else f"managed mode is recorded in {self.marker}"

    def _note_keys(self, state: str, level: int, message: str, *args: object) -> None:
        if state == self._keys_state:
            return
        if self._keys_state is not None or state != "present":  # a proxy starting with its keys is not news
            self._logger.log(level, message, *args)
        self._keys_state = state

    def _persist(self) -> None:
        self._persisted = True  # tried once: a failure is logged once, and the proxy stays managed in memory
        try:
            persist_managed(self.keys.path)
        except OSError as exc:
            self._logger.error(
                "cannot record managed mode in %s (%s): after a restart with no keys file this proxy would be "
                "pass-through",
                self.marker,
                exc.strerror,
            )


def presented_key(headers: Mapping[str, str], raw_query: bytes = b"") -> str | None:
    """The key a client sent, from any header the official SDKs use, or Gemini's ``key`` query parameter."""
    authorization = headers.get("authorization", "")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    for name in AUTH_HEADERS[1:]:
        value = headers.get(name, "").strip()
        if value:
            return value
    return query_key(raw_query)


def query_key(raw_query: bytes) -> str | None:
    """The ``key`` query parameter's value (Gemini's API keys may travel there), or None."""
    for pair in raw_query.split(b"&"):
        name, _, value = pair.partition(b"=")
        if unquote_to_bytes(name) == KEY_QUERY_PARAMETER and value:
            return unquote_to_bytes(value.replace(b"+", b" ")).decode("utf-8", errors="replace").strip() or None
    return None


def without_query_key(raw_query: bytes) -> bytes:
    """The query without its ``key`` parameters (however their name is encoded), every other byte as sent."""
    if not raw_query:
        return raw_query
    kept = [pair for pair in raw_query.split(b"&") if unquote_to_bytes(pair.partition(b"=")[0]) != KEY_QUERY_PARAMETER]
    return b"&".join(kept)
