"""The collector's own metrics: counters and gauges, rendered in the Prometheus text format.

Names follow the OpenTelemetry Collector's internal telemetry
(``otelcol_receiver_accepted_spans`` and friends) so existing dashboards read them.
Counters are bumped from the event loop and from worker threads, hence the lock.

Worker processes (collector.runtime) keep a registry of their own and send
its ``changes()``; the main process's registry ``absorb``s them per source and
shows the sum, so /metrics reads as one collector. A worker that exits is
``retire``d: its counters stay in the sums, its gauges go.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

Labels = tuple[tuple[str, str], ...]
# What a registry reports to another: name -> (kind, help, value per label set).
Snapshot = dict[str, tuple[str, str, dict[Labels, float]]]


@dataclass
class _Family:
    kind: str  # "counter" or "gauge"
    help: str
    values: dict[Labels, float] = field(default_factory=dict)
    callbacks: dict[Labels, Callable[[], float]] = field(default_factory=dict)


class Telemetry:
    """A registry of metric families shared by every component of one service."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._families: dict[str, _Family] = {}
        self._sources: dict[str, Snapshot] = {}  # the latest values each worker process reported
        self._retired: Snapshot = {}  # counters of workers that exited
        self._reported: Snapshot = {}  # what changes() last returned, to send only what moved since

    def add(self, name: str, amount: float, help: str = "", **labels: str) -> None:
        """Add ``amount`` to the counter ``name`` with ``labels``."""
        key = tuple(sorted(labels.items()))
        with self._lock:
            family = self._families.get(name)
            if family is None:
                family = self._families[name] = _Family("counter", help)
            family.values[key] = family.values.get(key, 0.0) + amount

    def gauge(self, name: str, read: Callable[[], float], help: str = "", **labels: str) -> None:
        """Register a gauge whose value ``read()`` returns when metrics are scraped."""
        key = tuple(sorted(labels.items()))
        with self._lock:
            self._families.setdefault(name, _Family("gauge", help)).callbacks[key] = read

    def value(self, name: str, **labels: str) -> float:
        """The current value of one series (0 when it was never touched); for tests and the CLI."""
        key = tuple(sorted(labels.items()))
        family = self._combined().get(name)
        return family[2].get(key, 0.0) if family is not None else 0.0

    def snapshot(self) -> Snapshot:
        """Every series of this registry alone (counters as totals, gauges read now)."""
        with self._lock:
            families = {name: (f.kind, f.help, dict(f.values), dict(f.callbacks)) for name, f in self._families.items()}
        result: Snapshot = {}
        for name, (kind, help_text, values, callbacks) in families.items():
            series = dict(values)
            for labels, read in callbacks.items():
                series[labels] = read()
            result[name] = (kind, help_text, series)
        return result

    def changes(self) -> Snapshot:
        """The series whose value moved since the last call (all of them the first time), for ``absorb``."""
        current = self.snapshot()
        moved: Snapshot = {}
        for name, (kind, help_text, series) in current.items():
            before = self._reported.get(name, ("", "", {}))[2]
            changed = {labels: value for labels, value in series.items() if before.get(labels) != value}
            if changed:
                moved[name] = (kind, help_text, changed)
        self._reported = current
        return moved

    def absorb(self, source: str, changes: Snapshot) -> None:
        """Take another registry's ``changes()``: its series count in this one's values and rendering."""
        with self._lock:
            known = self._sources.setdefault(source, {})
            for name, (kind, help_text, series) in changes.items():
                known.setdefault(name, (kind, help_text, {}))[2].update(series)

    def retire(self, source: str) -> None:
        """``source`` is gone: keep what its counters counted, drop its gauges."""
        with self._lock:
            gone = self._sources.pop(source, {})
            for name, (kind, help_text, series) in gone.items():
                if kind != "counter":
                    continue
                totals = self._retired.setdefault(name, (kind, help_text, {}))[2]
                for labels, value in series.items():
                    totals[labels] = totals.get(labels, 0.0) + value

    def _combined(self) -> Snapshot:
        """This registry's series plus every absorbed and retired one, summed per label set."""
        combined = self.snapshot()
        with self._lock:
            others = [*self._sources.values(), self._retired]
            for other in others:
                for name, (kind, help_text, series) in other.items():
                    mine = combined.setdefault(name, (kind, help_text, {}))[2]
                    for labels, value in series.items():
                        mine[labels] = mine.get(labels, 0.0) + value
        return combined

    def render(self) -> str:
        """Every series in the Prometheus text exposition format (version 0.0.4)."""
        lines: list[str] = []
        families = self._combined()
        for name in sorted(families):
            kind, help_text, series = families[name]
            series_name = f"{name}_total" if kind == "counter" else name
            if help_text:
                lines.append(f"# HELP {series_name} {help_text}")
            lines.append(f"# TYPE {series_name} {kind}")
            for labels in sorted(series):
                lines.append(f"{series_name}{render_labels(labels)} {render_number(series[labels])}")
        return "\n".join(lines) + "\n"


def render_labels(labels: Labels) -> str:
    """``{k="v",...}`` with values escaped as the text format asks, or nothing for no labels."""
    if not labels:
        return ""
    body = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
    return "{" + body + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def render_number(value: float) -> str:
    """A sample value or bucket bound: integers without a fraction, others as Python's shortest repr."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))
