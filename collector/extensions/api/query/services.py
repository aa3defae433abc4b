"""Services: the ``service.name`` values that sent spans in a window, with their span and LLM call counts."""

from __future__ import annotations

from dataclasses import dataclass

from collector.extensions.api.query.runner import QueryRunner
from collector.extensions.api.query.sql import Scope, Select, TimeRange
from collector.extensions.api.query.tables import StoreTables
from collector.extensions.caller import CallerWatch
from exporters.clickhouse.genai_schema import model_call_condition


@dataclass(frozen=True)
class ServiceRecord:
    name: str
    span_count: int
    llm_calls: int


async def list_services(
    runner: QueryRunner,
    tables: StoreTables,
    scope: Scope,
    window: TimeRange,
    limit: int,
    caller: CallerWatch | None = None,
) -> tuple[list[ServiceRecord], bool]:
    """The services with spans in ``window`` visible in ``scope``, by name; True when more than ``limit``."""
    select = Select(tables.spans, scope, window, limit=limit + 1)
    query = select.build(
        ["ServiceName", "count() AS SpanCount", f"countIf({model_call_condition()}) AS LlmCalls"],
        group_by=["ServiceName"],
        order_by=["ServiceName"],
    )
    records = await runner.run(query, caller)
    services = [
        ServiceRecord(record["ServiceName"], int(record["SpanCount"]), int(record["LlmCalls"]))
        for record in records[:limit]
    ]
    return services, len(records) > limit
