"""The ``loadbalancing`` exporter: trace-affine routing to a second tier of collectors.

Every span of a trace goes to the same backend, chosen by consistent hashing of
the trace id, so a second-tier collector sees whole traces (for tail sampling,
loop detection and the like) and adding or removing a backend moves only about
1/n of the traces.
"""

from __future__ import annotations

from collector.component import ComponentSettings, Exporter, ExporterFactory
from exporters.loadbalancing.config import LoadBalancingConfig
from exporters.loadbalancing.exporter import LoadBalancingExporter


def create_exporter(settings: ComponentSettings, config: LoadBalancingConfig) -> Exporter:
    return LoadBalancingExporter(settings, config)


factory = ExporterFactory(type="loadbalancing", config_type=LoadBalancingConfig, create=create_exporter)
