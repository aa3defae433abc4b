"""Proxy keys: shown once, stored as hashes in a private file, picked up while the proxy runs."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from collector.keys import KeysFileError, KeyStore, hash_key
from proxy.auth import Authenticator, presented_key, without_query_key
from proxy.config import AuthSettings
from proxy.errors import ProxyError


def test_a_created_key_is_stored_only_as_its_hash(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    entry, key = KeyStore(path).create("team-a")

    text = path.read_text()
    assert key.startswith("gcx-") and len(key) > 40
    assert key not in text
    assert json.loads(text)["keys"] == [
        {"id": entry.id, "tenant": "team-a", "sha256": hash_key(key), "created": entry.created, "role": "proxy"}
    ]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_running_store_sees_keys_created_later(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    running = KeyStore(path)
    assert not running.has_keys()
    _, key = KeyStore(path).create("team-b")  # as `genai-collector keys create` would, from another process
    assert running.tenant_for(key) == "team-b"
    assert running.tenant_for(key + "x") is None


def test_auto_mode_turns_managed_with_the_first_key(tmp_path: Path) -> None:
    auth = Authenticator(AuthSettings(keys_file=str(tmp_path / "keys.json")))
    assert auth.authenticate({"authorization": "Bearer sk-own"}).managed is False
    _, key = auth.keys.create("t")
    caller = auth.authenticate({"x-api-key": key})
    assert (caller.managed, caller.tenant) == (True, "t")
    with pytest.raises(ProxyError) as refused:
        auth.authenticate({"authorization": "Bearer sk-own"})
    assert refused.value.status == 401


def test_passthrough_mode_ignores_the_keys_file(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    KeyStore(path).create("t")
    auth = Authenticator(AuthSettings(mode="passthrough", keys_file=str(path)))
    assert auth.authenticate({}).managed is False


def test_a_corrupt_keys_file_is_one_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    path.write_text("{not json")
    with pytest.raises(KeysFileError, match="cannot read the keys file"):
        KeyStore(path).entries()


@pytest.mark.parametrize(
    ("headers", "key"),
    [
        ({"authorization": "Bearer abc"}, "abc"),
        ({"authorization": "bearer  abc "}, "abc"),
        ({"x-api-key": "abc"}, "abc"),
        ({"api-key": "abc"}, "abc"),
        ({"x-goog-api-key": "abc"}, "abc"),
        ({"authorization": "Basic abc"}, None),
        ({}, None),
    ],
)
def test_presented_key(headers: dict[str, str], key: str | None) -> None:
    assert presented_key(headers) == key


@pytest.mark.parametrize(
    ("query", "key", "stripped"),
    [
        (b"alt=sse&key=abc", "abc", b"alt=sse"),
        (b"key=a%2Bb+c&alt=sse", "a+b c", b"alt=sse"),
        (b"%6Bey=abc", "abc", b""),  # a parameter name percent-encoded is the same parameter
        (b"key=abc&key=def&pageSize=5", "abc", b"pageSize=5"),
        (b"monkey=abc&keys=1", None, b"monkey=abc&keys=1"),
        (b"key=", None, b""),
        (b"", None, b""),
    ],
)
def test_a_key_in_the_query(query: bytes, key: str | None, stripped: bytes) -> None:
    assert presented_key({}, query) == key
    assert without_query_key(query) == stripped


def test_managed_stays_managed_when_the_keys_file_goes(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    auth = Authenticator(AuthSettings(keys_file=str(path)))
    auth.keys.create("t")
    assert auth.is_managed()
    path.unlink()
    # Turning pass-through now would send clients' proxy keys on to the provider.
    assert auth.is_managed()
    with pytest.raises(ProxyError):
        auth.authenticate({"authorization": "Bearer gcx-whatever"})
