"""Processors: one module per processor."""
