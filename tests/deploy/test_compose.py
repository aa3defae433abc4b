"""Both compose files, parsed and interpolated as docker compose would: services, ports, volumes, dependencies."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO_ROOT
from tests.deploy.deployfiles import (
    COLLECTOR_CONFIG_TARGET,
    COMPOSE_FILES,
    DEPLOY_DIR,
    DOCKERFILE,
    ENV_EXAMPLE,
    IMAGE_DEFAULT_PORTS,
    MAIN_COMPOSE,
    OPERATOR_MADE_FILES,
    MissingVariable,
    bind_source,
    collector_listen_ports,
    compose_variables,
    dockerfile_instructions,
    exposed_ports,
    image_name,
    load_compose,
    load_yaml_file,
    mounted_file,
    parse_port,
    parse_xml,
    read_env_file,
    service_mounts,
    split_host_port,
    xml_text,
)

COMPOSE_IDS = [str(path.relative_to(DEPLOY_DIR)) for path in COMPOSE_FILES]
HEALTH_CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}
SECRET_MARKERS = ("PASSWORD", "SECRET", "TOKEN", "API_KEY")
PLACEHOLDER = "change-me"


def _services(path: Path) -> dict[str, Any]:
    services = load_compose(path)["services"]
    assert isinstance(services, dict) and services
    return services


def _dockerfile_has_healthcheck() -> bool:
    return any(keyword == "HEALTHCHECK" for keyword, _ in dockerfile_instructions())


def listen_ports(path: Path, name: str, service: dict[str, Any]) -> set[int]:
    """The ports a service's process listens on, read from the files in deploy/ or the image's defaults."""
    if "build" in service:
        config = load_yaml_file(mounted_file(path, service, COLLECTOR_CONFIG_TARGET))
        return set(collector_listen_ports(config).values())
    image = image_name(service)
    if image == "grafana/tempo":
        config_arg = next(arg for arg in service["command"] if arg.startswith("-config.file="))
        tempo = load_yaml_file(mounted_file(path, service, config_arg.split("=", 1)[1]))
        ports = {tempo["server"]["http_listen_port"], tempo["server"]["grpc_listen_port"]}
        for protocol in tempo["distributor"]["receivers"]["otlp"]["protocols"].values():
            ports.add(split_host_port(protocol["endpoint"])[1])
        return ports
    if image == "clickhouse/clickhouse-keeper":
        keeper = parse_xml(mounted_file(path, service, "/etc/clickhouse-keeper/keeper_config.xml"))
        server = keeper.find("keeper_server")
        assert server is not None
        own_id = xml_text(server, "server_id")
        raft = [s for s in server.iterfind("raft_configuration/server") if xml_text(s, "id") == own_id]
        return {int(xml_text(server, "tcp_port")), int(xml_text(raft[0], "port"))}
    assert image in IMAGE_DEFAULT_PORTS, f"service {name}: no known ports for image {image}"
    return set(IMAGE_DEFAULT_PORTS[image])


@pytest.mark.parametrize("path", COMPOSE_FILES, ids=COMPOSE_IDS)
def test_every_service_has_a_pinned_image_or_a_build(path: Path) -> None:
    for name, service in _services(path).items():
        if "build" in service:
            build = service["build"]
            context = (path.parent / build["context"]).resolve()
            assert (context / "pyproject.toml").is_file(), f"{name}: build context {context} is not the repository"
            assert (context / build["dockerfile"]).resolve() == DOCKERFILE, f"{name}: builds another Dockerfile"
            assert ":" in service.get("image", ""), f"{name}: tag the built image"
        else:
            image = service.get("image", "")
            repository, _, tag = image.rpartition(":")
            assert repository and tag and tag != "latest", f"{name}: pin the image tag, got {image!r}"


@pytest.mark.parametrize("path", COMPOSE_FILES, ids=COMPOSE_IDS)
def test_port_mappings_are_well_formed_and_published_on_the_chosen_address(path: Path) -> None:
    published: dict[int, str] = {}
    for name, service in _services(path).items():
        for entry in service.get("ports", []):
            port = parse_port(entry)
            assert 0 < port.published < 65536 and 0 < port.target < 65536, f"{name}: {entry}"
            assert port.protocol == "tcp", f"{name}: {entry}"
            # Loopback unless .env says otherwise: the admin endpoint serves every stored span.
            assert port.host_ip == read_env_file()["GENAI_PUBLISH_ADDRESS"] == "127.0.0.1", f"{name}: {entry}"
            assert port.published not in published, f"{name} and {published.get(port.published)} publish {entry}"
            published[port.published] = name


@pytest.mark.parametrize("path", COMPOSE_FILES, ids=COMPOSE_IDS)
def test_every_declared_port_is_one_the_service_listens_on(path: Path) -> None:
    for name, service in _services(path).items():
        listening = listen_ports(path, name, service)
        stray = exposed_ports(service) - listening
        assert not stray, f"{name} exposes {sorted(stray)} but listens on {sorted(listening)}"


def test_collector_publishes_every_client_facing_port() -> None:
    collector = _services(MAIN_COMPOSE)["collector"]
    assert {parse_port(p).target for p in collector["ports"]} == {4317, 4318, 8080, 13133, 16686}
    assert 8889 in exposed_ports(collector)


def test_files_the_operator_makes_are_ignored_by_git_and_explained() -> None:
    ignored = (REPO_ROOT / ".gitignore").read_text().splitlines()
    compose_text = MAIN_COMPOSE.read_text()
    for made in OPERATOR_MADE_FILES:
        relative = made.relative_to(REPO_ROOT)
        assert f"/{relative}" in ignored, f"{relative} could be committed"
        explained = f"> {made.relative_to(DEPLOY_DIR)}" in compose_text
        assert explained, f"docker-compose.yaml does not say how {relative} is made"


@pytest.mark.parametrize("path", COMPOSE_FILES, ids=COMPOSE_IDS)
def test_every_volume_is_declared_or_a_file_in_deploy(path: Path) -> None:
    compose = load_compose(path)
    declared = set(compose.get("volumes") or {})
    used: set[str] = set()
    for name, service in compose["services"].items():
        targets = [mount.target for mount in service_mounts(service)]
        assert len(targets) == len(set(targets)), f"{name}: two mounts on one target"
        for mount in service_mounts(service):
            assert mount.target.startswith("/"), f"{name}: {mount.target} is not an absolute container path"
            if mount.is_bind:
                source = bind_source(path, mount)
                assert source.exists() or source in OPERATOR_MADE_FILES, f"{name}: {mount.source} does not exist"
                assert source.is_relative_to(DEPLOY_DIR), f"{name}: {mount.source} is outside deploy/"
                assert mount.read_only, f"{name}: mount {mount.source} read-only"
            else:
                assert mount.source in declared, f"{name}: volume {mount.source} is not declared"
                used.add(mount.source)
    assert declared == used, f"declared but unused: {sorted(declared - used)}"


@pytest.mark.parametrize("path", COMPOSE_FILES, ids=COMPOSE_IDS)
def test_depends_on_names_existing_services_without_cycles(path: Path) -> None:
    services = _services(path)
    graph: dict[str, list[str]] = {}
    for name, service in services.items():
        depends = service.get("depends_on") or {}
        assert isinstance(depends, dict), f"{name}: use depends_on with conditions"
        for target, spec in depends.items():
            assert target in services, f"{name} depends on unknown service {target}"
            condition = spec.get("condition")
            assert condition in HEALTH_CONDITIONS, f"{name} -> {target}: condition {condition!r}"
            if condition == "service_healthy":
                target_service = services[target]
                has_check = "healthcheck" in target_service or (
                    "build" in target_service and _dockerfile_has_healthcheck()
                )
                assert has_check, f"{name} waits for {target} to be healthy, but it has no healthcheck"
        graph[name] = list(depends)

    def visit(node: str, trail: tuple[str, ...]) -> None:
        assert node not in trail, "dependency cycle: " + " -> ".join((*trail, node))
        for target in graph[node]:
            visit(target, (*trail, node))

    for name in graph:
        visit(name, ())


@pytest.mark.parametrize("path", COMPOSE_FILES, ids=COMPOSE_IDS)
def test_every_service_has_a_healthcheck_on_a_port_it_listens_on(path: Path) -> None:
    for name, service in _services(path).items():
        if "build" in service and "healthcheck" not in service:
            assert _dockerfile_has_healthcheck(), f"{name}: no healthcheck in compose or the Dockerfile"
            continue
        check = service.get("healthcheck")
        assert check is not None, f"{name}: no healthcheck"
        test = check["test"]
        assert isinstance(test, list) and test[0] in ("CMD", "CMD-SHELL"), f"{name}: {test}"
        command = " ".join(test[1:])
        ports = {int(p) for p in re.findall(r"127\.0\.0\.1[: ](\d+)", command)}
        assert ports, f"{name}: the healthcheck names no local port: {command}"
        assert ports <= listen_ports(path, name, service), f"{name}: healthcheck port {ports} is not served"
        for key in ("interval", "timeout", "retries"):
            assert key in check, f"{name}: healthcheck.{key}"


@pytest.mark.parametrize("path", COMPOSE_FILES, ids=COMPOSE_IDS)
def test_every_variable_is_documented_in_env_example(path: Path) -> None:
    missing = compose_variables(path) - set(read_env_file())
    assert not missing, f"not in {ENV_EXAMPLE.name}: {sorted(missing)}"


@pytest.mark.parametrize("path", COMPOSE_FILES, ids=COMPOSE_IDS)
def test_secrets_come_from_the_environment_and_are_required(path: Path) -> None:
    raw = load_yaml_file(path)
    for name, service in raw["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if any(marker in key for marker in SECRET_MARKERS):
                assert str(value).startswith("${") and str(value).endswith("}"), f"{name}: {key} is hard-coded"
                if "PASSWORD" in key:
                    assert ":?" in str(value), f"{name}: {key} must be required, not defaulted"
    # Without a .env, compose refuses to start rather than run with a default password.
    with pytest.raises(MissingVariable, match="PASSWORD"):
        load_compose(path, env={})


def test_env_example_holds_placeholders_not_secrets() -> None:
    env = read_env_file()
    for key, value in env.items():
        if "PASSWORD" in key:
            assert value == PLACEHOLDER, f"{key}: keep the placeholder {PLACEHOLDER}"
        elif any(marker in key for marker in SECRET_MARKERS):
            assert value == "", f"{key}: leave it empty in the example"


@pytest.mark.parametrize("path", COMPOSE_FILES, ids=COMPOSE_IDS)
def test_collector_mounts_its_config_where_the_image_reads_it(path: Path) -> None:
    collector = _services(path)["collector"]
    config = mounted_file(path, collector, COLLECTOR_CONFIG_TARGET)
    assert config.is_file() and config.is_relative_to(DEPLOY_DIR)
    cmd = next(arguments for keyword, arguments in dockerfile_instructions() if keyword == "CMD")
    assert COLLECTOR_CONFIG_TARGET in cmd
    data = [m for m in service_mounts(collector) if m.target == "/var/lib/genai-collector/data"]
    assert data and not data[0].is_bind, "the collector's data directory is a named volume"
