"""Tests of the connectors, one package per connector."""
