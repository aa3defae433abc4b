"""The GenAI tables: one row per LLM call, one per finding, and hourly rollups, derived inside ClickHouse.

``genai_calls`` and ``genai_findings`` are filled by materialized views over
``otel_traces`` (typed values pulled out of the attribute maps by ClickHouse as
each insert lands), and the hourly rollup by a materialized view over
``genai_calls``. The exporter itself inserts spans into ``otel_traces`` only.

Why views rather than the exporter writing the GenAI tables itself: measured
with benchmarks/genai_tables.py on chDB (GenAI chat spans, 1 in 20 with a
finding, batches of 8192), inserting with the views kept 0.76x and 1.01x of the
otel_traces-only rate in two runs (medians of 3 and 5 rounds on a shared
2-core machine), writing directly 0.60x and 0.65x. The Python walk over
attributes is the exporter's bottleneck; ClickHouse's map lookups are not, and
two more inserts per batch cost two more parts. Views also derive the same
rows from spans any other writer puts into otel_traces (the contrib exporter,
a backfill), run on each shard of a cluster next to the spans they read, and
keep one insert per batch (one part, one failure mode).

Attribute names are the newest GenAI semantic conventions' (``collector.semconv``;
genai_normalize maps older ones before spans get here), with v1.41.0's cache
write and this project's former ``gen_ai.usage.cost`` read as a fallback, so
spans written by a proxy set to ``semconv: v1.41`` or by another writer count
too. ``tenant.id`` is the span attribute the proxy stamps, falling back to a
resource attribute of that name.

A row of ``genai_calls`` is one call to a model: a span whose operation is in
``collector.semconv.MODEL_CALL_OPERATIONS`` (the allow-list the Prometheus
exporter shares), unless it carries ``gen_ai.call.duplicate_of`` (genai_dedup
marks the second record of a call made through the proxy). Both spans stay in
``otel_traces``.
"""

from __future__ import annotations

from dataclasses import dataclass

from collector import semconv
from collector.findings import CATEGORY, CONFIDENCE, DETECTOR, FINDING_EVENT, FINDINGS_COUNT, SEVERITY
from exporters.clickhouse.layout import Layout

TENANT = semconv.TENANT_ID
# Quantiles kept in the rollup states; queries pick one by position (p50, p90, p95, p99).
ROLLUP_QUANTILES = (0.5, 0.9, 0.95, 0.99)
# Calls of one trace, and the findings on them, stay on the trace's shard.
SHARDING_KEY = "cityHash64(TraceId)"
ROLLUP_SHARDING_KEY = "rand()"
FINDING_CORE_KEYS = (DETECTOR, CATEGORY, SEVERITY, CONFIDENCE)


@dataclass(frozen=True)
class GenAITables:
    """Names of the GenAI tables and views; the views take the traces table's name as prefix."""

    traces: str
    calls: str = "genai_calls"
    findings: str = "genai_findings"
    calls_hourly: str = "genai_calls_hourly"

    @property
    def calls_mv(self) -> str:
        return f"{self.traces}_{self.calls}_mv"

    @property
    def findings_mv(self) -> str:
        return f"{self.traces}_{self.findings}_mv"

    @property
    def calls_hourly_mv(self) -> str:
        return f"{self.calls_hourly}_mv"


def _string_list(values: tuple[str, ...]) -> str:
    return ", ".join("'" + v.replace("\\", "\\\\").replace("'", "\\'") + "'" for v in values)


def _quantiles() -> str:
    return ", ".join(str(q) for q in ROLLUP_QUANTILES)


def create_calls_table_sql(layout: Layout, tables: GenAITables) -> str:
    return layout.create_table(
        tables.calls,
        f"""(
    Timestamp DateTime64(9) CODEC(Delta(8), ZSTD(1)),
    TraceId String CODEC(ZSTD(1)),
    SpanId String CODEC(ZSTD(1)),
    ServiceName LowCardinality(String) CODEC(ZSTD(1)),
    Tenant LowCardinality(String) CODEC(ZSTD(1)),
    Provider LowCardinality(String) CODEC(ZSTD(1)),
    Operation LowCardinality(String) CODEC(ZSTD(1)),
    RequestModel LowCardinality(String) CODEC(ZSTD(1)),
    ResponseModel LowCardinality(String) CODEC(ZSTD(1)),
    InputTokens UInt64 CODEC(T64, ZSTD(1)),
    OutputTokens UInt64 CODEC(T64, ZSTD(1)),
    CacheReadTokens UInt64 CODEC(T64, ZSTD(1)),
    CacheCreationTokens UInt64 CODEC(T64, ZSTD(1)),
    ReasoningTokens UInt64 CODEC(T64, ZSTD(1)),
    Cost Float64 CODEC(ZSTD(1)),
    CostSource LowCardinality(String) CODEC(ZSTD(1)),
    Duration UInt64 CODEC(T64, ZSTD(1)),
    TimeToFirstChunk Nullable(Float64) CODEC(ZSTD(1)),
    FinishReason LowCardinality(String) CODEC(ZSTD(1)),
    StatusCode LowCardinality(String) CODEC(ZSTD(1)),
    ConversationId String CODEC(ZSTD(1)),
    FindingCount UInt32 CODEC(T64, ZSTD(1)),
    INDEX idx_trace_id TraceId TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_conversation_id ConversationId TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_tenant Tenant TYPE set(0) GRANULARITY 1
) {layout.engine_clause()}
PARTITION BY toDate(Timestamp)
ORDER BY (ServiceName, RequestModel, toDateTime(Timestamp), Timestamp)
{layout.ttl("toDateTime(Timestamp)")}
{layout.settings_clause()}""",
    )


def create_findings_table_sql(layout: Layout, tables: GenAITables) -> str:
    return layout.create_table(
        tables.findings,
        f"""(
    Timestamp DateTime64(9) CODEC(Delta(8), ZSTD(1)),
    TraceId String CODEC(ZSTD(1)),
    SpanId String CODEC(ZSTD(1)),
    ServiceName LowCardinality(String) CODEC(ZSTD(1)),
    Tenant LowCardinality(String) CODEC(ZSTD(1)),
    Detector LowCardinality(String) CODEC(ZSTD(1)),
    Category LowCardinality(String) CODEC(ZSTD(1)),
    Severity LowCardinality(String) CODEC(ZSTD(1)),
    Confidence Float64 CODEC(ZSTD(1)),
    Attributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    INDEX idx_trace_id TraceId TYPE bloom_filter(0.001) GRANULARITY 1
) {layout.engine_clause()}
PARTITION BY toDate(Timestamp)
ORDER BY (Category, Detector, toDateTime(Timestamp), Timestamp)
{layout.ttl("toDateTime(Timestamp)")}
{layout.settings_clause()}""",
    )


def create_calls_hourly_table_sql(layout: Layout, tables: GenAITables) -> str:
    quantiles = _quantiles()
    return layout.create_table(
        tables.calls_hourly,
        f"""(
    Hour DateTime CODEC(Delta(4), ZSTD(1)),
    ServiceName LowCardinality(String) CODEC(ZSTD(1)),
    Provider LowCardinality(String) CODEC(ZSTD(1)),
    RequestModel LowCardinality(String) CODEC(ZSTD(1)),
    Tenant LowCardinality(String) CODEC(ZSTD(1)),
    Calls SimpleAggregateFunction(sum, UInt64),
    Errors SimpleAggregateFunction(sum, UInt64),
    InputTokens SimpleAggregateFunction(sum, UInt64),
    OutputTokens SimpleAggregateFunction(sum, UInt64),
    CacheReadTokens SimpleAggregateFunction(sum, UInt64),
    CacheCreationTokens SimpleAggregateFunction(sum, UInt64),
    ReasoningTokens SimpleAggregateFunction(sum, UInt64),
    Cost SimpleAggregateFunction(sum, Float64),
    DurationQuantiles AggregateFunction(quantiles({quantiles}), UInt64),
    TimeToFirstChunkQuantiles AggregateFunction(quantiles({quantiles}), Float64)
) {layout.engine_clause(aggregating=True)}
PARTITION BY toYYYYMM(Hour)
ORDER BY (ServiceName, RequestModel, Provider, Tenant, Hour)
{layout.ttl("Hour")}
{layout.settings_clause()}""",
    )


def tenant_expression() -> str:
    """A span row's tenant: its ``tenant.id`` attribute, else its resource's (the read side filters on the same)."""
    return f"if(mapContains(SpanAttributes, '{TENANT}'), SpanAttributes['{TENANT}'], ResourceAttributes['{TENANT}'])"


def model_call_condition() -> str:
    """True for a span row that is one call to a model, counted once: the rows ``genai_calls`` holds."""
    operations = _string_list(tuple(sorted(semconv.MODEL_CALL_OPERATIONS)))
    return (
        f"SpanAttributes['{semconv.OPERATION_NAME}'] IN ({operations})\n"
        f"    AND NOT mapContains(SpanAttributes, '{semconv.CALL_DUPLICATE_OF}')"
    )


def attribute_expression(name: str) -> str:
    """The span attribute ``name``, else the newest of its previous names the span has (``semconv.RENAMED``)."""
    names = semconv.spellings(name)
    expression = f"SpanAttributes['{names[-1]}']"
    for newer in reversed(names[:-1]):
        expression = f"if(mapContains(SpanAttributes, '{newer}'), SpanAttributes['{newer}'], {expression})"
    return expression


def call_measures() -> dict[str, str]:
    """The token counts and cost of a call, by ``genai_calls`` column: the read side sums the same over spans."""
    return {
        "InputTokens": f"toUInt64OrZero(SpanAttributes['{semconv.USAGE_INPUT_TOKENS}'])",
        "OutputTokens": f"toUInt64OrZero(SpanAttributes['{semconv.USAGE_OUTPUT_TOKENS}'])",
        "CacheReadTokens": f"toUInt64OrZero(SpanAttributes['{semconv.USAGE_CACHE_READ_INPUT_TOKENS}'])",
        "CacheCreationTokens": f"toUInt64OrZero({attribute_expression(semconv.USAGE_CACHE_WRITE_INPUT_TOKENS)})",
        "ReasoningTokens": f"toUInt64OrZero(SpanAttributes['{semconv.USAGE_REASONING_OUTPUT_TOKENS}'])",
        "Cost": f"toFloat64OrZero({attribute_expression(semconv.USAGE_COST_AMOUNT)})",
    }


def calls_select_sql(layout: Layout, tables: GenAITables) -> str:
    """The SELECT of the view that fills ``genai_calls``: one row per call to a model, counted once."""
    cost_source = attribute_expression(semconv.USAGE_COST_SOURCE)
    # Spans priced by an older genai_cost say "computed" where the conventions say "local".
    previous_sources = tuple(semconv.RENAMED_COST_SOURCES)
    current_sources = tuple(semconv.RENAMED_COST_SOURCES.values())
    measures = "\n".join(f"    {expression} AS {column}," for column, expression in call_measures().items())
    return f"""AS SELECT
    Timestamp,
    TraceId,
    SpanId,
    ServiceName,
    {tenant_expression()} AS Tenant,
    SpanAttributes['{semconv.PROVIDER_NAME}'] AS Provider,
    SpanAttributes['{semconv.OPERATION_NAME}'] AS Operation,
    SpanAttributes['{semconv.REQUEST_MODEL}'] AS RequestModel,
    SpanAttributes['{semconv.RESPONSE_MODEL}'] AS ResponseModel,
{measures}
    transform({cost_source}, [{_string_list(previous_sources)}], [{_string_list(current_sources)}], {cost_source})
        AS CostSource,
    Duration,
    toFloat64OrNull(SpanAttributes['{semconv.RESPONSE_TIME_TO_FIRST_CHUNK}']) AS TimeToFirstChunk,
    JSONExtractString(SpanAttributes['{semconv.RESPONSE_FINISH_REASONS}'], 1) AS FinishReason,
    StatusCode,
    SpanAttributes['{semconv.CONVERSATION_ID}'] AS ConversationId,
    toUInt32OrZero(SpanAttributes['{FINDINGS_COUNT}']) AS FindingCount
FROM {layout.qualified_storage(tables.traces)}
WHERE {model_call_condition()}"""


def create_calls_view_sql(layout: Layout, tables: GenAITables) -> str:
    return layout.create_view(tables.calls_mv, tables.calls, calls_select_sql(layout, tables))


def upgrade_calls_view_sql(layout: Layout, tables: GenAITables) -> str:
    """Gives a view made by an older version today's SELECT (CREATE ... IF NOT EXISTS leaves it as it was)."""
    return layout.modify_view_query(tables.calls_mv, calls_select_sql(layout, tables))


def create_findings_view_sql(layout: Layout, tables: GenAITables) -> str:
    return layout.create_view(
        tables.findings_mv,
        tables.findings,
        f"""AS SELECT
    Finding.Timestamp AS Timestamp,
    TraceId,
    SpanId,
    ServiceName,
    {tenant_expression()} AS Tenant,
    Finding.Attributes['{DETECTOR}'] AS Detector,
    Finding.Attributes['{CATEGORY}'] AS Category,
    Finding.Attributes['{SEVERITY}'] AS Severity,
    toFloat64OrZero(Finding.Attributes['{CONFIDENCE}']) AS Confidence,
    mapFilter((k, v) -> k NOT IN ({_string_list(FINDING_CORE_KEYS)}), Finding.Attributes) AS Attributes
FROM {layout.qualified_storage(tables.traces)}
ARRAY JOIN Events AS Finding
WHERE Finding.Name = '{FINDING_EVENT}'""",
    )


def create_calls_hourly_view_sql(layout: Layout, tables: GenAITables) -> str:
    quantiles = _quantiles()
    return layout.create_view(
        tables.calls_hourly_mv,
        tables.calls_hourly,
        f"""AS SELECT
    toStartOfHour(Timestamp) AS Hour,
    ServiceName,
    Provider,
    RequestModel,
    Tenant,
    count() AS Calls,
    countIf(StatusCode = 'Error') AS Errors,
    sum(InputTokens) AS InputTokens,
    sum(OutputTokens) AS OutputTokens,
    sum(CacheReadTokens) AS CacheReadTokens,
    sum(CacheCreationTokens) AS CacheCreationTokens,
    sum(ReasoningTokens) AS ReasoningTokens,
    sum(Cost) AS Cost,
    quantilesState({quantiles})(Duration) AS DurationQuantiles,
    quantilesStateIf({quantiles})(assumeNotNull(TimeToFirstChunk), TimeToFirstChunk IS NOT NULL)
        AS TimeToFirstChunkQuantiles
FROM {layout.qualified_storage(tables.calls)}
GROUP BY Hour, ServiceName, Provider, RequestModel, Tenant""",
    )


def statements(layout: Layout, tables: GenAITables) -> list[str]:
    """The GenAI tables, their Distributed fronts on a cluster, then the views that fill them."""
    return [
        create_calls_table_sql(layout, tables),
        *layout.create_distributed(tables.calls, SHARDING_KEY),
        create_findings_table_sql(layout, tables),
        *layout.create_distributed(tables.findings, SHARDING_KEY),
        create_calls_hourly_table_sql(layout, tables),
        *layout.create_distributed(tables.calls_hourly, ROLLUP_SHARDING_KEY),
        create_calls_view_sql(layout, tables),
        upgrade_calls_view_sql(layout, tables),
        create_findings_view_sql(layout, tables),
        create_calls_hourly_view_sql(layout, tables),
    ]


def expected_tables(layout: Layout, tables: GenAITables) -> tuple[str, ...]:
    """The GenAI tables and views, in creation order."""
    return (
        *layout.table_names(tables.calls),
        *layout.table_names(tables.findings),
        *layout.table_names(tables.calls_hourly),
        tables.calls_mv,
        tables.findings_mv,
        tables.calls_hourly_mv,
    )
