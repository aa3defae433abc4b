"""The collector's own metrics: counters and gauges, rendered in the Prometheus text format.

Names follow the OpenTelemetry Collector's internal telemetry
(``otelcol_receiver_accepted_spans`` and friends) so existing dashboards read them.
Counters are bumped from the event loop and from worker threads, hence the lock.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

Labels = tuple[tuple[str, str], ...]


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
        with self._lock:
            family = self._families.get(name)
            if family is None:
                return 0.0
            if key in family.callbacks:
                return family.callbacks[key]()
            return family.values.get(key, 0.0)

    def render(self) -> str:
        """Every series in the Prometheus text exposition format (version 0.0.4)."""
        lines: list[str] = []
        with self._lock:
            families = {name: (f.kind, f.help, dict(f.values), dict(f.callbacks)) for name, f in self._families.items()}
        for name in sorted(families):
            kind, help_text, values, callbacks = families[name]
            series_name = f"{name}_total" if kind == "counter" else name
            if help_text:
                lines.append(f"# HELP {series_name} {help_text}")
            lines.append(f"# TYPE {series_name} {kind}")
            series = dict(values)
            for labels, read in callbacks.items():
                series[labels] = read()
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
