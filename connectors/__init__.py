"""Connectors: each is the exporter of one pipeline and the receiver of another (one subpackage per connector)."""
