"""The one way the read side writes SQL: a SELECT over one store table, bounded in time and rows, scoped to a tenant.

Nothing a caller sends becomes SQL text. Values go in as ``{name:Type}``
placeholders that the engine fills (``Params.bind``); the text around them is
this package's own. A ``Select`` cannot be made without

- a ``Scope``: the tenant a key is bound to (its predicate is added here, once,
  for every table: a route cannot forget it), or ``Scope.everything()``;
- a window: a ``TimeRange``, or ``TraceWindow`` (the times of given traces,
  read from the trace-id lookup table), turned into a predicate on the table's
  time column so partitions outside it are never read;
- a row limit, written as ``LIMIT`` into the outermost query (``build``
  refuses a select without one; a subquery feeding ``IN`` may go without,
  as the outer query's limit and its own window bound it).

Conditions are added with ``where`` as SQL text written by the read side with
every value bound through the select's ``params``; a subquery (``subquery``)
shares the params and takes its own scope, window and limit, so it is bounded
the same way. ``build`` gives the ``BuiltQuery`` the runner executes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from collector.extensions.access import Principal

NANOS_PER_SECOND = 1_000_000_000
TimeUnit = Literal["nanoseconds", "seconds"]


@dataclass(frozen=True)
class Scope:
    """Whose data a query may read: one tenant's, or (``tenant`` None) everyone's."""

    tenant: str | None

    @classmethod
    def of(cls, principal: Principal) -> Scope:
        return cls(principal.tenant)

    @classmethod
    def everything(cls) -> Scope:
        """Every tenant: for keys bound to none, and the collector's own reads."""
        return cls(None)

    def admits(self, tenant: str) -> bool:
        """Whether a row of ``tenant`` is visible in this scope (for data that does not come through SQL)."""
        return self.tenant is None or self.tenant == tenant


@dataclass(frozen=True)
class Table:
    """A store table as the read side queries it: its name, its time column, and how a row names its tenant."""

    name: str  # qualified: `database`.`table`
    time_column: str
    time_unit: TimeUnit
    tenant: str  # SQL expression over the row


class Params:
    """The values a query's placeholders stand for; names are generated, so fragments never collide."""

    def __init__(self) -> None:
        self._values: dict[str, Any] = {}

    def bind(self, value: Any, clickhouse_type: str) -> str:
        """A placeholder for ``value`` as ``clickhouse_type`` (String, Int64, Float64, Array(String)...)."""
        name = f"p{len(self._values)}"
        self._values[name] = value
        return "{" + name + ":" + clickhouse_type + "}"

    def values(self) -> dict[str, Any]:
        return dict(self._values)


@dataclass(frozen=True)
class TimeRange:
    """From ``start_ns`` (included) to ``end_ns`` (excluded), in Unix nanoseconds."""

    start_ns: int
    end_ns: int

    def condition(self, table: Table, params: Params) -> str:
        column = table.time_column
        if table.time_unit == "seconds":
            start = params.bind(self.start_ns // NANOS_PER_SECOND, "Int64")
            end = params.bind(-(-self.end_ns // NANOS_PER_SECOND), "Int64")
            return f"{column} >= toDateTime({start}) AND {column} < toDateTime({end})"
        start = params.bind(self.start_ns, "Int64")
        end = params.bind(self.end_ns, "Int64")
        return f"{column} >= fromUnixTimestamp64Nano({start}) AND {column} < fromUnixTimestamp64Nano({end})"


@dataclass(frozen=True)
class TraceWindow:
    """The times the given traces span, from the trace-id lookup table (min Start, max End, whole seconds).

    The lookup table is ordered by trace id, so this reads a few granules,
    and the outer query then reads only the partitions the traces live in.
    Traces it does not know give an empty window.
    """

    trace_ids: tuple[str, ...]
    lookup_table: str  # qualified name of <traces>_trace_id_ts

    def condition(self, table: Table, params: Params) -> str:
        ids = params.bind(list(self.trace_ids), "Array(String)")
        # One scalar subquery, named where it first appears (ClickHouse aliases hold anywhere in a query,
        # and the name of its parameter keeps it unique); the engine runs it before planning, so the
        # bounds prune partitions as constants would.
        alias = "TraceBounds_" + ids[1 : ids.index(":")]
        bounds = f"((SELECT (min(Start), max(End)) FROM {self.lookup_table} WHERE TraceId IN {ids}) AS {alias})"
        column = table.time_column
        # End is max(Timestamp) cut to the second: the last span started before End + 1s.
        return (
            f"{column} >= toDateTime64(tupleElement({bounds}, 1), 9)"
            f" AND {column} < toDateTime64(tupleElement({alias}, 2), 9) + toIntervalSecond(1)"
        )


Window = TimeRange | TraceWindow


@dataclass(frozen=True)
class BuiltQuery:
    """SQL text and the values of its placeholders: what the runner hands to the store's query pool."""

    sql: str
    parameters: Mapping[str, Any]


@dataclass
class Select:
    """A SELECT being built; see the module docstring."""

    table: Table
    scope: Scope
    window: Window
    limit: int | None
    params: Params = field(default_factory=Params)
    _conditions: list[str] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        if self.limit is not None and self.limit < 1:
            raise ValueError("a row limit must be at least 1")
        self._conditions.append(self.window.condition(self.table, self.params))
        if self.scope.tenant is not None:
            self._conditions.append(f"{self.table.tenant} = {self.params.bind(self.scope.tenant, 'String')}")

    def bind(self, value: Any, clickhouse_type: str) -> str:
        return self.params.bind(value, clickhouse_type)

    def where(self, *conditions: str) -> Select:
        """AND each condition (SQL the read side wrote, values bound through ``bind``) into the WHERE clause."""
        self._conditions.extend(f"({condition})" for condition in conditions)
        return self

    def subquery(self, table: Table, window: Window | None = None, limit: int | None = None) -> Select:
        """A Select sharing this one's params and scope (and, unless given, its window), for ``IN (...)``."""
        return Select(table, self.scope, window or self.window, limit, self.params)

    def sql(
        self,
        columns: Sequence[str],
        *,
        group_by: Sequence[str] = (),
        having: Sequence[str] = (),
        order_by: Sequence[str] = (),
        limit_by: str = "",
        offset: int = 0,
    ) -> str:
        """The SELECT statement's text (for embedding as a subquery, or through ``build``)."""
        parts = [f"SELECT {', '.join(columns)}", f"FROM {self.table.name}", "WHERE " + " AND ".join(self._conditions)]
        if group_by:
            parts.append("GROUP BY " + ", ".join(group_by))
        if having:
            parts.append("HAVING " + " AND ".join(f"({condition})" for condition in having))
        if order_by:
            parts.append("ORDER BY " + ", ".join(order_by))
        if limit_by:
            parts.append(limit_by)
        if self.limit is not None:
            parts.append(f"LIMIT {int(self.limit)}" + (f" OFFSET {int(offset)}" if offset else ""))
        return "\n".join(parts)

    def build(
        self,
        columns: Sequence[str],
        *,
        group_by: Sequence[str] = (),
        having: Sequence[str] = (),
        order_by: Sequence[str] = (),
        limit_by: str = "",
        offset: int = 0,
    ) -> BuiltQuery:
        if self.limit is None:
            raise ValueError("the outermost query needs a row limit")
        sql = self.sql(columns, group_by=group_by, having=having, order_by=order_by, limit_by=limit_by, offset=offset)
        return BuiltQuery(sql, self.params.values())
