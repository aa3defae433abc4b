"""Findings: rows of ``genai_findings`` (one per ``gen_ai.security.finding`` event), filtered and paged newest first.

``FindingRecord`` is a finding as the API shows it, read from the table or
seen passing the pipeline (the live stream), with its detector's extra
attributes as the strings the store keeps.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from collector import findings
from collector.extensions.api.params import format_timestamp
from collector.extensions.api.query.cursor import Cursor
from collector.extensions.api.query.filters import severity_rank_sql
from collector.extensions.api.query.runner import QueryRunner, Record
from collector.extensions.api.query.sql import Scope, Select, TimeRange
from collector.extensions.api.query.tables import StoreTables
from collector.extensions.caller import CallerWatch

# A finding has no id of its own; this hash of what it says orders findings at the same instant.
FINDING_ID = "lower(hex(sipHash64(SpanId, Detector, Category, Severity, Confidence, toString(Attributes))))"
FINDING_COLUMNS: tuple[str, ...] = (
    "toUnixTimestamp64Nano(Timestamp) AS StartNanos",
    f"{FINDING_ID} AS FindingId",
    "TraceId",
    "SpanId",
    "ServiceName",
    "Tenant",
    "Detector",
    "Category",
    "Severity",
    "Confidence",
    "Attributes",
)


@dataclass(frozen=True)
class FindingRecord:
    time_ns: int
    trace_id: str
    span_id: str
    service: str
    tenant: str
    detector: str
    category: str
    severity: str
    confidence: float
    attributes: Mapping[str, str]

    def to_json(self) -> dict[str, Any]:
        return {
            "time": format_timestamp(self.time_ns),
            "trace_id": self.trace_id,
            "span_id": self.span_id,
            "service": self.service,
            "tenant": self.tenant,
            "detector": self.detector,
            "category": self.category,
            "severity": self.severity,
            "confidence": self.confidence,
            "attributes": dict(self.attributes),
        }


def finding_from_record(record: Record) -> FindingRecord:
    return FindingRecord(
        time_ns=int(record["StartNanos"]),
        trace_id=record["TraceId"],
        span_id=record["SpanId"],
        service=record["ServiceName"],
        tenant=record["Tenant"],
        detector=record["Detector"],
        category=record["Category"],
        severity=record["Severity"],
        confidence=float(record["Confidence"]),
        attributes=dict(record["Attributes"]),
    )


@dataclass(frozen=True)
class FindingFilters:
    service: str | None = None
    tenant: str | None = None
    min_severity: str | None = None
    category: str | None = None
    detector: str | None = None
    trace_ids: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class FindingPage:
    findings: list[FindingRecord]
    next_cursor: str | None


def finding_conditions(select: Select, filters: FindingFilters) -> list[str]:
    bind = select.bind
    conditions = [
        f"{column} = {bind(value, 'String')}"
        for column, value in (
            ("ServiceName", filters.service),
            ("Tenant", filters.tenant),
            ("Category", filters.category),
            ("Detector", filters.detector),
        )
        if value is not None
    ]
    if filters.min_severity is not None:
        rank = findings.SEVERITY_RANK[filters.min_severity]
        conditions.append(f"{severity_rank_sql('Severity')} >= {bind(rank, 'UInt8')}")
    if filters.trace_ids:
        conditions.append(f"TraceId IN {bind(list(filters.trace_ids), 'Array(String)')}")
    return conditions


async def list_findings(
    runner: QueryRunner,
    tables: StoreTables,
    scope: Scope,
    window: TimeRange,
    filters: FindingFilters,
    limit: int,
    cursor: Cursor | None = None,
    caller: CallerWatch | None = None,
) -> FindingPage:
    """A page of at most ``limit`` findings matching ``filters`` in ``window``, newest first."""
    if cursor is not None:
        window = TimeRange(window.start_ns, min(window.end_ns, cursor.time_ns + 1))
    select = Select(tables.findings, scope, window, limit=limit + 1)
    select.where(*finding_conditions(select, filters))
    if cursor is not None:
        time, item = select.bind(cursor.time_ns, "Int64"), select.bind(cursor.id, "String")
        select.where(f"(toUnixTimestamp64Nano(Timestamp), {FINDING_ID}) < ({time}, {item})")
    records = await runner.run(select.build(FINDING_COLUMNS, order_by=["Timestamp DESC", "FindingId DESC"]), caller)
    page = records[:limit]
    next_cursor = Cursor(int(page[-1]["StartNanos"]), page[-1]["FindingId"]).encode() if len(records) > limit else None
    return FindingPage([finding_from_record(record) for record in page], next_cursor)


async def conversation_findings(
    runner: QueryRunner,
    tables: StoreTables,
    scope: Scope,
    window: TimeRange,
    conversation: str,
    limit: int,
    caller: CallerWatch | None = None,
) -> tuple[list[FindingRecord], bool]:
    """The findings on the calls of one conversation, oldest first; True when there were more than ``limit``."""
    select = Select(tables.findings, scope, window, limit=limit + 1)
    calls = select.subquery(tables.calls)
    calls.where(f"ConversationId = {calls.bind(conversation, 'String')}")
    select.where(f"(TraceId, SpanId) IN ({calls.sql(['TraceId', 'SpanId'])})")
    records = await runner.run(select.build(FINDING_COLUMNS, order_by=["Timestamp", "FindingId"]), caller)
    return [finding_from_record(record) for record in records[:limit]], len(records) > limit
