"""What the workers said of a batch, for the exporters in the main process while they consume it.

The worker stage annotates the batch it hands on: the notes of the exporters'
worker parts (collector.component.WorkerPart), the spans the processors'
main parts changed after those notes were taken, and the batch's encoding
(collector.pdata.encode) when the bytes the workers answered with still are
exactly that. The annotation lives exactly as long as the consume call it
wraps; the batch is the same object for every exporter of the fan-out
(exporters treat it as read-only), so it is found by identity.

The encoding travels here, beside the batch, rather than through the consumer
interface: ``consume`` keeps taking one TracesData, so third-party processors
and exporters are unchanged, and a batch that never crossed processes (no
workers, a processor in between that built a new batch) simply has none. A
queued exporter passes it to its sending queue, which stores those bytes
instead of encoding the batch again (collector.exporterhelper).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field

from collector.component import TracesData


@dataclass(frozen=True)
class Annotation:
    """The notes of each exporter's worker part (by exporter id), the spans changed since they were taken, and
    the batch's encoding when it is still exact (None once anything changed the batch after it was encoded)."""

    notes: dict[str, list[object]] = field(default_factory=dict)
    changed_after: frozenset[bytes] = frozenset()
    encoded: bytes | None = None


_current: dict[int, Annotation] = {}


@contextlib.contextmanager
def annotated(traces: TracesData, annotation: Annotation) -> Iterator[None]:
    _current[id(traces)] = annotation
    try:
        yield
    finally:
        del _current[id(traces)]


def notes_for(traces: TracesData, exporter: str) -> tuple[list[object], frozenset[bytes]] | None:
    """What ``exporter``'s worker part noted of ``traces``, and the spans changed since; None when it noted nothing
    (the batch did not pass through workers): then the exporter reads the batch itself."""
    annotation = _current.get(id(traces))
    if annotation is None or exporter not in annotation.notes:
        return None
    return annotation.notes[exporter], annotation.changed_after


def encoding_of(traces: TracesData) -> bytes | None:
    """collector.pdata.encode(``traces``) as the workers made it, or None when it is not known to be exact."""
    annotation = _current.get(id(traces))
    return annotation.encoded if annotation is not None else None
