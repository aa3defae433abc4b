"""Which component types exist: the built-ins, plus third-party ones from entry points.

Third-party packages publish a factory under the entry-point group
``genai_collector.receivers`` (``.processors``, ``.exporters``, ``.connectors``, ``.extensions``);
the entry point's name is the component type. Nothing registers itself by import.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any

from collector.component import ConnectorFactory, ExporterFactory, ExtensionFactory, ProcessorFactory, ReceiverFactory

ENTRY_POINT_PREFIX = "genai_collector"


@dataclass(frozen=True)
class Registry:
    """Factories by component type, one mapping per kind."""

    receivers: Mapping[str, ReceiverFactory[Any]] = field(default_factory=dict)
    processors: Mapping[str, ProcessorFactory[Any]] = field(default_factory=dict)
    exporters: Mapping[str, ExporterFactory[Any]] = field(default_factory=dict)
    extensions: Mapping[str, ExtensionFactory[Any]] = field(default_factory=dict)
    connectors: Mapping[str, ConnectorFactory[Any]] = field(default_factory=dict)

    def kind(self, section: str) -> Mapping[str, Any]:
        """The factories for a config section name: receivers, processors, exporters, connectors, extensions."""
        return dict(getattr(self, section))


def builtin_registry() -> Registry:
    """Every component that ships with genai-collector."""
    # Imported here so that `collector` does not import processors and exporters
    # at module load: dependencies point from them to collector, not back.
    import connectors.forward
    import connectors.genai_evaluation
    import connectors.genai_metrics
    import exporters.alerts
    import exporters.clickhouse
    import exporters.debug
    import exporters.loadbalancing
    import exporters.otlp
    import exporters.otlphttp
    import exporters.prometheus
    import processors.batch
    import processors.genai_cost
    import processors.genai_dedup
    import processors.genai_loop_detection
    import processors.genai_normalize
    import processors.genai_security
    import processors.memory_limiter
    from collector.extensions import admin, api
    from collector.receivers import genai_proxy, otlp

    return Registry(
        receivers={f.type: f for f in (otlp.factory, genai_proxy.factory)},
        processors={
            f.type: f
            for f in (
                processors.memory_limiter.factory,
                processors.batch.factory,
                processors.genai_normalize.factory,
                processors.genai_dedup.factory,
                processors.genai_cost.factory,
                processors.genai_security.factory,
                processors.genai_loop_detection.factory,
            )
        },
        exporters={
            f.type: f
            for f in (
                exporters.alerts.factory,
                exporters.clickhouse.factory,
                exporters.debug.factory,
                exporters.loadbalancing.factory,
                exporters.otlp.factory,
                exporters.otlphttp.factory,
                exporters.prometheus.factory,
            )
        },
        extensions={f.type: f for f in (admin.factory, api.factory)},
        connectors={
            f.type: f
            for f in (connectors.forward.factory, connectors.genai_evaluation.factory, connectors.genai_metrics.factory)
        },
    )


def default_registry() -> Registry:
    """The built-ins plus every installed third-party component."""
    builtin = builtin_registry()
    merged: dict[str, dict[str, Any]] = {}
    for section in ("receivers", "processors", "exporters", "connectors", "extensions"):
        factories = dict(builtin.kind(section))
        for entry in entry_points(group=f"{ENTRY_POINT_PREFIX}.{section}"):
            factories.setdefault(entry.name, entry.load())
        merged[section] = factories
    return Registry(**merged)
