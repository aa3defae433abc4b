"""genai_dedup's part in the main process: records of one call matched by response id across worker processes.

With worker processes, each worker sees the traces sharded to it, and the two
records of a call are in one worker whenever they are in one trace. Matching
by response id is for the other case: an app whose instrumentation sends no
``traceparent``, so the proxy's span is in a trace of its own, sharded
anywhere. A worker's genai_dedup matches what it can itself, then notes every
record of a call it left counted that carries a response id; here, those notes
from every worker meet, in the order their batches come back, and the second
record of a pair is marked before the batch goes on to the exporters. The rule
is the processor's: the proxy's record counts unless the app's went on first.

Loop detection has already seen such a batch in its worker; each of the two
records is in its own trace there, where it is the only record of the call.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from opentelemetry.proto.trace.v1.trace_pb2 import TracesData

from collector import semconv
from collector.component import ComponentSettings, MainPart
from collector.expiring import LIMIT, ExpiringMap
from collector.pdata import SpanAttributes
from processors.genai_dedup.config import GenAiDedupConfig
from processors.genai_dedup.generated_metrics import GenaiDedupSelfMetrics
from processors.genai_dedup.records import ResponseIdRecord, hold_record, take_record

PROXY = "proxy"
APP = "app"
HELD_NAMES = {PROXY: "proxy_response_ids", APP: "app_response_ids"}


@dataclass(frozen=True, slots=True)
class CallNote:
    """A record of a call that counts, as a worker noted it: whose (PROXY or APP), response id, model, span."""

    role: str
    response_id: str
    model: str
    trace_id: bytes
    span_id: bytes


class ResponseIdPairs:
    """Matches the CallNotes of every worker by response id; marks the second record of each pair."""

    def __init__(
        self, settings: ComponentSettings, config: GenAiDedupConfig, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._metrics = GenaiDedupSelfMetrics(settings.telemetry)
        self._processor = str(settings.id)
        limit, window = config.max_entries, config.window
        self._held: dict[str, ExpiringMap[str, list[ResponseIdRecord]]] = {
            role: ExpiringMap(limit, window, self._evicted(name), clock) for role, name in HELD_NAMES.items()
        }

    def apply(self, traces: TracesData, notes: list[object]) -> set[bytes]:
        marks: dict[bytes, bytes] = {}  # trace id + span id of a record to mark -> span id of the one that counts
        for note in notes:
            assert isinstance(note, CallNote), note
            other = APP if note.role == PROXY else PROXY
            counted = take_record(self._held[other], note.response_id, note.model)
            if counted is not None:
                marks[note.trace_id + note.span_id] = counted.span_id
                self._metrics.dedup_marked_spans.add(1, processor=self._processor, marked=note.role)
                continue
            record = ResponseIdRecord(note.span_id, note.model)
            hold_record(self._held[note.role], note.response_id, record, self._overflowed)
        for held in self._held.values():
            held.expire()
        if marks:
            _mark(traces, marks)
        return set(marks)

    def _overflowed(self) -> None:
        self._metrics.dedup_evicted_entries.add(1, processor=self._processor, held="response_ids", reason=LIMIT)

    def _evicted(self, held: str) -> Callable[[str, int], None]:
        evicted, processor = self._metrics.dedup_evicted_entries, self._processor
        return lambda reason, count: evicted.add(count, processor=processor, held=held, reason=reason)


def _mark(traces: TracesData, marks: dict[bytes, bytes]) -> None:
    for resource_spans in traces.resource_spans:
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                counted = marks.get(span.trace_id + span.span_id)
                if counted is not None:
                    SpanAttributes(span).set(semconv.CALL_DUPLICATE_OF, counted.hex())


def create_main_part(settings: ComponentSettings, config: GenAiDedupConfig) -> MainPart:
    return ResponseIdPairs(settings, config)
