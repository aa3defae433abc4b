"""Findings raised after every span of their trace has passed: each rides on a span of its own.

Some exporters send an agent's span before the steps inside it (LangSmith's
OpenTelemetry export sends a trace's runs parents first). A tool call asked for
in the agent's last step can then be judged never run only once the trace's
spans have stopped arriving, when the span that asked has long gone on. Such a
finding is carried by a new span in the same trace, a child of the span that
asked, named after the finding event, under the resource of the span that asked.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import Span, TracesData

from collector.findings import FINDING_EVENT
from processors.genai_loop_detection.run import Run

SCOPE_NAME = "genai_collector.genai_loop_detection"
SPAN_ID_BYTES = 8


@dataclass(frozen=True)
class LateRun:
    """A trace run with calls to judge once its spans stop arriving, and the resource its spans came from."""

    run: Run
    resource: Resource


def finding_span(traces: TracesData, resource: Resource, trace_id: bytes, asked_by: bytes, time: int) -> Span:
    """A new span in ``traces``, at ``time``, for findings about span ``asked_by`` of ``trace_id`` (events to add)."""
    resource_spans = traces.resource_spans.add()
    resource_spans.resource.CopyFrom(resource)
    scope_spans = resource_spans.scope_spans.add()
    scope_spans.scope.name = SCOPE_NAME
    return scope_spans.spans.add(
        trace_id=trace_id,
        span_id=os.urandom(SPAN_ID_BYTES),
        parent_span_id=asked_by,
        name=FINDING_EVENT,
        kind=Span.SPAN_KIND_INTERNAL,
        start_time_unix_nano=time,
        end_time_unix_nano=time,
    )
