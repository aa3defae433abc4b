"""Reading deploy/ the way Docker Compose, Grafana and the collector would, for the deploy tests.

Nothing here starts a container: compose files are parsed and interpolated with
the variables of deploy/.env.example (as ``docker compose`` does with a .env
file), and every cross-reference between the files is resolved to the service
and port it names.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import REPO_ROOT

DEPLOY_DIR = REPO_ROOT / "deploy"
ENV_EXAMPLE = DEPLOY_DIR / ".env.example"
DOCKERFILE = DEPLOY_DIR / "Dockerfile"
MAIN_COMPOSE = DEPLOY_DIR / "docker-compose.yaml"
CLUSTER_COMPOSE = DEPLOY_DIR / "cluster" / "docker-compose.yaml"
COMPOSE_FILES = (MAIN_COMPOSE, CLUSTER_COMPOSE)
COLLECTOR_CONFIG_TARGET = "/etc/genai-collector/otel-config.yaml"
# Files the operator makes before the first start (secrets: never committed, so absent from a clone).
OPERATOR_MADE_FILES = (DEPLOY_DIR / "prometheus" / "collector-key",)

# Ports the upstream images listen on with their own defaults (their documentation);
# for the collector, Tempo and Keeper the ports are read from the files in deploy/.
IMAGE_DEFAULT_PORTS: Mapping[str, frozenset[int]] = {
    "clickhouse/clickhouse-server": frozenset({8123, 9000, 9009}),
    "jaegertracing/all-in-one": frozenset({4317, 4318, 14269, 16686}),
    "prom/prometheus": frozenset({9090}),
    "grafana/grafana": frozenset({3000}),
}

# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?error}, ${NAME?error}, ${NAME:+alt}, ${NAME+alt}, $NAME, $$
_COMPOSE_VARIABLE = re.compile(
    r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}|\$(?P<bare>[A-Za-z_][A-Za-z0-9_]*)"
)
_HOST_PORT = re.compile(r"^(?:[a-z]+://)?(?P<host>[A-Za-z0-9_.-]+):(?P<port>\d+)(?:/.*)?$")


class MissingVariable(Exception):
    """A ``${NAME:?message}`` reference to a variable that is unset (or empty)."""


def read_env_file(path: Path = ENV_EXAMPLE) -> dict[str, str]:
    """KEY=VALUE lines of a .env file; comments and blank lines skipped."""
    env: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        key, sep, value = stripped.partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            raise ValueError(f"{path}:{number}: expected KEY=VALUE, got {line!r}")
        env[key] = value
    return env


def interpolate_text(text: str, env: Mapping[str, str]) -> str:
    """One string with compose's variable syntax substituted from ``env``."""

    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group("name") or match.group("bare")
        op, arg = match.group("op"), match.group("arg") or ""
        value = env.get(name)
        empty = not value
        if op in (":-", "-"):
            return arg if (value is None or (op == ":-" and empty)) else value
        if op in (":?", "?"):
            if value is None or (op == ":?" and empty):
                raise MissingVariable(f"{name}: {arg}")
            return value
        if op in (":+", "+"):
            return arg if (value is not None and not (op == ":+" and empty)) else ""
        return value or ""

    return _COMPOSE_VARIABLE.sub(substitute, text)


def interpolate(node: Any, env: Mapping[str, str]) -> Any:
    """A parsed compose document with every string value interpolated, as compose does before using it."""
    if isinstance(node, dict):
        return {key: interpolate(value, env) for key, value in node.items()}
    if isinstance(node, list):
        return [interpolate(item, env) for item in node]
    if isinstance(node, str):
        return interpolate_text(node, env)
    return node


def compose_variables(path: Path) -> set[str]:
    """Names of every variable a compose file references."""
    text = path.read_text(encoding="utf-8")
    return {m.group("name") or m.group("bare") for m in _COMPOSE_VARIABLE.finditer(text) if m.group(0) != "$$"}


def load_yaml_file(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def load_compose(path: Path, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The compose file, ``x-`` extension blocks dropped and variables taken from ``env`` (default .env.example)."""
    document = load_yaml_file(path)
    assert isinstance(document, dict), f"{path}: expected a mapping"
    document = {key: value for key, value in document.items() if not str(key).startswith("x-")}
    return dict(interpolate(document, read_env_file() if env is None else env))


@dataclass(frozen=True)
class PortMapping:
    host_ip: str
    published: int
    target: int
    protocol: str


def parse_port(entry: Any) -> PortMapping:
    """A compose ``ports`` entry, short (``[IP:]HOST:CONTAINER[/proto]``) or long syntax."""
    if isinstance(entry, dict):
        return PortMapping(
            str(entry.get("host_ip", "0.0.0.0")),
            int(entry["published"]),
            int(entry["target"]),
            str(entry.get("protocol", "tcp")),
        )
    text = str(entry)
    text, _, protocol = text.partition("/")
    parts = text.rsplit(":", 2)
    if len(parts) == 3:
        host_ip, published, target = parts
    elif len(parts) == 2:
        host_ip, (published, target) = "0.0.0.0", parts
    else:
        raise ValueError(f"port {entry!r}: publish it as [IP:]HOST:CONTAINER")
    return PortMapping(host_ip, int(published), int(target), protocol or "tcp")


@dataclass(frozen=True)
class VolumeMount:
    source: str
    target: str
    read_only: bool

    @property
    def is_bind(self) -> bool:
        return self.source.startswith((".", "/", "~"))


def parse_volume(entry: Any) -> VolumeMount:
    """A compose ``volumes`` entry of a service, short (``SRC:DST[:ro]``) or long syntax."""
    if isinstance(entry, dict):
        return VolumeMount(str(entry.get("source", "")), str(entry["target"]), bool(entry.get("read_only", False)))
    parts = str(entry).split(":")
    if len(parts) == 2:
        return VolumeMount(parts[0], parts[1], False)
    if len(parts) == 3:
        return VolumeMount(parts[0], parts[1], "ro" in parts[2].split(","))
    raise ValueError(f"volume {entry!r}: expected SOURCE:TARGET[:MODE]")


def service_mounts(service: Mapping[str, Any]) -> list[VolumeMount]:
    return [parse_volume(entry) for entry in service.get("volumes", [])]


def bind_source(compose_path: Path, mount: VolumeMount) -> Path:
    """The host path of a bind mount, resolved as compose does: relative to the compose file's directory."""
    return (compose_path.parent / mount.source).resolve()


def mounted_file(compose_path: Path, service: Mapping[str, Any], target: str) -> Path:
    """The file in deploy/ that ``service`` sees at ``target``, or fail the test."""
    for mount in service_mounts(service):
        if mount.target == target and mount.is_bind:
            return bind_source(compose_path, mount)
    raise AssertionError(f"nothing is mounted at {target}")


def exposed_ports(service: Mapping[str, Any]) -> set[int]:
    """Container ports a service declares: its ``expose`` list and the targets of its ``ports``."""
    ports = {int(str(p).split("/")[0]) for p in service.get("expose", [])}
    ports |= {parse_port(p).target for p in service.get("ports", [])}
    return ports


def image_name(service: Mapping[str, Any]) -> str:
    """``repo/name`` of a service's image, without the tag."""
    image = str(service.get("image", ""))
    return image.rsplit(":", 1)[0] if ":" in image.rsplit("/", 1)[-1] else image


def split_host_port(address: str) -> tuple[str, int]:
    """``host:port`` (optionally with a scheme and a path) into its parts."""
    match = _HOST_PORT.match(address)
    if match is None:
        raise AssertionError(f"{address!r} is not host:port")
    return match.group("host"), int(match.group("port"))


def dockerfile_instructions(path: Path = DOCKERFILE) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments and parser directives dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in path.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        full = (pending + stripped).strip()
        pending = ""
        keyword, _, arguments = full.partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
    assert not pending, f"{path}: ends inside a continued line"
    return instructions


def final_stage(instructions: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The instructions of the last FROM stage, that FROM included."""
    starts = [i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM"]
    assert starts, "no FROM"
    return instructions[starts[-1] :]


def parse_xml(path: Path) -> ET.Element:
    return ET.parse(path).getroot()


def xml_text(element: ET.Element, path: str) -> str:
    """Stripped text of the child at ``path``, or fail naming it."""
    child = element.find(path)
    assert child is not None, f"<{element.tag}> has no {path}"
    return (child.text or "").strip()


def collector_listen_ports(config: Mapping[str, Any]) -> dict[str, int]:
    """Every address a collector config listens on, by its YAML path: receivers, extensions, prometheus exporters."""
    found: dict[str, int] = {}

    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                child = f"{path}.{key}"
                if key == "endpoint" and isinstance(value, str):
                    host, port = split_host_port(value)
                    assert host == "0.0.0.0", f"{child}: {value} must bind 0.0.0.0 inside a container"
                    found[child] = port
                else:
                    walk(value, child)

    for section in ("receivers", "extensions"):
        walk(config.get(section) or {}, section)
    for cid, settings in (config.get("exporters") or {}).items():
        if str(cid).split("/")[0] == "prometheus":
            walk(settings or {}, f"exporters.{cid}")
    return found
