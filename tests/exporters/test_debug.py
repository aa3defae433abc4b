"""The debug exporter prints what reaches it at the chosen verbosity."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from collector.component import ComponentSettings
from exporters.debug import DebugConfig, DebugExporter
from tests.conftest import make_traces


@pytest.mark.parametrize(("verbosity", "lines"), [("basic", 1), ("normal", 3), ("detailed", 2)])
def test_verbosity_levels(
    verbosity: str, lines: int, make_settings: Callable[..., ComponentSettings], caplog: pytest.LogCaptureFixture
) -> None:
    exporter = DebugExporter(make_settings("debug"), DebugConfig(verbosity=verbosity))  # type: ignore[arg-type]
    traces = make_traces(2, name="chat gpt-4o")
    with caplog.at_level("INFO"):
        asyncio.run(exporter.consume(traces))
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == lines
    assert messages[0] == "Traces: 1 resource spans, 2 spans"
    span = traces.resource_spans[0].scope_spans[0].spans[0]
    if verbosity == "normal":
        assert messages[1] == f"  chat gpt-4o trace_id={span.trace_id.hex()} span_id={span.span_id.hex()}"
    if verbosity == "detailed":
        assert 'name: "chat gpt-4o"' in messages[1] and 'string_value: "test-service"' in messages[1]
