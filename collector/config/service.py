"""The whole collector configuration: components by ID, the service's pipelines and extensions.

``load_config`` reads otel-config.yaml, expands ``${env:...}``, decodes every
component's settings with its factory's config type and checks the pipelines
(``traces``, ``logs``, ``metrics`` and named ones such as ``logs/audit``) reference
only defined components that support the pipeline's signal. A connector
(``connectors:``) is listed as an exporter of some pipelines and a receiver of
others (collector.config.connectors checks how). Every problem found is
reported at once.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from collector.component import ComponentID, Listener, listeners_of
from collector.config.connectors import connector_problems
from collector.config.decode import decode
from collector.config.loader import expand_env, load_yaml
from collector.config.problems import ConfigError, ConfigProblem, join_path
from collector.config.types import show_value
from collector.httpserver import ListenError, bind_socket
from collector.registry import Registry
from collector.runtime.plan import ComponentStep, placement_problems
from collector.signals import SIGNALS, Signal

SECTIONS = ("receivers", "processors", "exporters", "connectors", "extensions")
SECTION_KIND = {
    "receivers": "receiver",
    "processors": "processor",
    "exporters": "exporter",
    "connectors": "connector",
    "extensions": "extension",
}
# The pipeline lists a connector may appear in, besides the receivers and exporters it names.
CONNECTOR_SIDES = ("receivers", "exporters")
DEFAULT_LOG_LEVEL = "info"
# Processes that run the pipelines' processors: "auto" is one per usable core; 0 runs them in the main
# process (for embedding and tests; it puts their CPU time on the event loop that serves every listener).
AUTO_WORKERS = "auto"
DEFAULT_WORKERS: str | int = AUTO_WORKERS
LogLevel = Literal["debug", "info", "warn", "error"]


@dataclass(frozen=True)
class ComponentConfig:
    """One configured component: its ID, its decoded settings and where they are in the YAML."""

    id: ComponentID
    section: str
    config: Any
    path: str


@dataclass(frozen=True)
class PipelineConfig:
    name: str  # as in the YAML: the signal, or signal/name
    receivers: tuple[ComponentID, ...]
    processors: tuple[ComponentID, ...]
    exporters: tuple[ComponentID, ...]
    signal: Signal = "traces"


@dataclass(frozen=True)
class LogsTelemetry:
    level: LogLevel = "info"


@dataclass(frozen=True)
class TelemetryConfig:
    logs: LogsTelemetry = field(default_factory=LogsTelemetry)


@dataclass(frozen=True)
class CollectorConfig:
    components: Mapping[str, Mapping[ComponentID, ComponentConfig]]
    pipelines: Mapping[str, PipelineConfig]
    extensions: tuple[ComponentID, ...]
    telemetry: TelemetryConfig
    workers: int | None = None  # None: one per usable core (service.workers: auto)

    def used(self, section: str, signal: Signal | None = None) -> list[ComponentConfig]:
        """The components of ``section`` that the service actually runs (in ``signal``'s pipelines, if given),
        in a stable order. A connector is in the receivers and exporters lists of pipelines, but only in the
        ``connectors`` section here."""
        if section == "extensions":
            ids = list(self.extensions)
        else:
            ids = []
            lists = CONNECTOR_SIDES if section == "connectors" else (section,)
            for pipeline in self.pipelines.values():
                if signal is not None and pipeline.signal != signal:
                    continue
                for cid in (cid for name in lists for cid in getattr(pipeline, name)):
                    if cid in self.components[section] and cid not in ids:
                        ids.append(cid)
        return [self.components[section][cid] for cid in ids]

    def listeners(self) -> list[Listener]:
        """Every socket the running service will bind."""
        return [
            listener
            for section in SECTIONS
            for component in self.used(section)
            for listener in listeners_of(component.config, component.path)
        ]

    @property
    def log_level(self) -> int:
        return logging.getLevelName(self.telemetry.logs.level.upper().replace("WARN", "WARNING"))  # type: ignore[no-any-return]


def load_config(path: Path, registry: Registry, environ: Mapping[str, str] | None = None) -> CollectorConfig:
    """Read, expand and decode the config file at ``path``; raise ConfigError listing every problem."""
    document = expand_env(load_yaml(path), environ)
    return parse_config(document, registry)


def parse_config(document: Mapping[str, Any], registry: Registry) -> CollectorConfig:
    problems: list[ConfigProblem] = []
    for key in document:
        if key not in (*SECTIONS, "service"):
            problems.append(
                ConfigProblem(str(key), "unknown key; expected one of " + ", ".join((*SECTIONS, "service")))
            )
    components = {section: _parse_section(section, document.get(section), registry, problems) for section in SECTIONS}
    # IDs present in the YAML, valid or not, so a broken component is reported once, not again per pipeline.
    declared = {section: _declared_ids(document.get(section)) for section in SECTIONS}
    service = document.get("service")
    pipelines: dict[str, PipelineConfig] = {}
    extensions: tuple[ComponentID, ...] = ()
    telemetry = TelemetryConfig()
    workers: int | None = None
    if not isinstance(service, dict):
        problems.append(ConfigProblem("service", "is required, with at least one pipeline"))
    else:
        for key in service:
            if key not in ("pipelines", "extensions", "telemetry", "workers"):
                problems.append(
                    ConfigProblem(
                        f"service.{key}", "unknown key; expected one of extensions, pipelines, telemetry, workers"
                    )
                )
        workers = _parse_workers(service.get("workers", DEFAULT_WORKERS), problems)
        pipelines = _parse_pipelines(service.get("pipelines"), declared, registry, problems)
        extensions = _parse_id_list("service.extensions", service.get("extensions"), "extensions", declared, problems)
        try:
            telemetry = decode(TelemetryConfig, service.get("telemetry"), "service.telemetry")
        except ConfigError as exc:
            problems.extend(exc.problems)
    connectors = {cid: registry.connectors[cid.type] for cid in components["connectors"]}
    problems.extend(connector_problems(pipelines, connectors, declared))
    problems.extend(_placement_problems(pipelines, components, registry))
    problems.extend(_settings_per_signal_problems(pipelines, components))
    if problems:
        raise ConfigError(problems)
    return CollectorConfig(components, pipelines, extensions, telemetry, workers)


def _placement_problems(
    pipelines: Mapping[str, PipelineConfig],
    components: Mapping[str, Mapping[ComponentID, ComponentConfig]],
    registry: Registry,
) -> list[ConfigProblem]:
    """A processor that must run in the main process between two that run in workers (collector.runtime.plan).

    Only traces are sharded to the workers; the processors of logs and metrics pipelines run in the main process.
    """
    steps: dict[str, list[ComponentStep]] = {}
    for name, pipeline in pipelines.items():
        if pipeline.signal == "traces" and all(cid in components["processors"] for cid in pipeline.processors):
            steps[name] = [
                ComponentStep(cid, components["processors"][cid].config, registry.processors[cid.type])
                for cid in pipeline.processors
            ]
    return placement_problems(steps, lambda name: f"service.pipelines.{name}.processors")


def _settings_per_signal_problems(
    pipelines: Mapping[str, PipelineConfig], components: Mapping[str, Mapping[ComponentID, ComponentConfig]]
) -> list[ConfigProblem]:
    """Settings a component needs for a signal it is used in (``signal_problems(signal)`` on its config, if it has
    one: the otlphttp exporter's URL for logs, say), once per component and signal."""
    problems: list[ConfigProblem] = []
    seen: set[tuple[str, ComponentID, Signal]] = set()
    for pipeline in pipelines.values():
        for section in ("receivers", "processors", "exporters"):
            for cid in getattr(pipeline, section):
                component = components[section].get(cid)
                check = getattr(component.config, "signal_problems", None) if component is not None else None
                if component is None or check is None or (section, cid, pipeline.signal) in seen:
                    continue
                seen.add((section, cid, pipeline.signal))
                problems.extend(
                    ConfigProblem(join_path(component.path, key), text) for key, text in check(pipeline.signal)
                )
    return problems


def _parse_workers(raw: Any, problems: list[ConfigProblem]) -> int | None:
    """``auto`` (None: one per usable core) or a number of worker processes, 0 for none."""
    if raw == AUTO_WORKERS:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < 0:
        problems.append(ConfigProblem("service.workers", f"expected auto or a number from 0, got {show_value(raw)}"))
        return None
    return raw


def check_listeners(config: CollectorConfig) -> None:
    """Bind every listener, all at once, so a taken or overlapping port is a config problem, not a crash later."""
    problems: list[ConfigProblem] = []
    seen: dict[tuple[str, int], str] = {}
    # Every socket stays open until all are bound: 0.0.0.0:P and 127.0.0.1:P
    # each bind alone, but not together, as the running service needs them.
    with contextlib.ExitStack() as held:
        for listener in config.listeners():
            key = (listener.endpoint.host, listener.endpoint.port)
            if listener.endpoint.port != 0 and key in seen:
                problems.append(ConfigProblem(listener.path, f"{listener.endpoint} is also used by {seen[key]}"))
                continue
            seen[key] = listener.path
            if listener.endpoint.port == 0:
                continue
            try:
                held.enter_context(bind_socket(listener.endpoint))
            except ListenError as exc:
                problems.append(ConfigProblem(listener.path, str(exc)))
    if problems:
        raise ConfigError(problems)


def _parse_section(
    section: str, raw: Any, registry: Registry, problems: list[ConfigProblem]
) -> dict[ComponentID, ComponentConfig]:
    parsed: dict[ComponentID, ComponentConfig] = {}
    if raw is None:
        return parsed
    if not isinstance(raw, dict):
        problems.append(ConfigProblem(section, f"expected a mapping of components, got {show_value(raw)}"))
        return parsed
    factories = registry.kind(section)
    for key, settings in raw.items():
        path = join_path(section, str(key))
        try:
            cid = ComponentID.parse(str(key))
        except ValueError as exc:
            problems.append(ConfigProblem(path, str(exc)))
            continue
        factory = factories.get(cid.type)
        if factory is None:
            known = ", ".join(sorted(factories)) or "none"
            problems.append(ConfigProblem(path, f'unknown {SECTION_KIND[section]} type "{cid.type}"; known: {known}'))
            continue
        try:
            config = decode(factory.config_type, settings, path)
        except ConfigError as exc:
            problems.extend(exc.problems)
            continue
        parsed[cid] = ComponentConfig(cid, section, config, path)
    return parsed


def _declared_ids(raw: Any) -> set[ComponentID]:
    ids: set[ComponentID] = set()
    if isinstance(raw, dict):
        for key in raw:
            try:
                ids.add(ComponentID.parse(str(key)))
            except ValueError:
                pass
    return ids


def _parse_pipelines(
    raw: Any, declared: Mapping[str, set[ComponentID]], registry: Registry, problems: list[ConfigProblem]
) -> dict[str, PipelineConfig]:
    pipelines: dict[str, PipelineConfig] = {}
    if not isinstance(raw, dict) or not raw:
        problems.append(ConfigProblem("service.pipelines", "define at least one pipeline (traces, logs or metrics)"))
        return pipelines
    for name, body in raw.items():
        path = f"service.pipelines.{name}"
        try:
            pipeline_id = ComponentID.parse(str(name))
        except ValueError:
            problems.append(ConfigProblem(path, f'invalid pipeline id "{name}"; expected signal or signal/name'))
            continue
        if pipeline_id.type not in SIGNALS:
            problems.append(
                ConfigProblem(path, f'unknown signal "{pipeline_id.type}"; expected one of {", ".join(SIGNALS)}')
            )
            continue
        signal: Signal = pipeline_id.type
        if not isinstance(body, dict):
            problems.append(ConfigProblem(path, "expected a mapping with receivers, processors and exporters"))
            continue
        for key in body:
            if key not in ("receivers", "processors", "exporters"):
                problems.append(
                    ConfigProblem(f"{path}.{key}", "unknown key; expected one of exporters, processors, receivers")
                )
        ids = {
            section: _parse_id_list(f"{path}.{section}", body.get(section), section, declared, problems)
            for section in ("receivers", "processors", "exporters")
        }
        problems.extend(_signal_problems(path, body, signal, registry, declared["connectors"]))
        # An empty list is reported by _parse_id_list; absent or empty-valued keys here.
        if body.get("receivers") is None:
            problems.append(ConfigProblem(f"{path}.receivers", "at least one receiver is required"))
        if body.get("exporters") is None:
            problems.append(ConfigProblem(f"{path}.exporters", "at least one exporter is required"))
        pipelines[str(name)] = PipelineConfig(str(name), ids["receivers"], ids["processors"], ids["exporters"], signal)
    return pipelines


def _signal_problems(
    path: str, body: Mapping[str, Any], signal: Signal, registry: Registry, connectors: set[ComponentID]
) -> list[ConfigProblem]:
    """One line per component a pipeline of ``signal`` lists whose type does not support that signal (connectors
    are checked by collector.config.connectors); an exporter that served the signal before says what replaces it."""
    problems = []
    for section in ("receivers", "processors", "exporters"):
        items = body.get(section)
        if not isinstance(items, list):
            continue
        factories = registry.kind(section)
        for i, item in enumerate(items):
            if not isinstance(item, str) or (section in CONNECTOR_SIDES and _is_connector(item, connectors)):
                continue
            factory = factories.get(item.partition("/")[0])
            if factory is not None and not factory.supports(signal):
                moved = getattr(factory, "moved", {}).get(signal)
                text = f"{item} does not support {signal}" + (f"; {moved}" if moved else "")
                problems.append(ConfigProblem(f"{path}.{section}[{i}]", text))
    return problems


def _is_connector(item: str, connectors: set[ComponentID]) -> bool:
    try:
        return ComponentID.parse(item) in connectors
    except ValueError:
        return False


def _parse_id_list(
    path: str,
    raw: Any,
    section: str,
    declared: Mapping[str, set[ComponentID]],
    problems: list[ConfigProblem],
) -> tuple[ComponentID, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        problems.append(ConfigProblem(path, f"expected a list of component IDs, got {show_value(raw)}"))
        return ()
    if not raw and section in ("receivers", "exporters"):
        problems.append(ConfigProblem(path, f"at least one {SECTION_KIND[section]} is required"))
    ids: list[ComponentID] = []
    for i, item in enumerate(raw):
        item_path = f"{path}[{i}]"
        if not isinstance(item, str):
            problems.append(ConfigProblem(item_path, f"expected a component ID like otlp, got {show_value(item)}"))
            continue
        try:
            cid = ComponentID.parse(item)
        except ValueError as exc:
            problems.append(ConfigProblem(item_path, str(exc)))
            continue
        if cid in ids:
            problems.append(ConfigProblem(item_path, f'"{cid}" is listed twice'))
            continue
        if cid not in declared[section] and not (section in CONNECTOR_SIDES and cid in declared["connectors"]):
            problems.append(
                ConfigProblem(item_path, f'{SECTION_KIND[section]} "{cid}" is not defined in the {section} section')
            )
            continue
        ids.append(cid)
    return tuple(ids)
