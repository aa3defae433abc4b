"""What the workers said of a batch, for the exporters in the main process while they consume it.

The worker stage annotates the batch it hands on: the notes of the exporters'
worker parts (collector.component.WorkerPart), and the spans the processors'
main parts changed after those notes were taken. The annotation lives exactly
as long as the consume call it wraps; the batch is the same object for every
exporter of the fan-out (exporters treat it as read-only), so it is found by
identity.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field

from collector.component import TracesData


@dataclass(frozen=True)
class Annotation:
    """The notes of each exporter's worker part (by exporter id), and the spans changed since they were taken."""

    notes: dict[str, list[object]] = field(default_factory=dict)
    changed_after: frozenset[bytes] = frozenset()


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
