"""The collector's own metrics: declared counters and gauges, rendered in the Prometheus text format.

Every metric is declared once, in the ``metadata.yaml`` of the package that
records it (name, kind, unit, help, label names), and ``collector.mdatagen``
generates from it the typed instruments the code records through
(``generated_metrics.py`` beside it): a counter's ``add`` and ``bind`` and a
gauge's ``watch`` take the declared labels as keyword arguments, so a call with
a label the metric does not have fails mypy, and at the latest the call itself.
This module holds what they share: ``MetricSpec`` (one declaration), the
``Counter`` and ``Gauge`` the generated classes extend, and the registry,
``Telemetry``, that one service's components count into.

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
from typing import ClassVar, Literal

Labels = tuple[tuple[str, str], ...]
MetricKind = Literal["counter", "gauge"]

# Units as declared (UCUM, as the OpenTelemetry Collector's metadata.yaml files write them) that the
# Prometheus text shows in a ``# UNIT`` line, in Prometheus' words. A count's unit is an annotation
# (``{spans}``): the name and HELP say what is counted, and Prometheus shows no unit for it.
PROMETHEUS_UNITS = {"s": "seconds", "By": "bytes"}


@dataclass(frozen=True)
class MetricSpec:
    """One self-metric as its metadata.yaml declares it.

    ``labels`` are the label names every series carries, ``optional_labels`` those some series carry
    and others not (both sorted by name, the order a series' labels are kept and rendered in).
    """

    name: str
    kind: MetricKind
    help: str
    unit: str = ""
    labels: tuple[str, ...] = ()
    optional_labels: tuple[str, ...] = ()

    @property
    def series_name(self) -> str:
        """The name its samples carry in the Prometheus text (a counter's ends in ``_total``)."""
        return f"{self.name}_total" if self.kind == "counter" else self.name


# What a registry reports to another: name -> (declaration, value per label set).
Snapshot = dict[str, tuple[MetricSpec, dict[Labels, float]]]


@dataclass
class Family:
    """One metric's series in a registry: counted values, and the gauges' read functions."""

    spec: MetricSpec
    lock: threading.Lock
    values: dict[Labels, float] = field(default_factory=dict)
    callbacks: dict[Labels, Callable[[], float]] = field(default_factory=dict)


class Telemetry:
    """A registry of metric families shared by every component of one service."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._families: dict[str, Family] = {}
        self._sources: dict[str, Snapshot] = {}  # the latest values each worker process reported
        self._retired: Snapshot = {}  # counters of workers that exited
        self._reported: dict[str, dict[Labels, float]] = {}  # what changes() last saw, to send only what moved

    def declare(self, spec: MetricSpec) -> Family:
        """The family of ``spec``, made on first use; a second, different declaration of its name is a bug."""
        with self._lock:
            family = self._families.get(spec.name)
            if family is None:
                family = self._families[spec.name] = Family(spec, self._lock)
            elif family.spec != spec:
                raise ValueError(f"metric {spec.name} is declared twice, differently: {family.spec} and {spec}")
            return family

    def value(self, name: str, **labels: str) -> float:
        """The current value of one series (0 when it was never touched); for tests and the CLI."""
        key = tuple(sorted(labels.items()))
        family = self._combined().get(name)
        return family[1].get(key, 0.0) if family is not None else 0.0

    def snapshot(self) -> Snapshot:
        """Every series of this registry alone (counters as totals, gauges read now)."""
        with self._lock:
            families = [(f.spec, dict(f.values), dict(f.callbacks)) for f in self._families.values()]
        result: Snapshot = {}
        for spec, series, callbacks in families:
            for labels, read in callbacks.items():
                series[labels] = read()
            if series:
                result[spec.name] = (spec, series)
        return result

    def changes(self) -> Snapshot:
        """The series whose value moved since the last call (all of them the first time), for ``absorb``."""
        current = self.snapshot()
        moved: Snapshot = {}
        for name, (spec, series) in current.items():
            before = self._reported.get(name, {})
            changed = {labels: value for labels, value in series.items() if before.get(labels) != value}
            if changed:
                moved[name] = (spec, changed)
        self._reported = {name: series for name, (_, series) in current.items()}
        return moved

    def absorb(self, source: str, changes: Snapshot) -> None:
        """Take another registry's ``changes()``: its series count in this one's values and rendering."""
        with self._lock:
            known = self._sources.setdefault(source, {})
            for name, (spec, series) in changes.items():
                known.setdefault(name, (spec, {}))[1].update(series)

    def retire(self, source: str) -> None:
        """``source`` is gone: keep what its counters counted, drop its gauges."""
        with self._lock:
            gone = self._sources.pop(source, {})
            for name, (spec, series) in gone.items():
                if spec.kind != "counter":
                    continue
                totals = self._retired.setdefault(name, (spec, {}))[1]
                for labels, value in series.items():
                    totals[labels] = totals.get(labels, 0.0) + value

    def _combined(self) -> Snapshot:
        """This registry's series plus every absorbed and retired one, summed per label set."""
        combined = self.snapshot()
        with self._lock:
            others = [*self._sources.values(), self._retired]
            for other in others:
                for name, (spec, series) in other.items():
                    mine = combined.setdefault(name, (spec, {}))[1]
                    for labels, value in series.items():
                        mine[labels] = mine.get(labels, 0.0) + value
        return combined

    def render(self) -> str:
        """Every series in the Prometheus text exposition format (version 0.0.4).

        A metric with a unit Prometheus names gets a ``# UNIT`` line: a comment to a version 0.0.4
        parser (it reads only HELP and TYPE comments), the unit to a reader and to OpenMetrics.
        """
        lines: list[str] = []
        families = self._combined()
        for name in sorted(families):
            spec, series = families[name]
            series_name = spec.series_name
            if spec.help:
                lines.append(f"# HELP {series_name} {_escape_help(spec.help)}")
            lines.append(f"# TYPE {series_name} {spec.kind}")
            unit = PROMETHEUS_UNITS.get(spec.unit)
            if unit:
                lines.append(f"# UNIT {series_name} {unit}")
            for labels in sorted(series):
                lines.append(f"{series_name}{render_labels(labels)} {render_number(series[labels])}")
        return "\n".join(lines) + "\n"


class Instrument:
    """A declared metric in one registry, of the kind its subclass records."""

    __slots__ = ("spec", "_family")
    kind: ClassVar[MetricKind]

    def __init__(self, telemetry: Telemetry, spec: MetricSpec) -> None:
        if spec.kind != self.kind:
            raise ValueError(f"{spec.name} is declared a {spec.kind}, not a {self.kind}")
        self.spec = spec
        self._family = telemetry.declare(spec)


class Counter(Instrument):
    """A declared counter; generated subclasses add ``add`` and ``bind`` with its labels."""

    __slots__ = ()
    kind = "counter"

    def _add(self, amount: float, labels: Labels) -> None:
        _increment(self._family, labels, amount)

    def _bind(self, labels: Labels) -> BoundCounter:
        return BoundCounter(self._family, labels)


class BoundCounter:
    """One series of a counter, its labels given once: for a call site that counts the same series again and again."""

    __slots__ = ("_family", "_labels")

    def __init__(self, family: Family, labels: Labels) -> None:
        self._family = family
        self._labels = labels

    def add(self, amount: float) -> None:
        _increment(self._family, self._labels, amount)


def _increment(family: Family, labels: Labels, amount: float) -> None:
    with family.lock:
        values = family.values
        values[labels] = values.get(labels, 0.0) + amount


class Gauge(Instrument):
    """A declared gauge; generated subclasses add ``watch`` with its labels."""

    __slots__ = ()
    kind = "gauge"

    def _watch(self, read: Callable[[], float], labels: Labels) -> None:
        """Show ``read()`` as the series ``labels`` at every scrape (a later ``read`` for the series replaces it)."""
        family = self._family
        with family.lock:
            family.callbacks[labels] = read


def present(*labels: tuple[str, str | None]) -> Labels:
    """The labels given a value: a series of a metric with optional labels carries only those it was given."""
    return tuple((name, value) for name, value in labels if value is not None)


def render_labels(labels: Labels) -> str:
    """``{k="v",...}`` with values escaped as the text format asks, or nothing for no labels."""
    if not labels:
        return ""
    body = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
    return "{" + body + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _escape_help(text: str) -> str:
    """HELP text escaped as the text format asks: backslash and line feed (quotes stay as they are)."""
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def render_number(value: float) -> str:
    """A sample value or bucket bound: integers without a fraction, others as Python's shortest repr."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))
