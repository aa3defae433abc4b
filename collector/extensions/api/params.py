"""Declared parameters: how each query or path parameter is read, checked, and described in the OpenAPI document.

A ``Parameter`` carries its parser and its JSON Schema side by side, so the
handler's checks and the document cannot drift apart. ``parse_arguments``
reads a request's parameters against an endpoint's declarations: unknown
names, repeats of a single-valued parameter, empty values and values that do
not parse are each a ``BadParameter`` naming the parameter (400).

Times are RFC 3339 (``2025-01-31T12:00:00Z``, up to nanoseconds) or Unix
seconds (``1738324800``, fractions allowed); durations are written as in the
config (``250ms``, ``1.5s``, ``2m``).
"""

from __future__ import annotations

import datetime
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from starlette.requests import HTTPConnection

from collector.config.types import Duration
from collector.extensions.api.errors import BadParameter

Location = Literal["query", "path"]
NANOS_PER_SECOND = 1_000_000_000
_RFC3339 = re.compile(r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|z|[+-]\d{2}:\d{2})")
_UNIX_SECONDS = re.compile(r"\d{1,11}(?:\.\d{1,9})?")
_TRUE, _FALSE = ("true", "1"), ("false", "0")
_HEX = frozenset("0123456789abcdef")


@dataclass(frozen=True)
class Parameter:
    """One query or path parameter: its name, how it parses, and how the OpenAPI document describes it."""

    name: str
    description: str
    parse: Callable[[str], Any]  # raises ValueError with a message for the caller
    schema: Mapping[str, Any]
    location: Location = "query"
    required: bool = False
    repeated: bool = False  # may be given more than once; the value is then a tuple
    example: str | None = None

    def openapi(self) -> dict[str, Any]:
        schema: Mapping[str, Any] = {"type": "array", "items": self.schema} if self.repeated else self.schema
        document: dict[str, Any] = {
            "name": self.name,
            "in": self.location,
            "required": self.required or self.location == "path",
            "description": self.description,
            "schema": dict(schema),
        }
        if self.repeated:
            document.update(style="form", explode=True)
        if self.example is not None:
            document["example"] = self.example
        return document


@dataclass(frozen=True)
class Arguments:
    """The parsed parameters of one request, by name; absent ones are not in ``values``."""

    values: Mapping[str, Any] = field(default_factory=dict)

    def get(self, name: str, default: Any = None) -> Any:
        return self.values.get(name, default)

    def __contains__(self, name: str) -> bool:
        return name in self.values


def parse_arguments(request: HTTPConnection, parameters: Sequence[Parameter], strict: bool = True) -> Arguments:
    """The request's parameters parsed by their declarations; ``strict`` refuses names not declared."""
    declared = {p.name: p for p in parameters if p.location == "query"}
    values: dict[str, Any] = {}
    query = request.query_params
    if strict:
        for name in query:
            if name not in declared:
                expected = ", ".join(sorted(declared)) or "none"
                raise BadParameter(name, f"unknown parameter; this endpoint takes {expected}")
    for parameter in parameters:
        if parameter.location == "path":
            values[parameter.name] = _parse_one(parameter, str(request.path_params[parameter.name]))
            continue
        given = query.getlist(parameter.name)
        if not given:
            if parameter.required:
                raise BadParameter(parameter.name, "is required")
            continue
        if parameter.repeated:
            values[parameter.name] = tuple(_parse_one(parameter, text) for text in given)
        elif len(given) > 1:
            raise BadParameter(parameter.name, "given more than once")
        else:
            values[parameter.name] = _parse_one(parameter, given[0])
    return Arguments(values)


def _parse_one(parameter: Parameter, text: str) -> Any:
    if text == "":
        raise BadParameter(parameter.name, "is empty")
    try:
        return parameter.parse(text)
    except ValueError as exc:
        raise BadParameter(parameter.name, str(exc)) from None


# ---------------------------------------------------------------------------------------------------------------
# Parsers


def parse_timestamp(text: str) -> int:
    """Unix nanoseconds of an RFC 3339 time or of Unix seconds."""
    if _UNIX_SECONDS.fullmatch(text):
        whole, _, fraction = text.partition(".")
        return int(whole) * NANOS_PER_SECOND + int(fraction.ljust(9, "0") or 0)
    match = _RFC3339.fullmatch(text)
    if match is None:
        raise ValueError(f'expected an RFC 3339 time like 2025-01-31T12:00:00Z or Unix seconds, got "{text}"')
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    try:
        offset = datetime.timedelta(0)
        if zone not in ("Z", "z"):
            sign = 1 if zone[0] == "+" else -1
            offset = sign * datetime.timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6]))
        moment = datetime.datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second), tzinfo=datetime.timezone(offset)
        )
    except ValueError as exc:
        raise ValueError(f'"{text}" is not a valid time ({exc})') from None
    return int(moment.timestamp()) * NANOS_PER_SECOND + int((fraction or "").ljust(9, "0") or 0)


def format_timestamp(nanos: int) -> str:
    """Unix nanoseconds as RFC 3339 in UTC, with as many fraction digits as needed (none, 3, 6 or 9)."""
    seconds, fraction = divmod(int(nanos), NANOS_PER_SECOND)
    moment = datetime.datetime.fromtimestamp(seconds, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    if fraction == 0:
        return moment + "Z"
    digits = f"{fraction:09d}"
    for width in (3, 6):
        if digits[width:] == "0" * (9 - width):
            return f"{moment}.{digits[:width]}Z"
    return f"{moment}.{digits}Z"


def parse_duration(text: str) -> int:
    """Nanoseconds of a duration written as in the config (``250ms``, ``1.5s``)."""
    seconds = Duration.from_config(text)
    if not math.isfinite(seconds):
        raise ValueError(f'expected a duration like 250ms or 1.5s, got "{text}"')
    return round(seconds * NANOS_PER_SECOND)


def format_duration(seconds: float) -> str:
    """A duration as the config writes it, in its largest whole unit: 744h, 30m, 1.5s."""
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def parse_boolean(text: str) -> bool:
    lowered = text.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError(f'expected true or false, got "{text}"')


def integer_parser(minimum: int, maximum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        if not (text.isascii() and text.isdigit()):
            raise ValueError(f'expected a whole number from {minimum} to {maximum}, got "{text}"')
        value = int(text)
        if not minimum <= value <= maximum:
            raise ValueError(f"must be from {minimum} to {maximum}, got {value}")
        return value

    return parse


def choice_parser(choices: Sequence[str]) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text not in choices:
            raise ValueError(f'expected one of {", ".join(choices)}, got "{text}"')
        return text

    return parse


def choices_list_parser(choices: Sequence[str]) -> Callable[[str], tuple[str, ...]]:
    """A comma-separated list of distinct choices, in the order given."""
    one = choice_parser(choices)

    def parse(text: str) -> tuple[str, ...]:
        items = tuple(one(item.strip()) for item in text.split(","))
        if len(set(items)) != len(items):
            raise ValueError("names a value twice")
        return items

    return parse


def text_parser(max_length: int) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if len(text) > max_length:
            raise ValueError(f"longer than {max_length} characters")
        return text

    return parse


def hex_id_parser(hex_chars: int, what: str) -> Callable[[str], str]:
    """An id in lower-case hex of ``hex_chars`` digits (upper case accepted and lowered)."""

    def parse(text: str) -> str:
        lowered = text.lower()
        if len(lowered) != hex_chars or not _HEX.issuperset(lowered):
            raise ValueError(f'expected a {what} of {hex_chars} hex digits, got "{text}"')
        return lowered

    return parse


def pair_parser(max_length: int) -> Callable[[str], tuple[str, str]]:
    """``key=value``, split at the first ``=``."""

    def parse(text: str) -> tuple[str, str]:
        key, equals, value = text.partition("=")
        if not equals or not key:
            raise ValueError(f'expected key=value, got "{text}"')
        if len(text) > max_length:
            raise ValueError(f"longer than {max_length} characters")
        return key, value

    return parse
