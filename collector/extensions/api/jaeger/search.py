"""A Jaeger search (service, operation, tags, min/max duration) as a span filter, the same for every Jaeger API.

Jaeger matches all of a search's conditions on one span; so does the filter.
Tags compare with the attribute's stored text (a span's attribute, else its
resource's), except the tags Jaeger itself derives from a span's fields, which
read those fields:

- ``error`` (``true``/``false``): the span's status is (not) error;
- ``span.kind``: the span's kind (``server``, ``client``...);
- ``otel.status_code`` (``OK``, ``ERROR``, ``UNSET``): the span's status;
- ``otel.status_description``: the status message;
- ``otel.scope.name`` and ``otel.scope.version``: the instrumentation scope.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from collector.extensions.api.spanfilter import (
    KIND_WORDS,
    STATUS_WORDS,
    Attribute,
    Comparison,
    DurationValue,
    Intrinsic,
    KindValue,
    SpanFilter,
    StatusValue,
    all_of,
)


@dataclass(frozen=True)
class JaegerQuery:
    """The span conditions of a Jaeger search; empty strings and None leave a condition out."""

    service: str = ""
    operation: str = ""
    tags: tuple[tuple[str, str], ...] = ()
    min_duration_ns: int | None = None
    max_duration_ns: int | None = None

    def span_filter(self) -> SpanFilter | None:
        conditions: list[SpanFilter] = []
        if self.service:
            conditions.append(Comparison(Attribute("service.name", "resource"), "=", self.service))
        if self.operation:
            conditions.append(Comparison(Intrinsic("name"), "=", self.operation))
        conditions.extend(tag_condition(key, value) for key, value in self.tags)
        if self.min_duration_ns is not None:
            conditions.append(Comparison(Intrinsic("duration"), ">=", DurationValue(self.min_duration_ns)))
        if self.max_duration_ns is not None:
            conditions.append(Comparison(Intrinsic("duration"), "<=", DurationValue(self.max_duration_ns)))
        return all_of(conditions)


def tag_condition(key: str, value: str) -> Comparison:
    """One Jaeger tag as a span condition; see the module docstring for the tags read from span fields."""
    lowered = value.lower()
    if key == "error" and lowered in ("true", "false"):
        return Comparison(Intrinsic("status"), "=" if lowered == "true" else "!=", StatusValue("error"))
    if key == "span.kind" and lowered in KIND_WORDS:
        return Comparison(Intrinsic("kind"), "=", KindValue(lowered))
    if key == "otel.status_code" and lowered in STATUS_WORDS:
        return Comparison(Intrinsic("status"), "=", StatusValue(lowered))
    if key == "otel.status_description":
        return Comparison(Intrinsic("status_message"), "=", value)
    if key == "otel.scope.name":
        return Comparison(Intrinsic("scope_name"), "=", value)
    if key == "otel.scope.version":
        return Comparison(Intrinsic("scope_version"), "=", value)
    return Comparison(Attribute(key), "=", value)


def tags_of(pairs: Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """Tags with a later value of a key replacing an earlier one, as Jaeger's map does."""
    return tuple(dict(pairs).items())
