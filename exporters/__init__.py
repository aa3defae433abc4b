"""Exporters: where spans leave the collector (one module or package each)."""
