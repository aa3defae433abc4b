"""REST /api/v1: traces, calls, stats, findings, evaluations, conversations and services, as JSON.

Each endpoint is declared once (collector.extensions.api.endpoints): its
parameters come from the shared declarations below, so ``model`` or
``start`` reads and documents the same everywhere, and the OpenAPI document
(collector.extensions.api.openapi) is made from the same list. Times in
answers are RFC 3339 in UTC with up to nanoseconds, durations milliseconds,
costs US dollars.
"""

from __future__ import annotations

from typing import Any

import orjson

from collector.extensions.api import schemas
from collector.extensions.api.context import ApiContext
from collector.extensions.api.endpoints import ApiCall, Endpoint
from collector.extensions.api.errors import NotFound
from collector.extensions.api.params import (
    NANOS_PER_MILLISECOND,
    Parameter,
    choice_parser,
    choices_list_parser,
    format_timestamp,
    hex_id_parser,
    integer_parser,
    pair_parser,
    parse_boolean,
    parse_duration,
    parse_timestamp,
    text_parser,
)
from collector.extensions.api.query.calls import conversation_calls, list_calls
from collector.extensions.api.query.conversations import list_conversations, summarise_calls
from collector.extensions.api.query.cursor import Cursor
from collector.extensions.api.query.evaluations import (
    EvaluationFilters,
    evaluation_hours,
    evaluations_since,
    worst_evaluations,
)
from collector.extensions.api.query.filters import SEVERITIES, Filters
from collector.extensions.api.query.findings import FindingFilters, conversation_findings, list_findings
from collector.extensions.api.query.services import list_services
from collector.extensions.api.query.stats import BUCKET_FUNCTIONS, GROUP_COLUMNS, StatsQuery, call_stats
from collector.extensions.api.query.traces import TraceSummary, fetch_trace, search_traces
from collector.receivers.otlp.codec import encode_otlp_json

PREFIX = "/api/v1"
MAX_TEXT_CHARS = 1024
TRACE_ID_HEX_CHARS = 32
TAG = "GenAI data"

# ---------------------------------------------------------------------------------------------------------------
# Parameters shared by the endpoints


def _text(name: str, description: str, location: Any = "query") -> Parameter:
    return Parameter(name, description, text_parser(MAX_TEXT_CHARS), {"type": "string"}, location=location)


START = Parameter(
    "start",
    "Start of the time window (included): RFC 3339 or Unix seconds. Default: the window's length before end.",
    parse_timestamp,
    {"type": "string"},
    example="2025-01-31T12:00:00Z",
)
END = Parameter(
    "end",
    "End of the time window (excluded): RFC 3339 or Unix seconds. Default: now.",
    parse_timestamp,
    {"type": "string"},
    example="2025-01-31T13:00:00Z",
)
CURSOR = Parameter(
    "cursor", "next_cursor of the previous page, to read the next one.", Cursor.decode, {"type": "string"}
)
SERVICE = _text("service", "Only this service (the resource's service.name).")
SPAN_NAME = _text("span_name", "Only spans with this name.")
MODEL = _text("model", "Only this model, requested or responding (gen_ai.request.model, gen_ai.response.model).")
PROVIDER = _text("provider", "Only this provider (gen_ai.provider.name).")
OPERATION = _text("operation", "Only this operation (gen_ai.operation.name: chat, embeddings...).")
TENANT = _text("tenant", "Only this tenant (tenant.id). A key bound to a tenant sees only its own whatever this says.")
CONVERSATION = _text("conversation", "Only this conversation (gen_ai.conversation.id).")
HAS_FINDINGS = Parameter(
    "has_findings",
    "true: only with security or loop findings; false: only without.",
    parse_boolean,
    {"type": "boolean"},
)
MIN_SEVERITY = Parameter(
    "min_severity",
    "Only findings (or spans with a finding) at least this severe.",
    choice_parser(SEVERITIES),
    {"type": "string", "enum": list(SEVERITIES)},
)
ERROR = Parameter("error", "true: only with an Error status; false: only without.", parse_boolean, {"type": "boolean"})
MIN_DURATION = Parameter(
    "min_duration",
    "Only spans (calls) lasting at least this long, e.g. 250ms or 1.5s.",
    parse_duration,
    {"type": "string"},
    example="1s",
)
MAX_DURATION = Parameter(
    "max_duration", "Only spans (calls) lasting at most this long, e.g. 2s.", parse_duration, {"type": "string"}
)
ATTRIBUTE = Parameter(
    "attribute",
    "key=value: only spans whose span or resource attribute key has this value (as the store keeps it, a string). "
    "Repeat for several; each must hold.",
    pair_parser(MAX_TEXT_CHARS),
    {"type": "string"},
    repeated=True,
    example="gen_ai.agent.name=planner",
)
CONTENT = Parameter(
    "content",
    "true: each call with its messages (gen_ai.input.messages, gen_ai.output.messages, gen_ai.system_instructions), "
    "from its span or from the log events recorded for it.",
    parse_boolean,
    {"type": "boolean"},
)
EVALUATIONS = Parameter(
    "evaluations",
    "true: each call with the evaluation results on it (genai_evaluations), worst first.",
    parse_boolean,
    {"type": "boolean"},
)
TRACE_ID = Parameter(
    "trace_id",
    "Trace id: 32 hex digits.",
    hex_id_parser(TRACE_ID_HEX_CHARS, "trace id"),
    {"type": "string", "pattern": "^[0-9a-fA-F]{32}$"},
    location="path",
)
CONVERSATION_ID = _text("conversation_id", "The conversation's id (gen_ai.conversation.id).", location="path")
CATEGORY = _text("category", "Only findings of this category (gen_ai.security.category).")
DETECTOR = _text("detector", "Only findings of this detector (gen_ai.security.detector.id).")
DIMENSION = _text("dimension", "Only results of this evaluation dimension (gen_ai.evaluation.name).")
EVALUATED_TRACE = Parameter("trace_id", "Only evaluations of this trace's spans.", TRACE_ID.parse, TRACE_ID.schema)
GROUP_BY = Parameter(
    "group_by",
    "Comma-separated dimensions to group by: " + ", ".join(GROUP_COLUMNS) + " (model is the requested model).",
    choices_list_parser(tuple(GROUP_COLUMNS)),
    {"type": "string"},
    example="model,provider",
)
BUCKET = Parameter(
    "bucket",
    "Cut the window into buckets of a minute, 5 or 15 minutes, an hour or a day (UTC); none: one row per group.",
    choice_parser(tuple(BUCKET_FUNCTIONS)),
    {"type": "string", "enum": list(BUCKET_FUNCTIONS)},
)
SEARCH_FILTERS = (
    SERVICE,
    SPAN_NAME,
    MODEL,
    PROVIDER,
    OPERATION,
    TENANT,
    CONVERSATION,
    HAS_FINDINGS,
    MIN_SEVERITY,
    ERROR,
    MIN_DURATION,
    MAX_DURATION,
    ATTRIBUTE,
)


def limit_parameter(context: ApiContext) -> Parameter:
    limits = context.config.limits
    return Parameter(
        "limit",
        f"Items per page (default {limits.default_page_limit}).",
        integer_parser(1, limits.max_page_limit),
        {"type": "integer", "minimum": 1, "maximum": limits.max_page_limit, "default": limits.default_page_limit},
    )


def filters_of(call: ApiCall) -> Filters:
    args = call.args
    return Filters(
        service=args.get("service"),
        span_name=args.get("span_name"),
        model=args.get("model"),
        provider=args.get("provider"),
        operation=args.get("operation"),
        tenant=args.get("tenant"),
        conversation=args.get("conversation"),
        has_findings=args.get("has_findings"),
        min_severity=args.get("min_severity"),
        error=args.get("error"),
        min_duration_ns=args.get("min_duration"),
        max_duration_ns=args.get("max_duration"),
        attributes=args.get("attribute", ()),
    )


# ---------------------------------------------------------------------------------------------------------------
# Answers


def summary_json(summary: TraceSummary) -> dict[str, Any]:
    return {
        "trace_id": summary.trace_id,
        "root": {"service": summary.root_service, "name": summary.root_name},
        "start": format_timestamp(summary.start_ns),
        "duration_ms": summary.duration_ns / NANOS_PER_MILLISECOND,
        "span_count": summary.span_count,
        "error": summary.error_count > 0,
        "error_count": summary.error_count,
        "llm_calls": summary.llm_calls,
        "tokens": {
            "input": summary.input_tokens,
            "output": summary.output_tokens,
            "cache_read": summary.cache_read_tokens,
            "cache_creation": summary.cache_creation_tokens,
            "reasoning": summary.reasoning_tokens,
        },
        "cost_usd": summary.cost,
        "finding_count": summary.finding_count,
        "max_severity": summary.max_severity,
        "models": list(summary.models),
        "providers": list(summary.providers),
        "services": list(summary.services),
        "conversations": list(summary.conversations),
    }


def _window_json(call: ApiCall, start_ns: int, end_ns: int) -> dict[str, str]:
    return {"start": format_timestamp(start_ns), "end": format_timestamp(end_ns)}


async def get_traces(call: ApiCall) -> dict[str, Any]:
    context = call.context
    window = call.window()
    limit = call.args.get("limit", context.config.limits.default_page_limit)
    page = await search_traces(
        context.runner,
        context.tables,
        call.scope,
        window,
        filters_of(call),
        limit,
        call.args.get("cursor"),
        call.caller,
    )
    return {
        **_window_json(call, window.start_ns, window.end_ns),
        "traces": [summary_json(summary) for summary in page.traces],
        "next_cursor": page.next_cursor,
    }


async def get_trace(call: ApiCall) -> dict[str, Any]:
    context = call.context
    trace_id = call.args.get("trace_id")
    trace = await fetch_trace(
        context.runner, context.tables, call.scope, trace_id, context.config.limits.max_trace_spans, call.caller
    )
    if trace is None:
        raise NotFound("no such trace in the store, or none of its spans is visible to this key")
    evaluations = await evaluations_since(
        context.runner,
        context.tables,
        call.scope,
        EvaluationFilters(trace_id=trace_id),
        trace.summary.start_ns,
        context.config.limits.max_page_limit,
        call.caller,
    )
    return {
        "trace_id": trace_id,
        "summary": summary_json(trace.summary),
        "truncated": trace.truncated,
        # OTLP/JSON exactly as the codec writes it for OTLP receivers: embedded as it is, not re-encoded.
        "trace": orjson.Fragment(encode_otlp_json(trace.spans)),
        "evaluations": evaluations,
    }


async def get_calls(call: ApiCall) -> dict[str, Any]:
    context = call.context
    window = call.window()
    limit = call.args.get("limit", context.config.limits.default_page_limit)
    page = await list_calls(
        context.runner,
        context.tables,
        call.scope,
        window,
        filters_of(call),
        limit,
        call.args.get("cursor"),
        call.caller,
        content=call.args.get("content", False),
        evaluations=call.args.get("evaluations", False),
    )
    return {
        **_window_json(call, window.start_ns, window.end_ns),
        "calls": [record.to_json() for record in page.calls],
        "next_cursor": page.next_cursor,
    }


async def get_stats(call: ApiCall) -> dict[str, Any]:
    context = call.context
    window = call.window()
    group_by = call.args.get("group_by", ())
    filters = tuple((name, call.args.get(name)) for name in GROUP_COLUMNS if call.args.get(name) is not None)
    query = StatsQuery(window, group_by, call.args.get("bucket"), filters)
    answer = await call_stats(
        context.runner, context.tables, call.scope, query, context.config.limits.max_stats_rows, call.caller
    )
    return {
        **_window_json(call, window.start_ns, window.end_ns),
        "group_by": list(group_by),
        "bucket": query.bucket,
        "source": answer.source,
        "rows": answer.rows,
        "truncated": answer.truncated,
    }


async def get_findings(call: ApiCall) -> dict[str, Any]:
    context = call.context
    window = call.window()
    args = call.args
    filters = FindingFilters(
        service=args.get("service"),
        tenant=args.get("tenant"),
        min_severity=args.get("min_severity"),
        category=args.get("category"),
        detector=args.get("detector"),
        trace_ids=(args.get("trace_id"),) if args.get("trace_id") else (),
    )
    limit = args.get("limit", context.config.limits.default_page_limit)
    page = await list_findings(
        context.runner, context.tables, call.scope, window, filters, limit, args.get("cursor"), call.caller
    )
    return {
        **_window_json(call, window.start_ns, window.end_ns),
        "findings": [record.to_json() for record in page.findings],
        "next_cursor": page.next_cursor,
    }


async def get_evaluations(call: ApiCall) -> dict[str, Any]:
    context = call.context
    window = call.window()
    args = call.args
    filters = EvaluationFilters(
        dimension=args.get("dimension"),
        service=args.get("service"),
        model=args.get("model"),
        trace_id=args.get("trace_id"),
    )
    table, limits = context.tables.evaluations, context.config.limits
    hours, truncated = await evaluation_hours(
        context.runner, table, call.scope, window, filters, limits.max_stats_rows, call.caller
    )
    limit = args.get("limit", limits.default_page_limit)
    worst = await worst_evaluations(context.runner, table, call.scope, window, filters, limit, call.caller)
    window_json = _window_json(call, window.start_ns, window.end_ns)
    return {**window_json, "hours": hours, "worst": worst, "truncated": truncated}


async def get_conversation(call: ApiCall) -> dict[str, Any]:
    context = call.context
    limits = context.config.limits
    conversation = call.args.get("conversation_id")
    window = call.window(default=limits.max_time_window)
    calls, more_calls = await conversation_calls(
        context.runner, context.tables, call.scope, window, conversation, limits.max_page_limit, call.caller
    )
    if not calls:
        raise NotFound("no calls of this conversation in the window are visible to this key")
    found, more_findings = await conversation_findings(
        context.runner, context.tables, call.scope, window, conversation, limits.max_page_limit, call.caller
    )
    return {
        "conversation_id": conversation,
        **_window_json(call, window.start_ns, window.end_ns),
        "summary": summarise_calls(conversation, calls).to_json(),
        "trace_ids": list(dict.fromkeys(record.trace_id for record in calls)),
        "calls": [record.to_json() for record in calls],
        "findings": [record.to_json() for record in found],
        "truncated": more_calls or more_findings,
    }


async def get_conversations(call: ApiCall) -> dict[str, Any]:
    context = call.context
    window = call.window()
    page = await list_conversations(
        context.runner,
        context.tables,
        call.scope,
        window,
        call.args.get("limit", context.config.limits.default_page_limit),
        call.args.get("service"),
        call.args.get("cursor"),
        call.caller,
    )
    return {
        **_window_json(call, window.start_ns, window.end_ns),
        "conversations": [
            {"conversation_id": summary.conversation_id, **summary.to_json()} for summary in page.conversations
        ],
        "next_cursor": page.next_cursor,
    }


async def get_services(call: ApiCall) -> dict[str, Any]:
    context = call.context
    window = call.window()
    services, more = await list_services(
        context.runner, context.tables, call.scope, window, context.config.limits.max_page_limit, call.caller
    )
    return {
        **_window_json(call, window.start_ns, window.end_ns),
        "services": [
            {"name": service.name, "span_count": service.span_count, "llm_calls": service.llm_calls}
            for service in services
        ],
        "truncated": more,
    }


def endpoints(context: ApiContext) -> list[Endpoint]:
    """Every /api/v1 endpoint but the stream's (collector.extensions.api.stream)."""
    limit = limit_parameter(context)
    window = (START, END)
    return [
        Endpoint(
            f"{PREFIX}/traces",
            "searchTraces",
            "Search traces",
            get_traces,
            (*window, *SEARCH_FILTERS, limit, CURSOR),
            schemas.ref("TracePage"),
            description="Traces with a span that meets every filter given, newest first by that span's start. "
            "Each comes with its summary over all its spans.",
            tags=(TAG,),
        ),
        Endpoint(
            f"{PREFIX}/traces/{{trace_id}}",
            "getTrace",
            "A trace's spans (OTLP/JSON) and its GenAI summary",
            get_trace,
            (TRACE_ID,),
            schemas.ref("Trace"),
            description="trace is OTLP/JSON as the OTLP specification encodes it (hex ids, integer enums); "
            "attribute values the conventions type are typed, the rest are strings as stored.",
            tags=(TAG,),
            errors=(400, 401, 403, 404),
        ),
        Endpoint(
            f"{PREFIX}/calls",
            "listCalls",
            "GenAI calls",
            get_calls,
            (*window, *SEARCH_FILTERS, limit, CURSOR, CONTENT, EVALUATIONS),
            schemas.ref("CallPage"),
            description="One row per call to a model (genai_calls), newest first.",
            tags=(TAG,),
        ),
        Endpoint(
            f"{PREFIX}/stats",
            "callStats",
            "Call statistics",
            get_stats,
            (*window, GROUP_BY, BUCKET, SERVICE, MODEL, PROVIDER, TENANT, OPERATION),
            schemas.ref("Stats"),
            description="Calls, errors, tokens by type, cost and percentiles, grouped and bucketed. Served from the "
            "hourly rollup when the window is whole hours, the buckets hours or days and operation is not involved "
            "(source says which). "
            "Here model is the requested model.",
            tags=(TAG,),
        ),
        Endpoint(
            f"{PREFIX}/findings",
            "listFindings",
            "Security and loop findings",
            get_findings,
            (
                *window,
                SERVICE,
                TENANT,
                MIN_SEVERITY,
                CATEGORY,
                DETECTOR,
                Parameter("trace_id", "Only findings of this trace.", TRACE_ID.parse, TRACE_ID.schema),
                limit,
                CURSOR,
            ),
            schemas.ref("FindingPage"),
            tags=(TAG,),
        ),
        Endpoint(
            f"{PREFIX}/evaluations",
            "listEvaluations",
            "Evaluation results by hour, and the worst ones",
            get_evaluations,
            (*window, DIMENSION, SERVICE, MODEL, EVALUATED_TRACE, limit),
            schemas.ref("Evaluations"),
            description="gen_ai.evaluation.result records (genai_evaluations) rolled up by hour, dimension, model "
            "and service (oldest hour first; pass_rate is over the results with a pass/fail), and the worst "
            "results: failed before passed, lowest score first, errors last. model is the evaluated call's "
            "responding model, else its requested one; the filter matches either.",
            tags=(TAG,),
        ),
        Endpoint(
            f"{PREFIX}/conversations",
            "listConversations",
            "Conversations with calls in the window",
            get_conversations,
            (*window, SERVICE, limit, CURSOR),
            schemas.ref("ConversationPage"),
            description="Each gen_ai.conversation.id with calls in the window, the one with the latest call first; "
            "totals count the calls in the window.",
            tags=(TAG,),
        ),
        Endpoint(
            f"{PREFIX}/conversations/{{conversation_id}}",
            "getConversation",
            "A conversation's calls and findings",
            get_conversation,
            (CONVERSATION_ID, START, END),
            schemas.ref("Conversation"),
            description="Without start, the whole of max_time_window before end is searched.",
            tags=(TAG,),
            errors=(400, 401, 403, 404),
        ),
        Endpoint(
            f"{PREFIX}/services",
            "listServices",
            "Services that sent spans",
            get_services,
            window,
            schemas.ref("Services"),
            tags=(TAG,),
        ),
    ]
