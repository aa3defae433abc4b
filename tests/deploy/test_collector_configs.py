"""The collector configs in deploy/ against the project's own config loading, and against the compose files.

Validation uses the real registry. A component type or setting that the
registry does not know yet skips that file's validation, naming what is
missing; once it exists the file is validated like any other config.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from collector.config.problems import ConfigError
from collector.config.service import CollectorConfig, load_config
from collector.registry import default_registry
from tests.deploy.deployfiles import (
    CLUSTER_COMPOSE,
    COLLECTOR_CONFIG_TARGET,
    COMPOSE_FILES,
    DEPLOY_DIR,
    exposed_ports,
    load_compose,
    load_yaml_file,
    mounted_file,
    split_host_port,
)

_UNKNOWN_TYPE = re.compile(r'unknown \w+ type "([^"]+)"')
_ENV_REFERENCE = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)(:-[^}]*)?\}")
COMPOSE_IDS = [str(path.relative_to(DEPLOY_DIR)) for path in COMPOSE_FILES]


def _collector(compose_path: Path) -> tuple[dict[str, Any], Path]:
    """The collector service (interpolated with .env.example) and the config file it mounts."""
    services = load_compose(compose_path)["services"]
    service = services["collector"]
    return service, mounted_file(compose_path, service, COLLECTOR_CONFIG_TARGET)


def _validated(compose_path: Path) -> CollectorConfig:
    """Load the collector's config with the environment compose gives it, or skip naming what is not built yet."""
    service, config_path = _collector(compose_path)
    environ = {str(key): str(value) for key, value in (service.get("environment") or {}).items()}
    try:
        return load_config(config_path, default_registry(), environ=environ)
    except ConfigError as exc:
        missing: list[str] = []
        other: list[str] = []
        for problem in exc.problems:
            unknown_type = _UNKNOWN_TYPE.search(problem.message)
            if unknown_type:
                missing.append(f'{problem.path}: type "{unknown_type.group(1)}"')
            elif problem.message.startswith("unknown key") and problem.path.startswith("exporters."):
                missing.append(f"{problem.path}: setting")
            else:
                other.append(str(problem))
        assert not other, f"{config_path.relative_to(DEPLOY_DIR)}:\n" + "\n".join(map(str, exc.problems))
        pytest.skip(f"{config_path.relative_to(DEPLOY_DIR)} uses what the registry lacks: " + "; ".join(missing))


def _strings(node: Any) -> list[str]:
    """Every string value in a parsed YAML document (comments are not values)."""
    if isinstance(node, dict):
        return [text for value in node.values() for text in _strings(value)]
    if isinstance(node, list):
        return [text for item in node for text in _strings(item)]
    return [node] if isinstance(node, str) else []


@pytest.mark.parametrize("compose_path", COMPOSE_FILES, ids=COMPOSE_IDS)
def test_config_passes_the_collectors_own_validation(compose_path: Path) -> None:
    config = _validated(compose_path)
    assert config.used("exporters"), "no exporter runs"


@pytest.mark.parametrize("compose_path", COMPOSE_FILES, ids=COMPOSE_IDS)
def test_every_env_reference_is_set_by_compose_or_defaulted(compose_path: Path) -> None:
    service, config_path = _collector(compose_path)
    environment = set(service.get("environment") or {})
    references = [ref for value in _strings(load_yaml_file(config_path)) for ref in _ENV_REFERENCE.findall(value)]
    for name, default in references:
        assert default or name in environment, f"{config_path.name}: ${{env:{name}}} is never set"
    unused = environment - {name for name, _ in references}
    assert not unused, f"compose sets {sorted(unused)} but {config_path.name} does not read them"


@pytest.mark.parametrize("compose_path", COMPOSE_FILES, ids=COMPOSE_IDS)
def test_exporters_reach_services_on_ports_they_expose(compose_path: Path) -> None:
    services = load_compose(compose_path)["services"]
    service, config_path = _collector(compose_path)
    exporters = load_yaml_file(config_path)["exporters"]
    environ = {str(k): str(v) for k, v in (service.get("environment") or {}).items()}
    for cid, settings in exporters.items():
        if str(cid).split("/")[0] == "prometheus":
            continue
        endpoint = re.sub(
            r"\$\{env:(\w+)(?::-([^}]*))?\}",
            lambda m: environ.get(m.group(1)) or m.group(2) or "",
            settings["endpoint"],
        )
        host, port = split_host_port(endpoint)
        assert host in services, f"exporters.{cid}: {host} is not a compose service"
        assert port in exposed_ports(services[host]), f"exporters.{cid}: {host} does not expose {port}"


def test_compose_config_exports_to_clickhouse_jaeger_tempo_and_prometheus() -> None:
    _, config_path = _collector(COMPOSE_FILES[0])
    config = load_yaml_file(config_path)
    exporters = config["exporters"]
    assert config["service"]["pipelines"]["traces"]["exporters"] == [
        "clickhouse",
        "otlp/jaeger",
        "otlphttp/tempo",
        "genai_metrics",
    ]
    assert config["service"]["pipelines"]["metrics"] == {"receivers": ["genai_metrics"], "exporters": ["prometheus"]}
    assert exporters["clickhouse"]["endpoint"] == "http://clickhouse:8123"
    assert exporters["clickhouse"]["username"].startswith("${env:CLICKHOUSE_USER")
    assert exporters["clickhouse"]["password"] == "${env:CLICKHOUSE_PASSWORD}"
    assert exporters["otlp/jaeger"] == {"endpoint": "jaeger:4317", "tls": {"insecure": True}}
    assert exporters["otlphttp/tempo"]["endpoint"] == "http://tempo:4318"
    assert exporters["prometheus"]["endpoint"] == "0.0.0.0:8889"


def test_cluster_config_uses_the_cluster_and_replicated_tables() -> None:
    _, config_path = _collector(CLUSTER_COMPOSE)
    clickhouse = load_yaml_file(config_path)["exporters"]["clickhouse"]
    assert clickhouse["cluster_name"] == "genai"
    assert clickhouse["table_engine"] == {"name": "ReplicatedMergeTree"}
    assert clickhouse["password"] == "${env:CLICKHOUSE_PASSWORD}"
