"""GenAI content recorded as log events, joined at read time to the call (span) it belongs to.

Instrumentations that keep prompts and replies off the span send them as log
records parented to it (same trace and span id): the conventions'
``gen_ai.client.inference.operation.details`` event (its attributes hold the
input and output messages and system instructions, in the same JSON shape the
span attributes have), or, in older conventions (opentelemetry-instrumentation-
openai-v2's default), one event per message: ``gen_ai.system.message``,
``gen_ai.user.message``, ``gen_ai.assistant.message``, ``gen_ai.tool.message``
and ``gen_ai.choice``, each with the message in its body.

The store keeps those records once, in the logs table, as they arrived; the
read side meets them with their span by (TraceId, SpanId) whenever it shows a
call, so it does not matter which came first, in which batch or through which
process (docs/architecture.md, "GenAI events and their spans"). ``call_content``
reads the records of given spans and turns them into the span attributes the
conventions define (``gen_ai.input.messages``, ``gen_ai.output.messages``,
``gen_ai.system_instructions``), older per-message bodies converted to the
newest message shape as genai_normalize converts them (or read from the attribute
that processor put them in); a call whose span already carries an attribute keeps it.
``calls_content`` gives calls (genai_calls rows) their content the same way,
from their spans' attributes and their events.

Visibility follows the span: records are read only for spans the caller's scope
already let through (the span subquery carries the scope), so a tenant-bound key
sees a call's content exactly when it sees the call.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from collector import semconv
from collector.extensions.api.query.runner import QueryRunner, Record
from collector.extensions.api.query.sql import Scope, Select, TimeRange
from collector.extensions.api.query.tables import StoreTables
from collector.extensions.caller import CallerWatch
from collector.jsonvalues import dump_json, parse_json
from processors.genai_normalize.events import INFERENCE_DETAILS_EVENT, MESSAGE_EVENT_ROLES, event_content

# The content events: the newest conventions' one per call, and the older ones per message (the choice among them).
CONTENT_EVENTS: tuple[str, ...] = (INFERENCE_DETAILS_EVENT, *MESSAGE_EVENT_ROLES)
CONTENT_ATTRIBUTES: tuple[str, ...] = (semconv.INPUT_MESSAGES, semconv.OUTPUT_MESSAGES, semconv.SYSTEM_INSTRUCTIONS)
# Content events are emitted while their call runs, or just after; read this much around the calls' own times.
EVENT_TIME_MARGIN_NS = 60 * 1_000_000_000
# At most this many content records are read per question (a call's messages each make one in older conventions).
MAX_CONTENT_RECORDS = 10_000

# A span as (trace id, span id), hex, as the tables hold them.
SpanKey = tuple[str, str]


@dataclass
class _Gathered:
    """What the records of one span say, before it becomes attributes."""

    details: dict[str, str] = field(default_factory=dict)  # from operation.details: attribute -> JSON text
    inputs: list[dict[str, Any]] = field(default_factory=list)
    outputs: list[tuple[int, dict[str, Any]]] = field(default_factory=list)  # (choice index, message)

    def attributes(self) -> dict[str, str]:
        found = dict(self.details)
        outputs = [message for _, message in sorted(self.outputs, key=_index)]
        # Events recorded with content capture off name the roles only: that is no content to show.
        if _has_content(self.inputs) and semconv.INPUT_MESSAGES not in found:
            found[semconv.INPUT_MESSAGES] = dump_json(self.inputs)
        if _has_content(outputs) and semconv.OUTPUT_MESSAGES not in found:
            found[semconv.OUTPUT_MESSAGES] = dump_json(outputs)
        return found


def _has_content(messages: list[dict[str, Any]]) -> bool:
    return any(message.get("parts") for message in messages)


def _index(entry: tuple[int, dict[str, Any]]) -> int:
    return entry[0]


async def call_content(
    runner: QueryRunner,
    tables: StoreTables,
    scope: Scope,
    spans: Iterable[SpanKey],
    window: TimeRange,
    caller: CallerWatch | None = None,
) -> dict[SpanKey, dict[str, str]]:
    """The content attributes the log events of ``spans`` give them, by span; ``window`` is the calls' times.

    A span the scope does not let through gets nothing, whatever records name it. The records are looked up
    by trace (the ids of a page, not of its every span, go into the query) and kept for ``spans``; at most
    MAX_CONTENT_RECORDS of them are read.
    """
    keys = set(spans)
    if not keys or not tables.has_signal_tables:
        return {}
    wide = TimeRange(window.start_ns - EVENT_TIME_MARGIN_NS, window.end_ns + EVENT_TIME_MARGIN_NS)
    # Every tenant's records, but only those of spans the caller's scope shows (the subquery carries the scope).
    select = Select(tables.logs, Scope.everything(), wide, limit=MAX_CONTENT_RECORDS)
    trace_ids = select.bind(sorted({trace for trace, _ in keys}), "Array(String)")
    visible = Select(tables.spans, scope, wide, None, select.params).where(f"TraceId IN {trace_ids}")
    select.where(
        f"TraceId IN {trace_ids}",
        f"EventName IN {select.bind(list(CONTENT_EVENTS), 'Array(String)')}",
        f"(TraceId, SpanId) IN ({visible.sql(['TraceId', 'SpanId'])})",
    )
    names = select.bind(list(CONTENT_ATTRIBUTES), "Array(String)")
    columns = [
        "TraceId",
        "SpanId",
        "EventName",
        "Body",
        f"mapFilter((key, value) -> has({names}, key), LogAttributes) AS ContentAttributes",
    ]
    records = await runner.run(select.build(columns, order_by=["TraceId", "SpanId", "Timestamp"]), caller)
    found = assemble(records)
    return {key: attributes for key, attributes in found.items() if key in keys}


def assemble(records: Sequence[Record]) -> dict[SpanKey, dict[str, str]]:
    """Content attributes by span from content records in time order (see the module docstring)."""
    gathered: dict[SpanKey, _Gathered] = {}
    for record in records:
        into = gathered.setdefault((record["TraceId"], record["SpanId"]), _Gathered())
        name = record["EventName"]
        attributes: Mapping[str, str] = record["ContentAttributes"]
        if name == INFERENCE_DETAILS_EVENT:
            into.details.update({key: attributes[key] for key in CONTENT_ATTRIBUTES if attributes.get(key)})
            continue
        body = parse_json(record["Body"]) if record["Body"] else None
        if not isinstance(body, dict):
            body = {}
        target, value = event_content(name, body)
        # A record genai_normalize mapped forward carries this as that attribute, its body emptied.
        carried = parse_json(attributes[target]) if attributes.get(target) else None
        items = [item for item in carried if isinstance(item, dict)] if isinstance(carried, list) else value
        if target == semconv.OUTPUT_MESSAGES:
            index = body.get("index")
            at = index if isinstance(index, int) else len(into.outputs)
            into.outputs.extend((at, item) for item in items)
        else:
            into.inputs.extend(items)
    return {key: attributes for key, found in gathered.items() if (attributes := found.attributes())}


def add_content(rows: Iterable[Record], content: Mapping[SpanKey, Mapping[str, str]]) -> None:
    """Give span rows (SPAN_SELECT's) the content attributes their events gave them, where they have none of
    their own: what the span itself says wins."""
    for row in rows:
        joined = content.get((row["TraceId"], row["SpanId"]))
        if joined:
            row["SpanAttributes"] = {**joined, **row["SpanAttributes"]}


async def span_content(
    runner: QueryRunner,
    tables: StoreTables,
    scope: Scope,
    spans: Iterable[SpanKey],
    window: TimeRange,
    caller: CallerWatch | None = None,
) -> dict[SpanKey, dict[str, str]]:
    """The content attributes ``spans`` carry themselves (those ``scope`` shows), by span; ``window`` holds them."""
    keys = sorted(set(spans))
    if not keys:
        return {}
    select = Select(tables.spans, scope, window, limit=len(keys))
    names = select.bind(list(CONTENT_ATTRIBUTES), "Array(String)")
    select.where(
        f"TraceId IN {select.bind(sorted({trace for trace, _ in keys}), 'Array(String)')}",
        f"(TraceId, SpanId) IN {select.bind(keys, 'Array(Tuple(String, String))')}",
    )
    content = f"mapFilter((key, value) -> has({names}, key), SpanAttributes) AS Content"
    records = await runner.run(select.build(["TraceId", "SpanId", content]), caller)
    return {(record["TraceId"], record["SpanId"]): dict(record["Content"]) for record in records if record["Content"]}


async def calls_content(
    runner: QueryRunner,
    tables: StoreTables,
    scope: Scope,
    spans: Sequence[SpanKey],
    window: TimeRange,
    caller: CallerWatch | None = None,
) -> dict[SpanKey, dict[str, Any]]:
    """Each call's content, wherever it was recorded: its span's attributes, else its log events; the values are
    the conventions' JSON (parsed), by attribute name. ``window`` holds the calls' spans."""
    on_spans, from_events = await asyncio.gather(
        span_content(runner, tables, scope, spans, window, caller),
        call_content(runner, tables, scope, spans, window, caller),
    )
    joined: dict[SpanKey, dict[str, Any]] = {}
    for key in spans:
        texts = {**from_events.get(key, {}), **on_spans.get(key, {})}
        joined[key] = {name: _decoded(text) for name, text in texts.items()}
    return joined


def _decoded(text: str) -> Any:
    decoded = parse_json(text)
    return text if decoded is None else decoded
