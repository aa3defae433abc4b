"""The ``genai_evaluations`` table: one row per ``gen_ai.evaluation.result`` log record, filled inside ClickHouse.

A materialized view over the logs table picks the evaluation results out of
every insert (their row in ``otel_logs`` stays) and pulls the typed values out
of the attribute map, as the views over ``otel_traces`` do for ``genai_calls``
(exporters.clickhouse.genai_schema says why views rather than the exporter). So
results any writer puts into the logs table count too, and on a cluster each
shard fills its own part next to the records it holds: the logs' sharding key
keeps a trace's records, its evaluations among them, beside its spans.

The attributes are the GenAI conventions' ``gen_ai.evaluation.result`` event's
(collector.semconv), the evaluated call's model and provider as the record
repeats them, and two of this project's: the evaluator (``judge:<model>`` or
``rule:<type>``) and whether the result passed. TraceId and SpanId are the
evaluated span's, as the conventions ask the event to be parented.
"""

from __future__ import annotations

from dataclasses import dataclass

from collector import semconv
from exporters.clickhouse.layout import Layout
from exporters.clickhouse.signal_schema import LOGS_SHARDING_KEY

EVALUATOR = semconv.EVALUATION_EVALUATOR
PASSED = semconv.EVALUATION_PASSED
DEFAULT_EVALUATIONS_TABLE = "genai_evaluations"


@dataclass(frozen=True)
class EvaluationTables:
    """The evaluations table and the view that fills it; the view takes the logs table's name as prefix."""

    logs: str
    evaluations: str = DEFAULT_EVALUATIONS_TABLE

    @property
    def evaluations_mv(self) -> str:
        return f"{self.logs}_{self.evaluations}_mv"


def create_evaluations_table_sql(layout: Layout, tables: EvaluationTables) -> str:
    return layout.create_table(
        tables.evaluations,
        f"""(
    Timestamp DateTime64(9) CODEC(Delta(8), ZSTD(1)),
    TraceId String CODEC(ZSTD(1)),
    SpanId String CODEC(ZSTD(1)),
    ServiceName LowCardinality(String) CODEC(ZSTD(1)),
    TenantId LowCardinality(String) CODEC(ZSTD(1)),
    EvaluationName LowCardinality(String) CODEC(ZSTD(1)),
    ScoreValue Nullable(Float64) CODEC(ZSTD(1)),
    ScoreLabel LowCardinality(String) CODEC(ZSTD(1)),
    Passed Nullable(Bool),
    Explanation String CODEC(ZSTD(1)),
    ResponseId String CODEC(ZSTD(1)),
    Evaluator LowCardinality(String) CODEC(ZSTD(1)),
    ErrorType LowCardinality(String) CODEC(ZSTD(1)),
    OperationName LowCardinality(String) CODEC(ZSTD(1)),
    ProviderName LowCardinality(String) CODEC(ZSTD(1)),
    RequestModel LowCardinality(String) CODEC(ZSTD(1)),
    ResponseModel LowCardinality(String) CODEC(ZSTD(1)),
    INDEX idx_trace_id TraceId TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_response_id ResponseId TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_tenant TenantId TYPE set(0) GRANULARITY 1
) {layout.engine_clause()}
PARTITION BY toDate(Timestamp)
ORDER BY (EvaluationName, ServiceName, toStartOfHour(Timestamp), TraceId, Timestamp)
{layout.ttl("toDateTime(Timestamp)")}
{layout.settings_clause()}""",
    )


def _attribute(name: str) -> str:
    return f"LogAttributes['{name}']"


def _present(name: str) -> str:
    return f"mapContains(LogAttributes, '{name}')"


def log_tenant_expression() -> str:
    """A log row's tenant: its ``tenant.id`` attribute, else its resource's (as genai_schema.tenant_expression)."""
    tenant = semconv.TENANT_ID
    return f"if({_present(tenant)}, {_attribute(tenant)}, ResourceAttributes['{tenant}'])"


def create_evaluations_view_sql(layout: Layout, tables: EvaluationTables) -> str:
    return layout.create_view(
        tables.evaluations_mv,
        tables.evaluations,
        f"""AS SELECT
    Timestamp,
    TraceId,
    SpanId,
    ServiceName,
    {log_tenant_expression()} AS TenantId,
    {_attribute(semconv.EVALUATION_NAME)} AS EvaluationName,
    if({_present(semconv.EVALUATION_SCORE_VALUE)}, toFloat64OrNull({_attribute(semconv.EVALUATION_SCORE_VALUE)}), NULL)
        AS ScoreValue,
    {_attribute(semconv.EVALUATION_SCORE_LABEL)} AS ScoreLabel,
    if({_present(PASSED)}, {_attribute(PASSED)} = 'true', NULL) AS Passed,
    {_attribute(semconv.EVALUATION_EXPLANATION)} AS Explanation,
    {_attribute(semconv.RESPONSE_ID)} AS ResponseId,
    {_attribute(EVALUATOR)} AS Evaluator,
    {_attribute(semconv.ERROR_TYPE)} AS ErrorType,
    {_attribute(semconv.OPERATION_NAME)} AS OperationName,
    {_attribute(semconv.PROVIDER_NAME)} AS ProviderName,
    {_attribute(semconv.REQUEST_MODEL)} AS RequestModel,
    {_attribute(semconv.RESPONSE_MODEL)} AS ResponseModel
FROM {layout.qualified_storage(tables.logs)}
WHERE EventName = '{semconv.EVALUATION_RESULT_EVENT}'""",
    )


def statements(layout: Layout, tables: EvaluationTables) -> list[str]:
    """The evaluations table, its Distributed front on a cluster, then the view that fills it."""
    return [
        create_evaluations_table_sql(layout, tables),
        *layout.create_distributed(tables.evaluations, LOGS_SHARDING_KEY),
        create_evaluations_view_sql(layout, tables),
    ]


def expected_tables(layout: Layout, tables: EvaluationTables) -> tuple[str, ...]:
    """The evaluations table and its view, in creation order."""
    return (*layout.table_names(tables.evaluations), tables.evaluations_mv)
