"""Conversations: the ``gen_ai.conversation.id`` values of ``genai_calls`` with their totals, newest activity first.

``ConversationSummary`` is a conversation at a glance (calls, errors,
tokens, cost, first and last call, models, services, traces), whether it was
summed here in SQL for a listing (``list_conversations``) or from the calls
of one conversation (``summarise_calls``), so both answer with the same fields.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from collector.extensions.api.params import format_timestamp
from collector.extensions.api.query.calls import CallRecord
from collector.extensions.api.query.cursor import Cursor
from collector.extensions.api.query.runner import QueryRunner, Record
from collector.extensions.api.query.sql import Scope, Select, TimeRange
from collector.extensions.api.query.stats import TOKEN_COLUMNS
from collector.extensions.api.query.tables import StoreTables
from collector.extensions.caller import CallerWatch

# A conversation id is free text; this hash of it orders conversations whose last calls share an instant.
CONVERSATION_KEY = "lower(hex(sipHash64(ConversationId)))"
LAST_NANOS = "toUnixTimestamp64Nano(max(Timestamp))"
CONVERSATION_COLUMNS: tuple[str, ...] = (
    "ConversationId",
    f"{CONVERSATION_KEY} AS ConversationKey",
    "count() AS Calls",
    "countIf(StatusCode = 'Error') AS Errors",
    *(f"sum({column}) AS {column}" for column in TOKEN_COLUMNS.values()),
    "sum(Cost) AS Cost",
    "toUnixTimestamp64Nano(min(Timestamp)) AS FirstNanos",
    f"{LAST_NANOS} AS LastNanos",
    "arraySort(groupUniqArrayIf(RequestModel, RequestModel != '')) AS Models",
    "arraySort(groupUniqArray(ServiceName)) AS Services",
    "uniqExact(TraceId) AS TraceCount",
)


@dataclass(frozen=True)
class ConversationSummary:
    """One conversation's calls summed; times in Unix nanoseconds, tokens by type as ``Tokens`` names them."""

    conversation_id: str
    calls: int
    errors: int
    tokens: dict[str, int]
    cost: float
    first_ns: int
    last_ns: int
    models: tuple[str, ...]
    services: tuple[str, ...]
    trace_count: int

    def to_json(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "errors": self.errors,
            "tokens": dict(self.tokens),
            "cost_usd": self.cost,
            "first": format_timestamp(self.first_ns),
            "last": format_timestamp(self.last_ns),
            "models": list(self.models),
            "services": list(self.services),
            "trace_count": self.trace_count,
        }


def summarise_calls(conversation_id: str, calls: Sequence[CallRecord]) -> ConversationSummary:
    """The summary of one conversation from its calls (at least one, oldest first)."""
    return ConversationSummary(
        conversation_id=conversation_id,
        calls=len(calls),
        errors=sum(1 for record in calls if record.status == "Error"),
        tokens={
            "input": sum(record.input_tokens for record in calls),
            "output": sum(record.output_tokens for record in calls),
            "cache_read": sum(record.cache_read_tokens for record in calls),
            "cache_creation": sum(record.cache_creation_tokens for record in calls),
            "reasoning": sum(record.reasoning_tokens for record in calls),
        },
        cost=sum(record.cost for record in calls),
        first_ns=calls[0].start_ns,
        last_ns=calls[-1].start_ns,
        models=tuple(sorted({record.request_model for record in calls if record.request_model})),
        services=tuple(sorted({record.service for record in calls})),
        trace_count=len({record.trace_id for record in calls}),
    )


def _summary(record: Record) -> ConversationSummary:
    return ConversationSummary(
        conversation_id=record["ConversationId"],
        calls=int(record["Calls"]),
        errors=int(record["Errors"]),
        tokens={name: int(record[column]) for name, column in TOKEN_COLUMNS.items()},
        cost=float(record["Cost"]),
        first_ns=int(record["FirstNanos"]),
        last_ns=int(record["LastNanos"]),
        models=tuple(record["Models"]),
        services=tuple(record["Services"]),
        trace_count=int(record["TraceCount"]),
    )


@dataclass(frozen=True)
class ConversationPage:
    conversations: list[ConversationSummary]
    next_cursor: str | None


async def list_conversations(
    runner: QueryRunner,
    tables: StoreTables,
    scope: Scope,
    window: TimeRange,
    limit: int,
    service: str | None = None,
    cursor: Cursor | None = None,
    caller: CallerWatch | None = None,
) -> ConversationPage:
    """A page of at most ``limit`` conversations with calls in ``window``, the latest call newest first.

    Totals count the calls inside the window only.
    """
    select = Select(tables.calls, scope, window, limit=limit + 1)
    select.where("ConversationId != ''")
    if service is not None:
        select.where(f"ServiceName = {select.bind(service, 'String')}")
    having = []
    if cursor is not None:
        last, key = select.bind(cursor.time_ns, "Int64"), select.bind(cursor.id, "String")
        having.append(f"({LAST_NANOS}, {CONVERSATION_KEY}) < ({last}, {key})")
    query = select.build(
        CONVERSATION_COLUMNS,
        group_by=["ConversationId"],
        having=having,
        order_by=["LastNanos DESC", "ConversationKey DESC"],
    )
    records = await runner.run(query, caller)
    page = records[:limit]
    more = len(records) > limit
    next_cursor = Cursor(int(page[-1]["LastNanos"]), page[-1]["ConversationKey"]).encode() if more else None
    return ConversationPage([_summary(record) for record in page], next_cursor)
