"""Tempo's query API messages (tempopb): the .proto file and its generated module."""
