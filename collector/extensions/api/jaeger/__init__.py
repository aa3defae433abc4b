"""Jaeger-compatible reads of the store: the UI's HTTP JSON API, api_v3, and the Remote Storage API v2 over gRPC."""
