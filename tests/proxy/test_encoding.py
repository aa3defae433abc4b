"""The proxy's span encoder gives exactly what the OpenTelemetry SDK's own OTLP encoder gives."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.trace import Link, NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.trace.span import TraceState

from collector.component import TracesData
from proxy.encoding import spans_to_traces


class Keep(SpanProcessor):
    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []

    def on_end(self, span: ReadableSpan) -> None:
        self.spans.append(span)


def _spans() -> list[ReadableSpan]:
    kept = Keep()
    provider = TracerProvider(resource=Resource.create({"service.name": "genai-proxy", "host.count": 2}))
    provider.add_span_processor(kept)
    tracer = provider.get_tracer("genai_collector.proxy", "1.0")
    other = provider.get_tracer("other.scope")
    remote_parent = SpanContext(
        0x4BF92F3577B34DA6A3CE929D0E0E4736,
        0x00F067AA0BA902B7,
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
        trace_state=TraceState([("vendor", "value")]),
    )
    attributes = {
        "text": "héllo",
        "flag": True,
        "count": 7,
        "ratio": 0.5,
        "reasons": ("stop", "length"),
        "numbers": (1, 2),
    }
    with tracer.start_as_current_span("root", kind=SpanKind.SERVER, attributes=attributes):
        child = tracer.start_span(
            "chat gpt-4o-mini",
            kind=SpanKind.CLIENT,
            links=[Link(remote_parent, {"why": "continues"})],
        )
        child.add_event("first chunk", {"index": 0})
        child.set_status(Status(StatusCode.ERROR, "429"))
        child.end()
    remote_child = other.start_span(
        "from a traceparent", context=trace.set_span_in_context(NonRecordingSpan(remote_parent))
    )
    remote_child.set_status(Status(StatusCode.OK))
    remote_child.end()
    return kept.spans


def test_the_encoding_matches_the_sdks() -> None:
    spans = _spans()
    reference = TracesData()
    reference.resource_spans.extend(encode_spans(spans).resource_spans)

    assert spans_to_traces(spans) == reference
