"""OpenTelemetry metric and attribute names as Prometheus names, as the OpenTelemetry Collector's prometheus exporter
writes them (prometheus/otlptranslator, underscore escaping with suffixes, the exporter's default).

A metric name is cut into tokens of ``[a-zA-Z0-9:]`` (so dots, dashes and runs of
underscores become one underscore), its unit's Prometheus word is appended when
the name does not hold it already (``s`` → ``seconds``, ``By/s`` →
``bytes_per_second``; a unit in braces, ``{token}``, is an annotation and adds
nothing), a monotonic sum ends in ``total`` (once), a gauge whose unit is ``1``
ends in ``ratio``, and a name that starts with a digit gets a leading underscore.
A label name keeps ``[a-zA-Z0-9]`` and makes each run of anything else one
underscore; one that starts with a digit gets ``key_`` in front.
"""

from __future__ import annotations

import base64
from enum import Enum

from collector.jsonvalues import dump_json

# OpenTelemetry (UCUM) units as the Prometheus word for them.
UNIT_WORDS = {
    "d": "days", "h": "hours", "min": "minutes", "s": "seconds", "ms": "milliseconds", "us": "microseconds",
    "ns": "nanoseconds",
    "By": "bytes", "KiBy": "kibibytes", "MiBy": "mebibytes", "GiBy": "gibibytes", "TiBy": "tibibytes",
    "KBy": "kilobytes", "MBy": "megabytes", "GBy": "gigabytes", "TBy": "terabytes",
    "m": "meters", "V": "volts", "A": "amperes", "J": "joules", "W": "watts", "g": "grams",
    "Cel": "celsius", "Hz": "hertz", "1": "", "%": "percent",
}  # fmt: skip
# The unit after a slash, in the singular.
PER_UNIT_WORDS = {"s": "second", "m": "minute", "h": "hour", "d": "day", "w": "week", "mo": "month", "y": "year"}


class Kind(Enum):
    """What a metric is, for its name's suffixes and its ``# TYPE``."""

    GAUGE = "gauge"
    COUNTER = "counter"  # a monotonic sum
    NON_MONOTONIC_SUM = "sum"  # a gauge in the exposition, but not suffixed as one
    HISTOGRAM = "histogram"
    EXPONENTIAL_HISTOGRAM = "exponential_histogram"
    SUMMARY = "summary"

    @property
    def type_name(self) -> str:
        """The ``# TYPE`` word."""
        return _TYPE_NAMES[self]


def _metric_char(char: str) -> bool:
    return char.isascii() and (char.isalnum() or char == ":")


def _tokens(text: str) -> list[str]:
    """``text`` cut at every run of characters a metric name may not hold (underscores included)."""
    tokens, current = [], []
    for char in text:
        if _metric_char(char):
            current.append(char)
        elif current:
            tokens.append("".join(current))
            current = []
    if current:
        tokens.append("".join(current))
    return tokens


def _clean_unit(unit: str) -> str:
    return "_".join(_tokens(unit))


def unit_suffixes(unit: str) -> tuple[str, str]:
    """The main and the per-unit suffix of ``unit`` (``By/s`` → ``bytes``, ``per_second``)."""
    main, _, per = unit.partition("/")
    main, per = main.strip(), per.strip()
    main_suffix = UNIT_WORDS.get(main, main) if main and "{" not in main and "}" not in main else ""
    per_suffix = ""
    if per and "{" not in per and "}" not in per:
        per_suffix = "per_" + PER_UNIT_WORDS.get(per, per)
    return _clean_unit(main_suffix), _clean_unit(per_suffix)


def metric_name(name: str, unit: str, kind: Kind, namespace: str = "", suffixes: bool = True) -> str:
    """The Prometheus name of the metric ``name`` with ``unit`` (empty when nothing of it is usable)."""
    tokens = _tokens(name)
    if suffixes:
        main, per = unit_suffixes(unit)
        if main and main not in tokens:
            tokens.append(main)
        if per and per not in tokens:
            tokens.append(per)
        if kind is Kind.COUNTER:
            tokens = [token for token in tokens if token != "total"] + ["total"]
        if unit == "1" and kind is Kind.GAUGE:
            tokens = [token for token in tokens if token != "ratio"] + ["ratio"]
    if namespace:
        tokens = [*_tokens(namespace), *tokens]
    spelled = "_".join(tokens)
    return "_" + spelled if spelled[:1].isdigit() else spelled


def label_name(key: str) -> str:
    """The Prometheus label name of the attribute ``key`` (empty when nothing of it is usable)."""
    reserved = len(key) >= 4 and key.startswith("__") and key.endswith("__")
    body = key[2:-2] if reserved else key
    chars: list[str] = []
    for char in body:
        if char.isascii() and char.isalnum():
            chars.append(char)
        elif not chars or chars[-1] != "_":
            chars.append("_")
    spelled = "".join(chars)
    if reserved:
        return f"__{spelled}__"
    if spelled[:1].isdigit():
        spelled = "key_" + spelled
    return "" if not spelled.strip("_") else spelled


def label_value(value: object) -> str:
    """An attribute value as label text: strings as they are, other scalars as the Collector prints them, arrays
    and maps as JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _float_text(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if value is None:
        return ""
    return dump_json(value)


def number_text(value: float) -> str:
    """A sample value or bucket bound as the text format writes it (``+Inf``, ``NaN``, ``0.25``, ``1e-05``)."""
    return _float_text(float(value))


def _float_text(value: float) -> str:
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "+Inf" if value > 0 else "-Inf"
    return str(int(value)) if value.is_integer() and abs(value) < 1e21 else repr(value)


_TYPE_NAMES = {
    Kind.GAUGE: "gauge",
    Kind.COUNTER: "counter",
    Kind.NON_MONOTONIC_SUM: "gauge",
    Kind.HISTOGRAM: "histogram",
    Kind.EXPONENTIAL_HISTOGRAM: "histogram",
    Kind.SUMMARY: "summary",
}
