"""JSON Schemas (2020-12, as OpenAPI 3.1 uses them) of what the REST endpoints answer.

Endpoints point at these with ``ref(name)``; the OpenAPI document carries
them under ``components.schemas``, and the tests validate real answers
against them, so a field added to an answer and not here fails a test.
"""

from __future__ import annotations

from typing import Any

from collector.extensions.api.errors import JSON_ERROR_SCHEMA

Schema = dict[str, Any]

COMPONENTS_PREFIX = "#/components/schemas/"


def ref(name: str) -> Schema:
    if name not in COMPONENTS:
        raise KeyError(f"no schema {name}")
    return {"$ref": COMPONENTS_PREFIX + name}


def _object(properties: dict[str, Schema], optional: tuple[str, ...] = ()) -> Schema:
    """An object with exactly these properties, all required but ``optional``."""
    return {
        "type": "object",
        "properties": properties,
        "required": [name for name in properties if name not in optional],
        "additionalProperties": False,
    }


STRING: Schema = {"type": "string"}
TIME: Schema = {"type": "string", "format": "date-time"}
INTEGER: Schema = {"type": "integer", "minimum": 0}
NUMBER: Schema = {"type": "number"}
STRINGS: Schema = {"type": "array", "items": STRING}
CURSOR: Schema = {"type": ["string", "null"], "description": "Pass as cursor for the next page; null on the last."}
SEVERITY: Schema = {"type": ["string", "null"], "enum": ["low", "medium", "high", "critical", None]}
PERCENTILES: Schema = _object({name: {"type": ["number", "null"]} for name in ("p50", "p95", "p99")})
WINDOW = {"start": TIME, "end": TIME}

COMPONENTS: dict[str, Schema] = {
    "Error": JSON_ERROR_SCHEMA,
    "Tokens": _object({name: INTEGER for name in ("input", "output", "cache_read", "cache_creation", "reasoning")}),
}
COMPONENTS["TraceSummary"] = _object(
    {
        "trace_id": STRING,
        "root": _object({"service": STRING, "name": STRING}),
        "start": TIME,
        "duration_ms": NUMBER,
        "span_count": INTEGER,
        "error": {"type": "boolean"},
        "error_count": INTEGER,
        "llm_calls": INTEGER,
        "tokens": {"$ref": COMPONENTS_PREFIX + "Tokens"},
        "cost_usd": NUMBER,
        "finding_count": INTEGER,
        "max_severity": SEVERITY,
        "models": STRINGS,
        "providers": STRINGS,
        "services": STRINGS,
        "conversations": STRINGS,
    }
)
COMPONENTS["TracePage"] = _object(
    {
        **WINDOW,
        "traces": {"type": "array", "items": {"$ref": COMPONENTS_PREFIX + "TraceSummary"}},
        "next_cursor": CURSOR,
    }
)
COMPONENTS["OtlpTraces"] = {
    "type": "object",
    "description": "OTLP/JSON TracesData (opentelemetry-proto), as the OTLP specification encodes it.",
    "properties": {"resourceSpans": {"type": "array", "items": {"type": "object"}}},
}
COMPONENTS["Trace"] = _object(
    {
        "trace_id": STRING,
        "summary": {"$ref": COMPONENTS_PREFIX + "TraceSummary"},
        "truncated": {"type": "boolean", "description": "The trace has more spans than max_trace_spans."},
        "trace": {"$ref": COMPONENTS_PREFIX + "OtlpTraces"},
        "evaluations": {
            "type": "array",
            "items": {"$ref": COMPONENTS_PREFIX + "EvaluationResult"},
            "description": "Evaluation results on the trace's spans (genai_evaluations), worst first.",
        },
    }
)
COMPONENTS["Call"] = _object(
    {
        "time": TIME,
        "trace_id": STRING,
        "span_id": STRING,
        "service": STRING,
        "tenant": STRING,
        "provider": STRING,
        "operation": STRING,
        "request_model": STRING,
        "response_model": STRING,
        "tokens": {"$ref": COMPONENTS_PREFIX + "Tokens"},
        "cost_usd": NUMBER,
        "cost_source": STRING,
        "duration_ms": NUMBER,
        "time_to_first_chunk_ms": {"type": ["number", "null"]},
        "finish_reason": STRING,
        "status": STRING,
        "conversation_id": STRING,
        "finding_count": INTEGER,
        # With content=true: the call's content attributes by name, their JSON parsed.
        "content": {"type": "object", "additionalProperties": True},
        # With evaluations=true: the evaluation results on the call, worst first.
        "evaluations": {"type": "array", "items": {"$ref": COMPONENTS_PREFIX + "EvaluationResult"}},
    },
    optional=("content", "evaluations"),
)
COMPONENTS["CallPage"] = _object(
    {**WINDOW, "calls": {"type": "array", "items": {"$ref": COMPONENTS_PREFIX + "Call"}}, "next_cursor": CURSOR}
)
COMPONENTS["StatsRow"] = _object(
    {
        "bucket": TIME,
        "model": STRING,
        "provider": STRING,
        "service": STRING,
        "tenant": STRING,
        "operation": STRING,
        "calls": INTEGER,
        "errors": INTEGER,
        "tokens": {"$ref": COMPONENTS_PREFIX + "Tokens"},
        "cost_usd": NUMBER,
        "duration_ms": PERCENTILES,
        "time_to_first_chunk_ms": PERCENTILES,
    },
    optional=("bucket", "model", "provider", "service", "tenant", "operation"),
)
COMPONENTS["Stats"] = _object(
    {
        **WINDOW,
        "group_by": STRINGS,
        "bucket": {"type": ["string", "null"], "enum": ["minute", "5minutes", "15minutes", "hour", "day", None]},
        "source": {"type": "string", "enum": ["rollup", "calls"]},
        "rows": {"type": "array", "items": {"$ref": COMPONENTS_PREFIX + "StatsRow"}},
        "truncated": {"type": "boolean"},
    }
)
COMPONENTS["Finding"] = _object(
    {
        "time": TIME,
        "trace_id": STRING,
        "span_id": STRING,
        "service": STRING,
        "tenant": STRING,
        "detector": STRING,
        "category": STRING,
        "severity": STRING,
        "confidence": NUMBER,
        "attributes": {"type": "object", "additionalProperties": STRING},
    }
)
COMPONENTS["FindingPage"] = _object(
    {**WINDOW, "findings": {"type": "array", "items": {"$ref": COMPONENTS_PREFIX + "Finding"}}, "next_cursor": CURSOR}
)
_NULLABLE_NUMBER: Schema = {"type": ["number", "null"]}
_NULLABLE_STRING: Schema = {"type": ["string", "null"]}
COMPONENTS["EvaluationHour"] = _object(
    {
        "hour": TIME,
        "dimension": STRING,
        "model": STRING,
        "service": STRING,
        "results": INTEGER,
        "scored": INTEGER,
        "mean_score": _NULLABLE_NUMBER,
        "passed": INTEGER,
        "failed": INTEGER,
        "pass_rate": _NULLABLE_NUMBER,
        "errors": INTEGER,
    }
)
COMPONENTS["EvaluationResult"] = _object(
    {
        "time": TIME,
        "trace_id": STRING,
        "span_id": STRING,
        "service": STRING,
        "dimension": STRING,
        "model": STRING,
        "score": _NULLABLE_NUMBER,
        "label": _NULLABLE_STRING,
        "passed": {"type": ["boolean", "null"]},
        "explanation": STRING,
        "evaluator": STRING,
        "error_type": _NULLABLE_STRING,
    }
)
COMPONENTS["Evaluations"] = _object(
    {
        **WINDOW,
        "hours": {"type": "array", "items": {"$ref": COMPONENTS_PREFIX + "EvaluationHour"}},
        "worst": {"type": "array", "items": {"$ref": COMPONENTS_PREFIX + "EvaluationResult"}},
        "truncated": {"type": "boolean"},
    }
)
_CONVERSATION_TOTALS: dict[str, Schema] = {
    "calls": INTEGER,
    "errors": INTEGER,
    "tokens": {"$ref": COMPONENTS_PREFIX + "Tokens"},
    "cost_usd": NUMBER,
    "first": TIME,
    "last": TIME,
    "models": STRINGS,
    "services": STRINGS,
    "trace_count": INTEGER,
}
COMPONENTS["ConversationSummary"] = _object(_CONVERSATION_TOTALS)
COMPONENTS["ConversationPage"] = _object(
    {
        **WINDOW,
        "conversations": {
            "type": "array",
            "items": _object({"conversation_id": STRING, **_CONVERSATION_TOTALS}),
        },
        "next_cursor": CURSOR,
    }
)
COMPONENTS["Conversation"] = _object(
    {
        "conversation_id": STRING,
        **WINDOW,
        "summary": {"$ref": COMPONENTS_PREFIX + "ConversationSummary"},
        "trace_ids": STRINGS,
        "calls": {"type": "array", "items": {"$ref": COMPONENTS_PREFIX + "Call"}},
        "findings": {"type": "array", "items": {"$ref": COMPONENTS_PREFIX + "Finding"}},
        "truncated": {"type": "boolean"},
    }
)
COMPONENTS["Services"] = _object(
    {
        **WINDOW,
        "services": {
            "type": "array",
            "items": _object({"name": STRING, "span_count": INTEGER, "llm_calls": INTEGER}),
        },
        "truncated": {"type": "boolean"},
    }
)
COMPONENTS["About"] = _object(
    {
        "version": STRING,
        "key": _object(
            {
                "id": STRING,
                "role": {"type": "string", "enum": ["viewer", "operator", "admin"]},
                "tenant": {"type": ["string", "null"]},
                "anonymous": {"type": "boolean"},
            }
        ),
        "ingest": {
            "type": "array",
            "items": _object(
                {
                    "receiver": STRING,
                    "protocol": {"type": "string", "enum": ["otlp_http", "otlp_grpc", "genai_proxy"]},
                    "host": STRING,
                    "port": INTEGER,
                    "path": STRING,
                }
            ),
        },
    }
)
