"""deploy/Dockerfile and its ignore file: base image, install, user, ports, healthcheck, command."""

from __future__ import annotations

import json
import shlex

from collector.config.service import load_config
from collector.registry import default_registry
from tests.conftest import REPO_ROOT
from tests.deploy.deployfiles import COLLECTOR_CONFIG_TARGET, DOCKERFILE, dockerfile_instructions, final_stage

EXPECTED_PORTS = {4317, 4318, 8080, 13133, 8889, 16686, 17271}
IGNORE_FILE = DOCKERFILE.with_name(DOCKERFILE.name + ".dockerignore")


def _final() -> list[tuple[str, str]]:
    return final_stage(dockerfile_instructions())


def _one(keyword: str) -> str:
    found = [arguments for kw, arguments in _final() if kw == keyword]
    assert len(found) == 1, f"expected one {keyword} in the final stage, got {len(found)}"
    return found[0]


def _env() -> dict[str, str]:
    env: dict[str, str] = {}
    for arguments in (a for kw, a in _final() if kw == "ENV"):
        for pair in shlex.split(arguments):
            key, _, value = pair.partition("=")
            env[key] = value
    return env


def test_every_stage_starts_from_python_3_11_slim() -> None:
    bases = [arguments.split()[0] for keyword, arguments in dockerfile_instructions() if keyword == "FROM"]
    assert bases and all(base == "python:3.11-slim" for base in bases)


def test_installs_the_project_with_pip() -> None:
    runs = [a for kw, a in dockerfile_instructions() if kw == "RUN"]
    assert any("pip wheel" in r and r.rstrip().endswith(" .") for r in runs), "the build stage builds the repository"
    assert any("pip install" in r and "genai-collector" in r for r in (a for kw, a in _final() if kw == "RUN"))


def test_copies_only_what_the_package_needs_and_the_ignore_file_lets_it_through() -> None:
    sources = [
        part
        for keyword, arguments in dockerfile_instructions()
        if keyword == "COPY" and not arguments.startswith("--from")
        for part in arguments.split()[:-1]
    ]
    assert set(sources) >= {"pyproject.toml", "collector", "processors", "exporters", "proxy", "otel-config.yaml"}
    lines = [line.strip() for line in IGNORE_FILE.read_text(encoding="utf-8").splitlines()]
    rules = [line for line in lines if line and not line.startswith("#")]
    assert rules[0] == "*", "exclude everything, then let the sources back in"
    allowed = {rule[1:].rstrip("/") for rule in rules if rule.startswith("!")}
    for source in sources:
        assert (REPO_ROOT / source).exists(), f"COPY {source}: not in the repository"
        assert source in allowed, f"COPY {source}: excluded by {IGNORE_FILE.name}"
    assert not allowed & {".venv", "data", ".git", "tests"}


def test_runs_as_a_non_root_user_before_the_command() -> None:
    final = _final()
    user_at = [i for i, (kw, _) in enumerate(final) if kw == "USER"]
    assert user_at, "no USER"
    user = final[user_at[-1]][1].split(":")[0]
    assert user not in ("root", "0")
    entry_at = next(i for i, (kw, _) in enumerate(final) if kw == "ENTRYPOINT")
    assert user_at[-1] < entry_at


def test_exposes_the_collector_ports() -> None:
    ports = {int(p) for kw, a in _final() if kw == "EXPOSE" for p in a.split()}
    assert ports == EXPECTED_PORTS


def test_healthcheck_asks_the_admin_endpoint() -> None:
    healthcheck = _one("HEALTHCHECK")
    assert "CMD" in healthcheck and "http://127.0.0.1:13133/health" in healthcheck
    assert _env()["GENAI_COLLECTOR_ADMIN_ENDPOINT"].endswith(":13133")


def test_runs_the_collector_on_the_mounted_config() -> None:
    command = json.loads(_one("ENTRYPOINT")) + json.loads(_one("CMD"))
    assert command == ["genai-collector", "run", "--config", COLLECTOR_CONFIG_TARGET]


def test_shipped_config_listens_on_every_interface_with_the_image_environment() -> None:
    # The image runs the repository's otel-config.yaml; its ENV moves every listener off loopback.
    config = load_config(REPO_ROOT / "otel-config.yaml", default_registry(), environ=_env())
    listeners = {(lst.endpoint.host, lst.endpoint.port) for lst in config.listeners()}
    assert listeners == {("0.0.0.0", port) for port in EXPECTED_PORTS}
    assert {port for _, port in listeners} <= EXPECTED_PORTS
