"""Conditions on one span, as the Jaeger and Tempo searches state them, and the SQL that tests them.

A filter is a tree of comparisons joined by ``and`` and ``or``; every
comparison reads one span row of ``otel_traces``: its span or resource
attributes, or a column (name, status, kind, duration, ...). Jaeger's search
parameters (service, operation, tags, min/max duration) and a TraceQL spanset
``{ ... }`` both become one, so both searches share one translation.

The SQL is built from the tree alone: column names come from this module, and
every name and value the caller gave is bound as a query parameter (through the
query's ``bind``, collector.extensions.api.query.sql), never written into the text.

Attribute values are stored as strings (``exporters.clickhouse.columns``), so a
comparison with a number reads the stored text as a number (``toFloat64OrNull``:
"200" and "200.0" both equal 200, text that is not a number matches no number);
a boolean compares with "true"/"false"; a string compares as text. A comparison
on an attribute the span does not carry is false, whatever the operator
(``!= nil`` asks whether it is there). An attribute named without a scope is
read from the span when the span has it, else from the resource.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol, get_args

from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from exporters.clickhouse.columns import SPAN_KIND_NAMES, STATUS_CODE_NAMES

Scope = Literal["span", "resource", "any"]
IntrinsicName = Literal["name", "status", "status_message", "kind", "duration", "scope_name", "scope_version"]
Operator = Literal["=", "!=", ">", ">=", "<", "<=", "=~", "!~"]
OPERATORS: tuple[Operator, ...] = get_args(Operator)
EQUALITY: frozenset[Operator] = frozenset({"=", "!="})
REGEX: frozenset[Operator] = frozenset({"=~", "!~"})
ORDERING: frozenset[Operator] = frozenset({">", ">=", "<", "<="})

SERVICE_NAME = "service.name"
# TraceQL's words for a span's status and kind, to the words the table stores.
STATUS_WORDS: dict[str, str] = {
    "unset": STATUS_CODE_NAMES[Status.STATUS_CODE_UNSET],
    "ok": STATUS_CODE_NAMES[Status.STATUS_CODE_OK],
    "error": STATUS_CODE_NAMES[Status.STATUS_CODE_ERROR],
}
KIND_WORDS: dict[str, str] = {
    "unspecified": SPAN_KIND_NAMES[Span.SPAN_KIND_UNSPECIFIED],
    "internal": SPAN_KIND_NAMES[Span.SPAN_KIND_INTERNAL],
    "server": SPAN_KIND_NAMES[Span.SPAN_KIND_SERVER],
    "client": SPAN_KIND_NAMES[Span.SPAN_KIND_CLIENT],
    "producer": SPAN_KIND_NAMES[Span.SPAN_KIND_PRODUCER],
    "consumer": SPAN_KIND_NAMES[Span.SPAN_KIND_CONSUMER],
}
# Text columns of otel_traces an intrinsic reads.
_TEXT_COLUMNS: dict[IntrinsicName, str] = {
    "name": "SpanName",
    "status_message": "StatusMessage",
    "scope_name": "ScopeName",
    "scope_version": "ScopeVersion",
}


class Binder(Protocol):
    """Where values go: a query's ``bind`` returns the placeholder that stands for the value in the SQL."""

    def bind(self, value: Any, clickhouse_type: str) -> str: ...


class FilterError(ValueError):
    """A comparison that cannot be made (a regex on a duration, an unknown status...); the message says which."""


@dataclass(frozen=True)
class Attribute:
    """A span or resource attribute; ``any`` reads the span's, else the resource's."""

    name: str
    scope: Scope = "any"


@dataclass(frozen=True)
class Intrinsic:
    """A property every span has, held in a column of its own."""

    name: IntrinsicName


Field = Attribute | Intrinsic


@dataclass(frozen=True)
class DurationValue:
    """A duration literal, in nanoseconds."""

    nanos: int


@dataclass(frozen=True)
class StatusValue:
    """A span status word: ``unset``, ``ok`` or ``error``."""

    word: str


@dataclass(frozen=True)
class KindValue:
    """A span kind word: ``unspecified``, ``internal``, ``server``, ``client``, ``producer`` or ``consumer``."""

    word: str


@dataclass(frozen=True)
class Nil:
    """TraceQL's ``nil``: compared with ``!=`` it asks whether an attribute is there."""


Value = str | int | float | bool | DurationValue | StatusValue | KindValue | Nil


@dataclass(frozen=True)
class Comparison:
    field: Field
    operator: Operator
    value: Value


@dataclass(frozen=True)
class And:
    left: SpanFilter
    right: SpanFilter


@dataclass(frozen=True)
class Or:
    left: SpanFilter
    right: SpanFilter


SpanFilter = Comparison | And | Or


def all_of(conditions: list[SpanFilter]) -> SpanFilter | None:
    """The conditions joined by ``and``; None (every span) when there are none."""
    if not conditions:
        return None
    joined = conditions[0]
    for condition in conditions[1:]:
        joined = And(joined, condition)
    return joined


def comparisons(condition: SpanFilter | None) -> list[Comparison]:
    """Every comparison in the tree, left to right."""
    if condition is None:
        return []
    if isinstance(condition, Comparison):
        return [condition]
    return comparisons(condition.left) + comparisons(condition.right)


def check(comparison: Comparison) -> None:
    """Raise FilterError when the comparison makes no sense for its field and value."""
    field, operator, value = comparison.field, comparison.operator, comparison.value
    if isinstance(field, Attribute):
        if isinstance(value, DurationValue | StatusValue | KindValue):
            raise FilterError(f"an attribute ({field.name}) is compared with a {_describe(value)}")
        if isinstance(value, Nil) and operator not in EQUALITY:
            raise FilterError("nil can only be compared with = or !=")
        if operator in REGEX and not isinstance(value, str):
            raise FilterError(f"{operator} needs a string (a regular expression)")
        if isinstance(value, bool) and operator not in EQUALITY:
            raise FilterError("a boolean can only be compared with = or !=")
        return
    expected = _intrinsic_value_kind(field.name)
    if not _value_is(value, expected):
        raise FilterError(
            f"{_intrinsic_label(field.name)} is compared with a {_describe(value)}; expected a {expected}"
        )
    if expected in ("status", "kind") and operator not in EQUALITY:
        raise FilterError(f"{_intrinsic_label(field.name)} can only be compared with = or !=")
    if expected == "duration" and operator in REGEX:
        raise FilterError("duration cannot be matched with a regular expression")


def to_sql(condition: SpanFilter | None, params: Binder) -> str:
    """The condition as a boolean SQL expression over one ``otel_traces`` row; values become ``params``."""
    if condition is None:
        return "true"
    if isinstance(condition, And):
        return f"({to_sql(condition.left, params)} AND {to_sql(condition.right, params)})"
    if isinstance(condition, Or):
        return f"({to_sql(condition.left, params)} OR {to_sql(condition.right, params)})"
    check(condition)
    field = condition.field
    if isinstance(field, Intrinsic):
        return _intrinsic_sql(field.name, condition.operator, condition.value, params)
    if field.scope == "resource" and field.name == SERVICE_NAME:
        return _value_sql("ServiceName", condition.operator, condition.value, params)
    key = params.bind(field.name, "String")
    span_sql = _attribute_sql("SpanAttributes", key, condition.operator, condition.value, params)
    if field.scope == "span":
        return span_sql
    resource_sql = _attribute_sql("ResourceAttributes", key, condition.operator, condition.value, params)
    if field.scope == "resource":
        return resource_sql
    return f"if(mapContains(SpanAttributes, {key}), {span_sql}, {resource_sql})"


def _attribute_sql(column: str, key: str, operator: Operator, value: Value, params: Binder) -> str:
    present = f"mapContains({column}, {key})"
    if isinstance(value, Nil):
        return present if operator == "!=" else f"NOT {present}"
    return f"({present} AND {_value_sql(f'{column}[{key}]', operator, value, params)})"


def _value_sql(expression: str, operator: Operator, value: Value, params: Binder) -> str:
    """``expression`` (text) compared with ``value`` as TraceQL compares an attribute."""
    if isinstance(value, bool):
        return f"{expression} {operator} {params.bind('true' if value else 'false', 'String')}"
    if isinstance(value, int | float):
        return f"toFloat64OrNull({expression}) {operator} {params.bind(float(value), 'Float64')}"
    if not isinstance(value, str):  # check() lets only text through here
        raise FilterError(f"cannot compare text with a {_describe(value)}")
    if operator in REGEX:
        matched = f"match({expression}, {params.bind(anchored(value), 'String')})"
        return matched if operator == "=~" else f"NOT {matched}"
    return f"{expression} {operator} {params.bind(value, 'String')}"


def _intrinsic_sql(name: IntrinsicName, operator: Operator, value: Value, params: Binder) -> str:
    if isinstance(value, StatusValue):
        return f"StatusCode {operator} {params.bind(STATUS_WORDS[value.word], 'String')}"
    if isinstance(value, KindValue):
        return f"SpanKind {operator} {params.bind(KIND_WORDS[value.word], 'String')}"
    if isinstance(value, DurationValue):
        return f"Duration {operator} {params.bind(value.nanos, 'UInt64')}"
    return _value_sql(_TEXT_COLUMNS[name], operator, value, params)


def anchored(pattern: str) -> str:
    """A regular expression matched against the whole value, as TraceQL's are (RE2 syntax)."""
    return f"^(?:{pattern})$"


def _intrinsic_value_kind(name: IntrinsicName) -> str:
    if name == "status":
        return "status"
    if name == "kind":
        return "kind"
    if name == "duration":
        return "duration"
    return "string"


def _intrinsic_label(name: IntrinsicName) -> str:
    return {"status_message": "statusMessage", "scope_name": "scope name", "scope_version": "scope version"}.get(
        name, name
    )


def _value_is(value: Value, kind: str) -> bool:
    if kind == "status":
        return isinstance(value, StatusValue)
    if kind == "kind":
        return isinstance(value, KindValue)
    if kind == "duration":
        return isinstance(value, DurationValue)
    return isinstance(value, str)


def _describe(value: Value) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, DurationValue):
        return "duration"
    if isinstance(value, StatusValue):
        return "status"
    if isinstance(value, KindValue):
        return "span kind"
    return "nil"
