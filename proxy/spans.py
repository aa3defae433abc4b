"""Turn a finished call's record into its span's attributes and status."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from opentelemetry.sdk.trace import Span
from opentelemetry.trace import Status, StatusCode

from collector import semconv
from proxy.record import CallRecord, reason_text
from proxy.tokens import prompt_tokens, texts_tokens

# Captured content keeps the conventions' JSON shape; a text longer than this is cut, and says so.
MAX_CONTENT_CHARS = 1_000_000


@dataclass
class Outcome:
    """How the call ended, as the proxy saw it."""

    status_code: int | None = None  # the upstream's HTTP status, None when none came
    error_type: str | None = None
    error_message: str = ""
    time_to_first_chunk: float | None = None  # seconds, streams only
    streamed_seconds: float | None = None  # from the first chunk to the last


def span_name(operation: str, model: str | None) -> str:
    return f"{operation} {model}" if model else operation


def finish_span(span: Span, record: CallRecord, outcome: Outcome, finish_reason_map: dict[str, str]) -> None:
    """Set everything the call taught us on ``span`` (which the caller then ends)."""
    if record.stream_error is not None and outcome.error_type is None:
        outcome.error_type = record.stream_error
        outcome.error_message = "the upstream reported an error inside the stream"
    succeeded = outcome.status_code is not None and 200 <= outcome.status_code < 300
    if succeeded:
        _estimate_missing_usage(record)
    span.set_attributes(record.attributes)
    _set_usage(span, record)
    if record.choices:
        reasons = [reason_text(record.choices[i].finish_reason) or "error" for i in sorted(record.choices)]
        if any(choice.finish_reason for choice in record.choices.values()) or outcome.error_type:
            span.set_attribute(semconv.RESPONSE_FINISH_REASONS, reasons)
    if outcome.status_code is not None:
        span.set_attribute(semconv.HTTP_RESPONSE_STATUS_CODE, outcome.status_code)
    if record.stream and outcome.time_to_first_chunk is not None:
        span.set_attribute(semconv.RESPONSE_TIME_TO_FIRST_CHUNK, outcome.time_to_first_chunk)
        output_tokens = record.usage.output_tokens
        if output_tokens and outcome.streamed_seconds:
            span.set_attribute(semconv.OUTPUT_TOKENS_PER_SECOND, output_tokens / outcome.streamed_seconds)
    if record.capture_content:
        _set_content(span, record, finish_reason_map)
    if outcome.error_type is not None:
        span.set_attribute(semconv.ERROR_TYPE, outcome.error_type)
        span.set_status(Status(StatusCode.ERROR, outcome.error_message or outcome.error_type))


def _estimate_missing_usage(record: CallRecord) -> None:
    usage = record.usage
    inference = record.operation in semconv.INFERENCE_OPERATIONS
    if not semconv.is_model_call(record.operation):
        return
    estimated = False
    if usage.input_tokens is None and record.prompt_texts:
        usage.input_tokens = prompt_tokens(record.prompt_texts, record.prompt_chat_messages)
        estimated = True
    if inference and usage.output_tokens is None:
        usage.output_tokens = texts_tokens(record.output_texts())
        estimated = True
    if estimated:
        usage.source = "estimated"


def _set_usage(span: Span, record: CallRecord) -> None:
    usage = record.usage
    if not usage.known:
        return
    values = {
        semconv.USAGE_INPUT_TOKENS: usage.input_tokens,
        semconv.USAGE_OUTPUT_TOKENS: usage.output_tokens,
        semconv.USAGE_CACHE_READ_INPUT_TOKENS: usage.cache_read_input_tokens,
        record.dialect.cache_write_input_tokens: usage.cache_write_input_tokens,
        semconv.USAGE_REASONING_OUTPUT_TOKENS: usage.reasoning_output_tokens,
    }
    for name, value in values.items():
        if value is not None:
            span.set_attribute(name, value)
    span.set_attribute(semconv.USAGE_SOURCE, usage.source)


def _set_content(span: Span, record: CallRecord, finish_reason_map: dict[str, str]) -> None:
    # The conventions allow JSON strings on spans where structured values are not supported (OTLP attributes).
    for name, value in (
        (semconv.INPUT_MESSAGES, record.input_messages),
        (semconv.SYSTEM_INSTRUCTIONS, record.system_instructions),
        (semconv.TOOL_DEFINITIONS, record.tool_definitions),
    ):
        if value:
            span.set_attribute(name, _content_json(value))
    if record.choices:
        span.set_attribute(semconv.OUTPUT_MESSAGES, _content_json(record.output_messages(finish_reason_map)))


def _content_json(value: Any) -> str:
    """Content as JSON, each text cut at MAX_CONTENT_CHARS so one huge prompt cannot stall the loop or the store."""
    return json.dumps(_truncated(value), ensure_ascii=False)


def _truncated(value: Any) -> Any:
    if isinstance(value, str):
        if len(value) <= MAX_CONTENT_CHARS:
            return value
        return value[:MAX_CONTENT_CHARS] + f"…[{len(value) - MAX_CONTENT_CHARS} more characters not captured]"
    if isinstance(value, list):
        return [_truncated(item) for item in value]
    if isinstance(value, dict):
        return {key: _truncated(item) for key, item in value.items()}
    return value
