"""What the connector emits: ``gen_ai.evaluation.result`` log records, and the judge calls' own spans.

A result record follows the GenAI conventions' event: ``event_name`` ``gen_ai.evaluation.result``,
the evaluated span's trace and span ids and resource, the ``gen_ai.evaluation.*`` attributes, the
evaluated call's ``gen_ai.response.id``, operation, provider, models and ``tenant.id``, plus
``genai_collector.evaluation.evaluator`` and ``.passed``. A failed evaluation has ``error.type`` and
severity ERROR, its reason in the explanation.

A judge call's span is a GenAI client span (``chat {model}``) in a trace of its own, linked to the
evaluated span, with ``genai_collector.evaluation.evaluator_call = true``: the connector never
selects such spans, so a judge call is never judged.
"""

from __future__ import annotations

import os
import time

from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogsData, SeverityNumber
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status, TracesData

from collector import __version__, semconv
from collector.pdata import set_any_value
from connectors.genai_evaluation.judge import JudgeCall
from connectors.genai_evaluation.result import Outcome
from connectors.genai_evaluation.subject import EVALUATOR_CALL, Subject

SCOPE_NAME = "genai_collector.genai_evaluation"
EVALUATOR = semconv.EVALUATION_EVALUATOR
PASSED = semconv.EVALUATION_PASSED
# The service judge call spans are recorded under.
EVALUATOR_SERVICE = "genai-collector-evaluator"
# The evaluated call's attributes a result carries along (CONTRACTS §2), besides its response id.
CARRIED = (
    semconv.OPERATION_NAME,
    semconv.PROVIDER_NAME,
    semconv.REQUEST_MODEL,
    semconv.RESPONSE_MODEL,
)


def _add(attributes: object, key: str, value: object) -> None:
    pair: KeyValue = attributes.add()  # type: ignore[attr-defined]
    pair.key = key
    set_any_value(pair.value, value)


def result_records(results: list[tuple[Subject, str, Outcome]], now_ns: int | None = None) -> LogsData:
    """One log record per (evaluated subject, dimension name, outcome), grouped by the subject's resource."""
    logs = LogsData()
    now = time.time_ns() if now_ns is None else now_ns
    by_resource: dict[tuple[tuple[str, str], ...], object] = {}
    for subject, dimension, outcome in results:
        key = tuple(sorted(subject.resource.items()))
        scope_logs = by_resource.get(key)
        if scope_logs is None:
            resource_logs = logs.resource_logs.add()
            for name, value in subject.resource.items():
                _add(resource_logs.resource.attributes, name, value)
            scope_logs = resource_logs.scope_logs.add()
            scope_logs.scope.name = SCOPE_NAME
            scope_logs.scope.version = __version__
            by_resource[key] = scope_logs
        record = scope_logs.log_records.add()  # type: ignore[attr-defined]
        record.event_name = semconv.EVALUATION_RESULT_EVENT
        record.time_unix_nano = now
        record.observed_time_unix_nano = now
        record.trace_id = subject.trace_id
        record.span_id = subject.span_id
        if outcome.failed:
            record.severity_number = SeverityNumber.SEVERITY_NUMBER_ERROR
            record.severity_text = "ERROR"
        else:
            record.severity_number = SeverityNumber.SEVERITY_NUMBER_INFO
            record.severity_text = "INFO"
        attributes = record.attributes
        _add(attributes, semconv.EVALUATION_NAME, dimension)
        if outcome.score is not None:
            _add(attributes, semconv.EVALUATION_SCORE_VALUE, float(outcome.score))
        if outcome.label is not None:
            _add(attributes, semconv.EVALUATION_SCORE_LABEL, outcome.label)
        if outcome.explanation:
            _add(attributes, semconv.EVALUATION_EXPLANATION, outcome.explanation)
        response_id = subject.attributes.get(semconv.RESPONSE_ID)
        if response_id:
            _add(attributes, semconv.RESPONSE_ID, response_id)
        if outcome.error_type:
            _add(attributes, semconv.ERROR_TYPE, outcome.error_type)
        for name in CARRIED:
            carried = subject.attributes.get(name)
            if carried:
                _add(attributes, name, carried)
        if subject.tenant:
            _add(attributes, semconv.TENANT_ID, subject.tenant)
        _add(attributes, EVALUATOR, outcome.evaluator)
        if outcome.passed is not None:
            _add(attributes, PASSED, outcome.passed)
    return logs


def judge_span(call: JudgeCall, evaluated: Subject, dimension: str) -> TracesData:
    """The span of one judge call, in a trace of its own, linked to the span it evaluated."""
    traces = TracesData()
    resource_spans = traces.resource_spans.add()
    _add(resource_spans.resource.attributes, semconv.SERVICE_NAME, EVALUATOR_SERVICE)
    scope_spans = resource_spans.scope_spans.add()
    scope_spans.scope.name = SCOPE_NAME
    scope_spans.scope.version = __version__
    span = scope_spans.spans.add()
    span.trace_id = os.urandom(16)
    span.span_id = os.urandom(8)
    span.name = f"{semconv.CHAT} {call.model}"
    span.kind = Span.SPAN_KIND_CLIENT
    span.start_time_unix_nano = call.start_ns
    span.end_time_unix_nano = call.end_ns
    link = span.links.add()
    link.trace_id = evaluated.trace_id
    link.span_id = evaluated.span_id
    attributes = span.attributes
    _add(attributes, semconv.OPERATION_NAME, semconv.CHAT)
    _add(attributes, semconv.PROVIDER_NAME, call.upstream.provider_name)
    _add(attributes, semconv.REQUEST_MODEL, call.model)
    _add(attributes, semconv.PROXY_UPSTREAM, call.upstream.name)
    _add(attributes, EVALUATOR_CALL, True)
    _add(attributes, semconv.EVALUATION_NAME, dimension)
    if call.response_model:
        _add(attributes, semconv.RESPONSE_MODEL, call.response_model)
    if call.response_id:
        _add(attributes, semconv.RESPONSE_ID, call.response_id)
    if call.input_tokens is not None:
        _add(attributes, semconv.USAGE_INPUT_TOKENS, call.input_tokens)
    if call.output_tokens is not None:
        _add(attributes, semconv.USAGE_OUTPUT_TOKENS, call.output_tokens)
    if call.cost_usd is not None:
        _add(attributes, semconv.USAGE_COST_AMOUNT, call.cost_usd)
        _add(attributes, semconv.USAGE_COST_CURRENCY, semconv.COST_CURRENCY_USD)
    if call.error_type:
        _add(attributes, semconv.ERROR_TYPE, call.error_type)
        span.status.code = Status.STATUS_CODE_ERROR
    return traces
