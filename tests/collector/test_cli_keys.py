"""``genai-collector keys`` as users run it: proxy and API keys, shown once, listed, revoked."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path

from collector.keys import KeyStore
from tests.conftest import REPO_ROOT

EXIT_USAGE = 2


def _config(tmp_path: Path, limits: str = "") -> Path:
    config = tmp_path / "otel-config.yaml"
    config.write_text(
        f"""
receivers:
  genai_proxy:
    endpoint: 127.0.0.1:0
    auth:
      keys_file: {tmp_path / "proxy-keys.json"}
    upstreams:
      - name: openai
        kind: openai
        base_url: http://127.0.0.1:9/v1
{limits}
exporters:
  debug:
extensions:
  admin:
    endpoint: 127.0.0.1:0
    keys_file: {tmp_path / "api-keys.json"}
service:
  extensions: [admin]
  pipelines:
    traces:
      receivers: [genai_proxy]
      exporters: [debug]
"""
    )
    return config


def _keys(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "collector", "keys", *args, "--config", str(config)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_api_keys_go_to_the_admin_keys_file_and_proxy_keys_to_the_proxys(tmp_path: Path) -> None:
    config = _config(tmp_path)
    admin = _keys(config, "create", "--role", "admin")
    viewer = _keys(config, "create", "--role", "viewer", "--tenant", "team-a")
    proxy = _keys(config, "create", "--tenant", "team-b")
    for created in (admin, viewer, proxy):
        assert created.returncode == 0, created.stderr
    admin_key, viewer_key, proxy_key = (created.stdout.splitlines()[0] for created in (admin, viewer, proxy))
    assert admin_key.startswith("gca_") and viewer_key.startswith("gca_") and proxy_key.startswith("gcx-")
    assert "admin key key_" in admin.stdout and "(every tenant)" in admin.stdout
    assert "(tenant team-a)" in viewer.stdout

    api_file, proxy_file = tmp_path / "api-keys.json", tmp_path / "proxy-keys.json"
    assert [entry["role"] for entry in json.loads(api_file.read_text())["keys"]] == ["admin", "viewer"]
    assert [entry["role"] for entry in json.loads(proxy_file.read_text())["keys"]] == ["proxy"]
    for path in (api_file, proxy_file):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert all(key not in path.read_text() for key in (admin_key, viewer_key, proxy_key))
    assert KeyStore(api_file).verify(viewer_key, ("viewer",)) is not None

    listed = _keys(config, "list")
    assert listed.returncode == 0
    rows = [line.split("\t") for line in listed.stdout.splitlines()]
    assert rows[0] == ["id", "role", "tenant", "created", "limits", "usage", "file"]
    assert [(role, tenant, file) for _, role, tenant, _, _, _, file in rows[1:]] == [
        ("admin", "*", str(api_file)),
        ("viewer", "team-a", str(api_file)),
        ("proxy", "team-b", str(proxy_file)),
    ]
    assert all(key not in listed.stdout for key in (admin_key, viewer_key, proxy_key))


def test_a_revoked_key_stops_working(tmp_path: Path) -> None:
    config = _config(tmp_path)
    key = _keys(config, "create", "--role", "operator").stdout.splitlines()[0]
    store = KeyStore(tmp_path / "api-keys.json")
    (entry,) = store.entries()
    assert store.verify(key, ("operator",)) == entry

    revoked = _keys(config, "revoke", entry.id)

    assert (revoked.returncode, revoked.stdout.strip()) == (
        0,
        f"revoked operator key {entry.id} (every tenant) in {tmp_path / 'api-keys.json'}",
    )
    assert store.verify(key, ("operator",)) is None
    again = _keys(config, "revoke", entry.id)
    assert again.returncode == EXIT_USAGE
    assert again.stderr.startswith(f'error: no key with id "{entry.id}" in ')


def test_key_mistakes_are_one_line(tmp_path: Path) -> None:
    config = _config(tmp_path)
    cases = {
        ("create", "--role", "admin", "--tenant", "team-a"): (
            "error: an admin key sees every tenant; --tenant applies to operator and viewer keys"
        ),
        ("create",): "error: a proxy key needs a tenant (--tenant NAME)",
        ("create", "--role", "viewer", "--tenant", " "): "error: the tenant name is empty",
    }
    for args, line in cases.items():
        result = _keys(config, *args)
        assert (result.returncode, result.stderr.strip()) == (EXIT_USAGE, line)
    assert not (tmp_path / "api-keys.json").exists()


def test_a_proxy_keys_limits_are_set_at_creation_changed_and_removed(tmp_path: Path) -> None:
    config = _config(
        tmp_path, "    limits:\n      keys: {rpm: 100}\n      tenants:\n        team-b: {daily_budget: 50}"
    )
    created = _keys(
        config, "create", "--tenant", "team-b", "--tpm", "100000", "--concurrency", "4", "--daily-budget", "10"
    )
    assert created.returncode == 0, created.stderr
    store = KeyStore(tmp_path / "proxy-keys.json")
    (entry,) = store.entries()
    assert entry.limits.as_dict() == {"tpm": 100000, "concurrency": 4, "daily_budget": 10.0}

    updated = _keys(config, "update", entry.id, "--rpm", "60", "--monthly-budget", "200", "--tpm", "none")
    assert updated.returncode == 0, updated.stderr
    assert store.entries()[0].limits.as_dict() == {
        "rpm": 60,
        "concurrency": 4,
        "daily_budget": 10.0,
        "monthly_budget": 200.0,
    }

    rows = [line.split("\t") for line in _keys(config, "list").stdout.splitlines()]
    assert rows[1][0] == entry.id
    assert rows[1][4] == "rpm=60 concurrency=4 daily_budget=$10 monthly_budget=$200"
    assert rows[2][:5] == ["tenant:team-b", "tenant", "team-b", "-", "daily_budget=$50"]


def test_limit_mistakes_are_one_line(tmp_path: Path) -> None:
    config = _config(tmp_path)
    negative = _keys(config, "create", "--tenant", "t", "--rpm", "-1")
    assert negative.returncode == EXIT_USAGE and "must be 0 or more" in negative.stderr
    nothing = _keys(config, "update", "key_000000000000")
    assert nothing.returncode == EXIT_USAGE
    assert nothing.stderr.strip() == (
        "error: nothing to update: give a limit flag (--rpm N, ..., or --rpm none to remove one)"
    )
    unknown = _keys(config, "update", "key_000000000000", "--rpm", "5")
    assert unknown.returncode == EXIT_USAGE and 'no key with id "key_000000000000"' in unknown.stderr
    admin = _keys(config, "create", "--role", "admin", "--rpm", "5")
    assert admin.returncode == EXIT_USAGE and "limits apply to proxy keys only" in admin.stderr
