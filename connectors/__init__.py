"""Connectors: components that are the exporter of some pipelines and the receiver of others (collector.component)."""
