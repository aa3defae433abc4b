"""Service dependencies: which service called which, and how often, computed from the spans of a window.

A call from service A to service B is a span of B whose parent span is A's,
in the same trace; each such span counts once, as Jaeger counts them when it
derives dependencies from stored spans. Only spans visible in the caller's
scope take part, so a tenant sees the edges between its own spans.

The spans of each trace are gathered per trace (ids, parents, services), and
the edges read off those arrays: one pass over the window, no self-join.
"""

from __future__ import annotations

from dataclasses import dataclass

from collector.extensions.api.query.runner import QueryRunner
from collector.extensions.api.query.sql import BuiltQuery, Scope, Select, TimeRange
from collector.extensions.api.query.tables import StoreTables
from collector.extensions.caller import CallerWatch

# Traces one dependencies answer reads, and the edges it returns at most.
MAX_DEPENDENCY_TRACES = 1_000_000
MAX_DEPENDENCY_EDGES = 10_000


@dataclass(frozen=True)
class Dependency:
    parent: str
    child: str
    call_count: int


async def dependencies(
    runner: QueryRunner,
    tables: StoreTables,
    scope: Scope,
    window: TimeRange,
    caller: CallerWatch | None = None,
) -> list[Dependency]:
    """The service-to-service calls in ``window``, by parent then child service."""
    traces = Select(tables.spans, scope, window, limit=MAX_DEPENDENCY_TRACES)
    per_trace = traces.sql(
        [
            "groupArray(SpanId) AS Ids",
            "groupArray(ParentSpanId) AS Parents",
            "groupArray(ServiceName) AS Services",
        ],
        group_by=["TraceId"],
    )
    sql = f"""SELECT Parent, Child, count() AS CallCount FROM (
    SELECT Services[indexOf(Ids, ParentId)] AS Parent, Service AS Child
    FROM ({per_trace})
    ARRAY JOIN Parents AS ParentId, Services AS Service
    WHERE ParentId != '' AND indexOf(Ids, ParentId) > 0
)
WHERE Parent != Child
GROUP BY Parent, Child
ORDER BY Parent, Child
LIMIT {int(MAX_DEPENDENCY_EDGES)}"""
    records = await runner.run(BuiltQuery(sql, traces.params.values()), caller)
    return [Dependency(record["Parent"], record["Child"], int(record["CallCount"])) for record in records]
