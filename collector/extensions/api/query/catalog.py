"""Names the store holds, for search forms and autocompletion: operations, attribute keys and their values.

- ``list_operations``: a service's span names with their kinds (Jaeger's
  operations);
- ``attribute_keys``: the span and resource attribute keys spans carry
  (Tempo's tags);
- ``attribute_values``: the values one attribute, or a column such as the
  span name, takes (Tempo's tag values).

Each reads the spans of a window visible in the caller's scope, optionally
narrowed to those meeting a span filter, and returns at most a limit of
distinct names in order. Services are listed by query.services.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from collector.extensions.api import spanfilter
from collector.extensions.api.query.runner import QueryRunner
from collector.extensions.api.query.sql import Scope, Select, TimeRange
from collector.extensions.api.query.tables import StoreTables
from collector.extensions.api.spanfilter import SpanFilter
from collector.extensions.caller import CallerWatch

AttributeLevel = Literal["span", "resource"]
_MAP_COLUMNS: dict[AttributeLevel, str] = {"span": "SpanAttributes", "resource": "ResourceAttributes"}
# Columns whose values attribute_values lists by name (never a caller's text).
ValueColumn = Literal["SpanName", "StatusMessage", "ServiceName", "StatusCode", "SpanKind"]


@dataclass(frozen=True)
class Operation:
    name: str
    kind: str  # the stored word: Server, Client, Internal, Producer, Consumer, Unspecified


async def list_operations(
    runner: QueryRunner,
    tables: StoreTables,
    scope: Scope,
    window: TimeRange,
    service: str,
    limit: int,
    kind: str | None = None,
    caller: CallerWatch | None = None,
) -> list[Operation]:
    """The distinct (span name, kind) of ``service`` in ``window``, by name then kind; ``kind`` narrows to one."""
    select = Select(tables.spans, scope, window, limit=limit)
    select.where(f"ServiceName = {select.bind(service, 'String')}")
    if kind is not None:
        select.where(f"SpanKind = {select.bind(kind, 'String')}")
    query = select.build(["SpanName", "SpanKind"], group_by=["SpanName", "SpanKind"], order_by=["SpanName", "SpanKind"])
    return [Operation(record["SpanName"], record["SpanKind"]) for record in await runner.run(query, caller)]


async def attribute_keys(
    runner: QueryRunner,
    tables: StoreTables,
    scope: Scope,
    window: TimeRange,
    level: AttributeLevel,
    limit: int,
    condition: SpanFilter | None = None,
    caller: CallerWatch | None = None,
) -> list[str]:
    """The distinct attribute keys of ``level`` on the spans of ``window`` (meeting ``condition``), sorted."""
    select = Select(tables.spans, scope, window, limit=limit)
    if condition is not None:
        select.where(spanfilter.to_sql(condition, select))
    query = select.build([f"arrayJoin(mapKeys({_MAP_COLUMNS[level]})) AS Key"], group_by=["Key"], order_by=["Key"])
    return [record["Key"] for record in await runner.run(query, caller)]


async def attribute_values(
    runner: QueryRunner,
    tables: StoreTables,
    scope: Scope,
    window: TimeRange,
    key: str,
    levels: tuple[AttributeLevel, ...],
    limit: int,
    condition: SpanFilter | None = None,
    caller: CallerWatch | None = None,
) -> list[str]:
    """The distinct values of attribute ``key`` at any of ``levels`` (span before resource), sorted."""
    select = Select(tables.spans, scope, window, limit=limit)
    bound = select.bind(key, "String")
    value = "''"
    for level in reversed(levels):  # the first level listed wins where both hold the key
        column = _MAP_COLUMNS[level]
        value = f"if(mapContains({column}, {bound}), {column}[{bound}], {value})"
    select.where(" OR ".join(f"mapContains({_MAP_COLUMNS[level]}, {bound})" for level in levels))
    if condition is not None:
        select.where(spanfilter.to_sql(condition, select))
    query = select.build([f"{value} AS Value"], group_by=["Value"], order_by=["Value"])
    return [record["Value"] for record in await runner.run(query, caller)]


async def column_values(
    runner: QueryRunner,
    tables: StoreTables,
    scope: Scope,
    window: TimeRange,
    column: ValueColumn,
    limit: int,
    condition: SpanFilter | None = None,
    caller: CallerWatch | None = None,
) -> list[str]:
    """The distinct non-empty values of a span column (the span name, the status message...), sorted."""
    select = Select(tables.spans, scope, window, limit=limit)
    select.where(f"{column} != ''")
    if condition is not None:
        select.where(spanfilter.to_sql(condition, select))
    query = select.build([f"{column} AS Value"], group_by=["Value"], order_by=["Value"])
    return [record["Value"] for record in await runner.run(query, caller)]
