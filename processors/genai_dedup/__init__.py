"""The ``genai_dedup`` processor: one call to a model recorded twice is counted once.

An app instrumented with a GenAI instrumentation records its own span for each
call; when that call goes through the GenAI proxy, which joins the app's trace
through ``traceparent``, the proxy records the same call again, as a child of
the app's span (directly, or under a client span without GenAI attributes, such
as the one an HTTP instrumentation adds, up to ``max_hops`` of them). The rule:
the proxy's record counts, the other is marked ``gen_ai.call.duplicate_of`` =
the span id (hex) of the record that counts. The ClickHouse tables
(``genai_calls`` and its hourly rollup), the Prometheus metrics and loop
detection skip marked spans; ``otel_traces`` keeps both.

Either arrival order is handled:

- the proxy's span first (the usual order: it ends first, and in-process): it
  waits, keyed by its parent, for up to ``window``; the app's span, when it
  passes, is marked;
- the app's span first: it has already gone on unmarked, so when the proxy's
  span arrives within ``window`` the proxy's span is the one marked, and the
  app's record is the one counted.

What is held is bounded (``max_entries`` each, ``window`` in age). A proxy span
whose app span never came within the window is forgotten and counted in
``genai_dedup_unmatched_proxy_calls_total`` (reason ``idle`` or ``limit``): most
are calls from apps without a GenAI span of their own, or calls the proxy joined
to a conversation's trace itself, which is fine; but an app span arriving after
that counts the call a second time. So does an app span that passed before the
client span linking it to the proxy's arrived (reason ``both_passed``). Like loop detection, matching needs both spans
of a trace on one collector (route by trace id with the ``loadbalancing``
exporter behind several).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from opentelemetry.proto.trace.v1.trace_pb2 import Span

from collector import semconv
from collector.component import ComponentSettings, Host, Processor, ProcessorFactory, TracesConsumer, TracesData
from collector.expiring import ExpiringMap
from collector.pdata import SpanAttributes
from processors.genai_dedup.config import GenAiDedupConfig

MARKED = "genai_dedup_marked_spans"
UNMATCHED = "genai_dedup_unmatched_proxy_calls"
EVICTED = "genai_dedup_evicted_entries"
SpanKey = bytes  # trace id + span id


@dataclass(frozen=True)
class _Waiting:
    """A proxy span waiting for the app's span above it: its span id, and how many plain spans it climbed."""

    span_id: bytes
    hops: int


class GenAiDedupProcessor:
    def __init__(
        self,
        settings: ComponentSettings,
        config: GenAiDedupConfig,
        next_consumer: TracesConsumer,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._next = next_consumer
        self._telemetry = settings.telemetry
        self._labels = {"processor": str(settings.id)}
        self._max_hops = config.max_hops
        limit, window = config.max_entries, config.window
        # Proxy calls, keyed by the span above them that may be the app's (their parent, or higher up).
        self._waiting: ExpiringMap[SpanKey, _Waiting] = ExpiringMap(limit, window, self._unmatched, clock)
        # App calls that went on unmarked: a proxy span arriving later under one is the duplicate.
        self._passed: ExpiringMap[SpanKey, bytes] = ExpiringMap(limit, window, self._evicted("app_calls"), clock)
        # Parents of plain client spans (no gen_ai.operation.name), to climb from a proxy span to the app's.
        self._parents: ExpiringMap[SpanKey, SpanKey] = ExpiringMap(limit, window, self._evicted("links"), clock)
        self._telemetry.gauge("genai_dedup_waiting_proxy_calls", self._waiting.__len__, **self._labels)

    async def start(self, host: Host) -> None:
        return None

    async def shutdown(self) -> None:
        return None

    async def consume(self, traces: TracesData) -> None:
        proxy_calls: list[Span] = []
        app_calls: list[Span] = []
        for resource_spans in traces.resource_spans:
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    self._sort(span, proxy_calls, app_calls)
        # Proxy spans first: an app span in the same batch then finds the proxy span waiting for it.
        for span in proxy_calls:
            self._proxy_call(span)
        for span in app_calls:
            self._app_call(span)
        for held in (self._waiting, self._passed, self._parents):
            held.expire()
        await self._next.consume(traces)

    def _sort(self, span: Span, proxy_calls: list[Span], app_calls: list[Span]) -> None:
        operation, from_proxy, marked = "", False, False
        for pair in span.attributes:  # one pass, three keys: most spans are not calls and leave here
            key = pair.key
            if key == semconv.OPERATION_NAME:
                operation = pair.value.string_value
            elif key == semconv.PROXY_UPSTREAM:
                from_proxy = True
            elif key == semconv.CALL_DUPLICATE_OF:
                marked = True
        if not operation:
            if span.kind == Span.SPAN_KIND_CLIENT and span.parent_span_id:
                self._link(span)
            return
        if semconv.is_model_call(operation) and not marked:
            (proxy_calls if from_proxy else app_calls).append(span)

    def _link(self, span: Span) -> None:
        """A plain client span (an HTTP instrumentation's, say) that may sit between an app's call and the proxy's."""
        key, parent = span.trace_id + span.span_id, span.trace_id + span.parent_span_id
        self._parents.put(key, parent)
        waiting = self._waiting.pop(key)
        if waiting is not None:  # a proxy span waits under it: it waits for the span above now
            self._climb(waiting, parent)

    def _proxy_call(self, span: Span) -> None:
        if not span.parent_span_id:
            return  # no traceparent came with the call: no app span above it
        key, hops = span.trace_id + span.parent_span_id, 0
        while (parent := self._parents.get(key)) is not None and hops < self._max_hops:
            key, hops = parent, hops + 1
        self._wait_or_match(span, key, hops)

    def _wait_or_match(self, span: Span, key: SpanKey, hops: int) -> None:
        app_span_id = self._passed.pop(key)
        if app_span_id is not None:  # the app's record went on first: the proxy's is the second
            self._mark(span, app_span_id, "proxy")
        else:
            self._waiting.put(key, _Waiting(span.span_id, hops))

    def _climb(self, waiting: _Waiting, key: SpanKey) -> None:
        if waiting.hops >= self._max_hops:
            self._telemetry.add(UNMATCHED, 1, reason="hops", **self._labels)
        elif self._passed.pop(key) is not None:
            # Both records went on before the link between them arrived: neither can be marked any more.
            self._telemetry.add(UNMATCHED, 1, reason="both_passed", **self._labels)
        else:
            self._waiting.put(key, _Waiting(waiting.span_id, waiting.hops + 1))

    def _app_call(self, span: Span) -> None:
        key = span.trace_id + span.span_id
        waiting = self._waiting.pop(key)
        if waiting is not None:
            self._mark(span, waiting.span_id, "app")
        else:  # its proxy span may still come
            self._passed.put(key, span.span_id)

    def _mark(self, span: Span, counted_span_id: bytes, which: str) -> None:
        SpanAttributes(span).set(semconv.CALL_DUPLICATE_OF, counted_span_id.hex())
        self._telemetry.add(MARKED, 1, marked=which, **self._labels)

    def _unmatched(self, reason: str, count: int) -> None:
        self._telemetry.add(UNMATCHED, count, reason=reason, **self._labels)

    def _evicted(self, held: str) -> Callable[[str, int], None]:
        return lambda reason, count: self._telemetry.add(EVICTED, count, held=held, reason=reason, **self._labels)


def create_processor(settings: ComponentSettings, config: GenAiDedupConfig, next_consumer: TracesConsumer) -> Processor:
    return GenAiDedupProcessor(settings, config, next_consumer)


factory = ProcessorFactory(type="genai_dedup", config_type=GenAiDedupConfig, create=create_processor)
