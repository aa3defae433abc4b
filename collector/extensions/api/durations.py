"""Durations as Go's time.ParseDuration reads them (``1.5s``, ``1h30m``, ``250ms``), which Jaeger and Tempo take.

TraceQL also takes Prometheus' longer units (``d``, ``w``, ``y``): pass
``PROMETHEUS_UNITS``. A bare ``0`` is zero; a leading sign is allowed.
"""

from __future__ import annotations

from collections.abc import Mapping

NANOS_PER_SECOND = 1_000_000_000
GO_UNITS: Mapping[str, int] = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,  # U+00B5 micro sign
    "μs": 1_000,  # U+03BC Greek mu
    "ms": 1_000_000,
    "s": NANOS_PER_SECOND,
    "m": 60 * NANOS_PER_SECOND,
    "h": 3600 * NANOS_PER_SECOND,
}
PROMETHEUS_UNITS: Mapping[str, int] = {
    **GO_UNITS,
    "d": 86400 * NANOS_PER_SECOND,
    "w": 7 * 86400 * NANOS_PER_SECOND,
    "y": 365 * 86400 * NANOS_PER_SECOND,
}
UNIT_CHARACTERS = frozenset("".join(PROMETHEUS_UNITS))


def parse_duration(text: str, units: Mapping[str, int] = GO_UNITS) -> int:
    """Nanoseconds of ``text``; ValueError naming the problem when it is not a duration."""
    body = text[1:] if text[:1] in ("+", "-") else text
    sign = -1 if text[:1] == "-" else 1
    if body == "0":
        return 0
    if not body:
        raise ValueError(f'"{text}" is not a duration')
    total = 0.0
    i = 0
    while i < len(body):
        start = i
        while i < len(body) and (body[i].isdigit() or body[i] == "."):
            i += 1
        number = body[start:i]
        unit_start = i
        while i < len(body) and not (body[i].isdigit() or body[i] == "."):
            i += 1
        unit = body[unit_start:i]
        if not number or number == "." or number.count(".") > 1:
            raise ValueError(f'"{text}" is not a duration like 1.5s or 250ms')
        if unit not in units:
            allowed = ", ".join(units)
            raise ValueError(
                f'"{text}": unknown unit "{unit}" (expected one of {allowed})'
                if unit
                else f'"{text}": a unit is missing (expected one of {allowed})'
            )
        total += float(number) * units[unit]
    return sign * round(total)
