"""Jaeger's remote storage v2 messages and services (jaeger.storage.v2): .proto files and their generated modules."""
