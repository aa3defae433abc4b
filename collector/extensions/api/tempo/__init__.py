"""Tempo-compatible reads of the store: the HTTP query API Grafana's Tempo data source calls, and a TraceQL subset."""
