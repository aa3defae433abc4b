"""Loading, expanding and decoding otel-config.yaml."""
