"""Receivers: where spans enter the collector."""
