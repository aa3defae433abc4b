"""The ``genai_dedup`` processor: one call to a model recorded twice is counted once.

An app instrumented with a GenAI instrumentation records its own span for each
call; when that call goes through the GenAI proxy, the proxy records the same
call again; and some apps record a call twice themselves (a framework's model
call span around its client library's). Two spans are taken for one call when:

- the proxy's span is under the app's inference span through ``traceparent``
  (directly, or under client spans without GenAI attributes, such as the one an
  HTTP instrumentation adds, up to ``max_hops`` of them);
- the proxy's span and an app's inference span carry the same provider
  response id (``gen_ai.response.id``) and, when both name one, the same
  request model: for instrumentations that do not make their span current
  while the request is sent, so no ``traceparent`` reaches the proxy;
- an app's inference span is the direct parent of another inference span (a
  framework's model call around its client library's, as Google ADK's around
  the anthropic SDK's): the same call seen by two layers.

The rule: the proxy's record counts, else the innermost app record; every
other record is marked ``gen_ai.call.duplicate_of`` = the span id (hex) of the
record that counts. The ClickHouse tables (``genai_calls`` and its hourly
rollup), the Prometheus metrics and loop detection skip marked spans;
``otel_traces`` keeps them all.

With worker processes (``service.workers``), traces are sharded across them:
matching by trace happens in each worker, and matching by response id across
workers in the processor's part in the main process (across_workers.py).

Either arrival order is handled: the record that comes first waits (the proxy's
span keyed by the span above it and by its response id; the app's keyed by its
span, its response id and its parent) for up to ``window``; the one that comes
second is marked. So when the app's span passes before the proxy's, the proxy's
is the one marked and the app's counts; and when an enclosing app span passes
before the span inside it (exporters that send parents first), the inner one
is marked.

What is held is bounded (``max_entries`` each, ``window`` in age), and whatever
is forgotten unmatched is counted (``genai_dedup_unmatched_proxy_calls_total``,
``genai_dedup_evicted_entries_total``): most are calls from apps without a
GenAI span of their own, or apps not using the proxy, which need no match; but a
second record arriving after that counts the call a second time. So does an app
span that passed before the client span linking it to the proxy's arrived
(reason ``both_passed``). Like loop detection, matching by trace needs both
spans of a trace on one collector (route by trace id with the ``loadbalancing``
exporter behind several); matching by response id needs both on one collector
too, which routing by trace id does not give when the proxy's span is in a trace
of its own.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from opentelemetry.proto.trace.v1.trace_pb2 import Span

from collector import semconv
from collector.component import ComponentSettings, Host, Processor, ProcessorFactory, TracesConsumer, WorkerNotes
from collector.expiring import LIMIT, ExpiringMap
from processors.genai_dedup.across_workers import APP, PROXY, CallNote, create_main_part
from processors.genai_dedup.config import GenAiDedupConfig
from processors.genai_dedup.generated_metrics import GenaiDedupSelfMetrics
from processors.genai_dedup.records import hold_record, take_record
from processors.span_view import BatchView, SpanView, ViewProcessor

SpanKey = bytes  # trace id + span id


@dataclass(frozen=True, slots=True)
class _CallSpan:
    """A span that records a call to a model, with what matching reads from it."""

    view: SpanView
    response_id: str
    model: str

    @property
    def span(self) -> Span:
        return self.view.span

    @property
    def key(self) -> SpanKey:
        return self.span.trace_id + self.span.span_id


@dataclass(slots=True)
class _Waiting:
    """A proxy span waiting for an app's record of its call."""

    span_id: bytes
    key: SpanKey | None  # the span above it that may be the app's (None: it came with no traceparent)
    hops: int  # client spans without GenAI attributes climbed to get there
    response_id: str
    model: str


@dataclass(frozen=True, slots=True)
class _Passed:
    """An app's record of a call that went on: a proxy span or an inner record arriving later is the duplicate."""

    counted: bytes  # span id of the record that counts: this one, or the one it was marked a duplicate of
    key: SpanKey
    response_id: str  # set only while it counts itself: a proxy span with this id would be its duplicate
    model: str


Held = TypeVar("Held", _Waiting, _Passed)


class GenAiDedupProcessor(ViewProcessor):
    def __init__(
        self,
        settings: ComponentSettings,
        config: GenAiDedupConfig,
        next_consumer: TracesConsumer,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(next_consumer)
        self._id = settings.id
        self._notes: WorkerNotes | None = None
        self._marked: set[SpanKey] = set()  # marked in the batch being edited
        # The calls of the batch being edited, matched once all are known.
        self._proxy_calls: list[_CallSpan] = []
        self._app_calls: list[_CallSpan] = []
        self._metrics = GenaiDedupSelfMetrics(settings.telemetry)
        self._processor = str(settings.id)
        self._max_hops = config.max_hops
        limit, window = config.max_entries, config.window
        # Proxy calls, keyed by the span above them that may be the app's (their parent, or higher up)...
        self._waiting: ExpiringMap[SpanKey, _Waiting] = ExpiringMap(limit, window, self._unmatched, clock)
        # ... and by their response id.
        self._waiting_by_id: ExpiringMap[str, list[_Waiting]] = ExpiringMap(
            limit, window, self._evicted("proxy_response_ids"), clock
        )
        # App calls that went on: a proxy span arriving later under one, or with its response id, is the duplicate.
        self._passed: ExpiringMap[SpanKey, _Passed] = ExpiringMap(limit, window, self._evicted("app_calls"), clock)
        self._passed_by_id: ExpiringMap[str, list[_Passed]] = ExpiringMap(
            limit, window, self._evicted("app_response_ids"), clock
        )
        # The parents of app calls that went on: an app call arriving as one of them encloses a record of its own
        # call. Most parents are agent spans, never calls: forgetting those is the rule, only overflow is counted.
        self._enclosing: ExpiringMap[SpanKey, bytes] = ExpiringMap(limit, window, self._overflow("enclosing"), clock)
        # Parents of plain client spans (no gen_ai.operation.name), to climb from a proxy span to the app's.
        self._parents: ExpiringMap[SpanKey, SpanKey] = ExpiringMap(limit, window, self._evicted("links"), clock)
        self._metrics.dedup_waiting_proxy_calls.watch(self._waiting.__len__, processor=self._processor)

    async def start(self, host: Host) -> None:
        await super().start(host)
        # In a worker process: what this one cannot match by response id is matched across workers.
        self._notes = host if isinstance(host, WorkerNotes) else None

    def edit(self, view: SpanView) -> None:
        texts = view.texts
        operation = texts.get(semconv.OPERATION_NAME)
        if not operation:  # most spans are not calls and leave here
            span = view.span
            if span.kind == Span.SPAN_KIND_CLIENT and span.parent_span_id:
                self._link(span)
            return
        if operation in semconv.MODEL_CALL_OPERATIONS and semconv.CALL_DUPLICATE_OF not in texts:
            call = _CallSpan(view, texts.get(semconv.RESPONSE_ID, ""), texts.get(semconv.REQUEST_MODEL, ""))
            (self._proxy_calls if semconv.PROXY_UPSTREAM in texts else self._app_calls).append(call)

    def finish(self, batch: BatchView) -> None:
        proxy_calls, app_calls = self._proxy_calls, self._app_calls
        self._proxy_calls, self._app_calls = [], []
        # Proxy spans first: an app span in the same batch then finds the proxy span waiting for it.
        for call in proxy_calls:
            self._proxy_call(call)
        for call in app_calls:
            self._app_call(call)
        if self._notes is not None:
            self._note_counted(proxy_calls, PROXY)
            self._note_counted(app_calls, APP)
        self._marked.clear()
        for held in (
            self._waiting,
            self._waiting_by_id,
            self._passed,
            self._passed_by_id,
            self._enclosing,
            self._parents,
        ):
            held.expire()

    def _link(self, span: Span) -> None:
        """A plain client span (an HTTP instrumentation's, say) that may sit between an app's call and the proxy's."""
        key, parent = span.trace_id + span.span_id, span.trace_id + span.parent_span_id
        self._parents.put(key, parent)
        waiting = self._waiting.pop(key)
        if waiting is not None:  # a proxy span waits under it: it waits for the span above now
            self._climb(waiting, parent)

    def _climb(self, waiting: _Waiting, key: SpanKey) -> None:
        if waiting.hops >= self._max_hops:  # it may still be matched by its response id
            self._metrics.dedup_unmatched_proxy_calls.add(1, processor=self._processor, reason="hops")
        elif (passed := self._passed.pop(key)) is not None:
            # Both records went on before the link between them arrived: neither can be marked any more.
            self._release_response_id(self._passed_by_id, passed)
            self._release_response_id(self._waiting_by_id, waiting)
            self._metrics.dedup_unmatched_proxy_calls.add(1, processor=self._processor, reason="both_passed")
        else:
            waiting.key, waiting.hops = key, waiting.hops + 1
            self._waiting.put(key, waiting)

    def _proxy_call(self, call: _CallSpan) -> None:
        span = call.span
        key: SpanKey | None = None
        hops = 0
        if span.parent_span_id:
            key = span.trace_id + span.parent_span_id
            while (parent := self._parents.get(key)) is not None and hops < self._max_hops:
                key, hops = parent, hops + 1
            passed = self._passed.pop(key)
            if passed is not None:  # the app's record went on first: the proxy's is the second
                self._release_response_id(self._passed_by_id, passed)
                self._mark(call.view, passed.counted, "proxy")
                return
        if call.response_id:
            passed = self._take(self._passed_by_id, call.response_id, call.model)
            if passed is not None:
                if self._passed.get(passed.key) is passed:
                    self._passed.pop(passed.key)
                self._mark(call.view, passed.counted, "proxy")
                return
        waiting = _Waiting(span.span_id, key, hops, call.response_id, call.model)
        if key is not None:
            self._waiting.put(key, waiting)
        if call.response_id:
            self._hold(self._waiting_by_id, call.response_id, waiting)

    def _app_call(self, call: _CallSpan) -> None:
        span, key = call.span, call.key
        counted = self._counted_record(call)
        if counted is not None:
            self._mark(call.view, counted, "app")
        # Counted or not, what arrives later and belongs to this call is matched to the record that counts.
        passed = _Passed(counted or span.span_id, key, call.response_id if counted is None else "", call.model)
        self._passed.put(key, passed)
        if passed.response_id:
            self._hold(self._passed_by_id, passed.response_id, passed)
        if span.parent_span_id:
            self._enclosing.put(span.trace_id + span.parent_span_id, passed.counted)

    def _counted_record(self, call: _CallSpan) -> bytes | None:
        """The span id of another record of this app span's call that counts, if one went on before; else None."""
        span = call.span
        waiting = self._waiting.pop(call.key)
        if waiting is not None:  # the proxy's span, under this one
            self._release_response_id(self._waiting_by_id, waiting)
            return waiting.span_id
        inner = self._enclosing.pop(call.key)
        if inner is not None:  # a record of the call inside this span went on first
            return inner
        if call.response_id:
            waiting = self._take(self._waiting_by_id, call.response_id, call.model)
            if waiting is not None:  # the proxy's span with this call's response id
                if waiting.key is not None and self._waiting.get(waiting.key) is waiting:
                    self._waiting.pop(waiting.key)
                return waiting.span_id
        if span.parent_span_id:
            outer = self._passed.get(span.trace_id + span.parent_span_id)
            if outer is not None:  # the span enclosing this one recorded the call and went on first
                return outer.counted
        return None

    def _take(self, held: ExpiringMap[str, list[Held]], response_id: str, model: str) -> Held | None:
        return take_record(held, response_id, model)

    def _hold(self, held: ExpiringMap[str, list[Held]], response_id: str, record: Held) -> None:
        hold_record(held, response_id, record, self._overflowed)

    def _overflowed(self) -> None:
        self._metrics.dedup_evicted_entries.add(1, processor=self._processor, held="response_ids", reason=LIMIT)

    def _note_counted(self, calls: list[_CallSpan], role: str) -> None:
        """Note, for the part in the main process, every record left counting that carries a response id."""
        assert self._notes is not None
        for call in calls:
            if call.response_id and call.key not in self._marked:
                span = call.span
                self._notes.note(self._id, CallNote(role, call.response_id, call.model, span.trace_id, span.span_id))

    def _release_response_id(self, held: ExpiringMap[str, list[Held]], record: Held) -> None:
        """Forget ``record`` under its response id: it was matched, or can be no more, through its other key."""
        records = held.get(record.response_id) if record.response_id else None
        if records is None:
            return
        remaining = [r for r in records if r is not record]
        if remaining:
            records[:] = remaining
        else:
            held.pop(record.response_id)

    def _mark(self, view: SpanView, counted_span_id: bytes, which: str) -> None:
        view.set(semconv.CALL_DUPLICATE_OF, counted_span_id.hex())
        self._marked.add(view.span.trace_id + view.span.span_id)
        self._metrics.dedup_marked_spans.add(1, processor=self._processor, marked=which)

    def _unmatched(self, reason: str, count: int) -> None:
        self._metrics.dedup_unmatched_proxy_calls.add(count, processor=self._processor, reason=reason)

    def _evicted(self, held: str) -> Callable[[str, int], None]:
        evicted, processor = self._metrics.dedup_evicted_entries, self._processor
        return lambda reason, count: evicted.add(count, processor=processor, held=held, reason=reason)

    def _overflow(self, held: str) -> Callable[[str, int], None]:
        evicted = self._evicted(held)
        return lambda reason, count: evicted(reason, count) if reason == LIMIT else None


def create_processor(settings: ComponentSettings, config: GenAiDedupConfig, next_consumer: TracesConsumer) -> Processor:
    return GenAiDedupProcessor(settings, config, next_consumer)


factory = ProcessorFactory(
    type="genai_dedup",
    config_type=GenAiDedupConfig,
    create=create_processor,
    runs_in="worker",
    create_main_part=create_main_part,
)
