"""The filters a search takes, and what each means as SQL on the spans table and on ``genai_calls``.

One ``Filters`` value serves trace search, call listing and the live stream,
so "model" or "tenant" means the same everywhere:

- ``model`` matches the requested or the responding model;
- ``tenant`` is the span's ``tenant.id``, else its resource's;
- ``has_findings`` / ``min_severity`` look at the span's finding summary
  (``gen_ai.security.findings.count`` and ``.max_severity``);
- ``error`` is an ``Error`` status; durations are the span's (the call's);
- ``attributes`` are equalities, each met by a span or a resource attribute.

On spans, a trace matches when one of its spans meets every filter given
(as Jaeger's search does). On calls, the call itself must meet them; the
filters only a span holds (span name, attributes, severity) are checked on
the call's span through a subquery on the spans table, in the same window.
"""

from __future__ import annotations

from dataclasses import dataclass

from collector import findings, semconv
from collector.extensions.api.query.sql import Select, Table

SEVERITIES: tuple[str, ...] = tuple(sorted(findings.SEVERITY_RANK, key=findings.SEVERITY_RANK.__getitem__))


def _sql_strings(values: tuple[str, ...]) -> str:
    return "[" + ", ".join(f"'{value}'" for value in values) + "]"


def severity_rank_sql(expression: str) -> str:
    """The rank (1 low .. 4 critical, 0 none) of a severity name held by ``expression``."""
    ranks = [findings.SEVERITY_RANK[name] for name in SEVERITIES]
    return f"transform({expression}, {_sql_strings(SEVERITIES)}, {ranks}, 0)"


def span_attribute(key: str) -> str:
    """A span attribute by a constant name the read side knows (never a caller's)."""
    return f"SpanAttributes['{key}']"


SPAN_MAX_SEVERITY_RANK = severity_rank_sql(span_attribute(findings.FINDINGS_MAX_SEVERITY))
SPAN_FINDING_COUNT = f"toUInt32OrZero({span_attribute(findings.FINDINGS_COUNT)})"


@dataclass(frozen=True)
class Filters:
    """What a search is narrowed to; None (or empty) leaves a dimension open."""

    service: str | None = None
    span_name: str | None = None
    model: str | None = None
    provider: str | None = None
    operation: str | None = None
    tenant: str | None = None
    conversation: str | None = None
    has_findings: bool | None = None
    min_severity: str | None = None
    error: bool | None = None
    min_duration_ns: int | None = None
    max_duration_ns: int | None = None
    attributes: tuple[tuple[str, str], ...] = ()

    @property
    def needs_spans(self) -> bool:
        """Whether a call can only be checked against these on its span (see ``call_conditions``)."""
        return bool(self.span_name is not None or self.min_severity is not None or self.attributes)


def span_conditions(select: Select, filters: Filters) -> list[str]:
    """The filters as conditions on the spans table, values bound through ``select``."""
    bind = select.bind
    conditions: list[str] = []
    if filters.service is not None:
        conditions.append(f"ServiceName = {bind(filters.service, 'String')}")
    if filters.span_name is not None:
        conditions.append(f"SpanName = {bind(filters.span_name, 'String')}")
    if filters.model is not None:
        model = bind(filters.model, "String")
        conditions.append(
            f"{span_attribute(semconv.REQUEST_MODEL)} = {model} OR {span_attribute(semconv.RESPONSE_MODEL)} = {model}"
        )
    if filters.provider is not None:
        conditions.append(f"{span_attribute(semconv.PROVIDER_NAME)} = {bind(filters.provider, 'String')}")
    if filters.operation is not None:
        conditions.append(f"{span_attribute(semconv.OPERATION_NAME)} = {bind(filters.operation, 'String')}")
    if filters.tenant is not None:
        conditions.append(f"{select.table.tenant} = {bind(filters.tenant, 'String')}")
    if filters.conversation is not None:
        conditions.append(f"{span_attribute(semconv.CONVERSATION_ID)} = {bind(filters.conversation, 'String')}")
    if filters.has_findings is not None:
        conditions.append(f"{SPAN_FINDING_COUNT} {'>' if filters.has_findings else '='} 0")
    if filters.min_severity is not None:
        rank = findings.SEVERITY_RANK[filters.min_severity]
        conditions.append(f"{SPAN_MAX_SEVERITY_RANK} >= {bind(rank, 'UInt8')}")
    if filters.error is not None:
        conditions.append(f"StatusCode {'=' if filters.error else '!='} 'Error'")
    conditions.extend(_duration_conditions(select, filters))
    for key, value in filters.attributes:
        name, text = bind(key, "String"), bind(value, "String")
        conditions.append(
            f"(mapContains(SpanAttributes, {name}) AND SpanAttributes[{name}] = {text})"
            f" OR (mapContains(ResourceAttributes, {name}) AND ResourceAttributes[{name}] = {text})"
        )
    return conditions


def call_conditions(select: Select, filters: Filters, spans: Table) -> list[str]:
    """The filters as conditions on ``genai_calls``; ``spans`` answers those only a span holds."""
    bind = select.bind
    conditions: list[str] = []
    for column, value in (
        ("ServiceName", filters.service),
        ("Provider", filters.provider),
        ("Operation", filters.operation),
        ("Tenant", filters.tenant),
        ("ConversationId", filters.conversation),
    ):
        if value is not None:
            conditions.append(f"{column} = {bind(value, 'String')}")
    if filters.model is not None:
        model = bind(filters.model, "String")
        conditions.append(f"RequestModel = {model} OR ResponseModel = {model}")
    if filters.has_findings is not None:
        conditions.append(f"FindingCount {'>' if filters.has_findings else '='} 0")
    if filters.error is not None:
        conditions.append(f"StatusCode {'=' if filters.error else '!='} 'Error'")
    conditions.extend(_duration_conditions(select, filters))
    if filters.needs_spans:
        on_span = Filters(span_name=filters.span_name, min_severity=filters.min_severity, attributes=filters.attributes)
        subquery = select.subquery(spans)
        subquery.where(*span_conditions(subquery, on_span))
        conditions.append(f"(TraceId, SpanId) IN ({subquery.sql(['TraceId', 'SpanId'])})")
    return conditions


def _duration_conditions(select: Select, filters: Filters) -> list[str]:
    conditions = []
    if filters.min_duration_ns is not None:
        conditions.append(f"Duration >= {select.bind(filters.min_duration_ns, 'UInt64')}")
    if filters.max_duration_ns is not None:
        conditions.append(f"Duration <= {select.bind(filters.max_duration_ns, 'UInt64')}")
    return conditions
