-- Questions users ask of the GenAI tables, as ready SQL for the default database.
-- Each statement follows a comment line naming its question. Run one with
--   genai-collector query "$(sed -n '/^-- Q: Cost per day/,/;$/p' docs/queries.sql)"
-- or paste it into clickhouse-client / Grafana. Hourly questions read the
-- genai_calls_hourly rollup (small, fast); per-trace and per-conversation
-- questions read genai_calls and genai_findings. Widen the INTERVAL to look further back.
--
-- What counts as a call: genai_calls (and its hourly rollup) hold one row per call to a model, a span
-- whose gen_ai.operation.name is chat, text_completion, generate_content or embeddings (the same list the
-- Prometheus metrics use; agents, workflows, tools, planning, retrieval, memory and guardrails are not
-- calls). A call recorded twice, by an app's own instrumentation and by the proxy it went through, is
-- counted once: the proxy's span; genai_dedup marks the other with gen_ai.call.duplicate_of (the span id
-- of the counted one). otel_traces keeps both spans, so a sum over otel_traces counts such calls twice:
-- ask genai_calls what a call cost, or leave out spans carrying gen_ai.call.duplicate_of.

-- Q: Cost per day per model and tenant
SELECT
    toDate(Hour) AS Day,
    RequestModel,
    Tenant,
    round(sum(Cost), 6) AS CostUSD,
    sum(Calls) AS CallCount
FROM genai_calls_hourly
WHERE Hour >= now() - INTERVAL 30 DAY
GROUP BY Day, RequestModel, Tenant
ORDER BY Day, CostUSD DESC, RequestModel, Tenant;

-- Q: p95 time to first token per model (streaming calls only)
SELECT
    RequestModel,
    round(quantilesMerge(0.5, 0.9, 0.95, 0.99)(TimeToFirstChunkQuantiles)[1], 3) AS P50Seconds,
    round(quantilesMerge(0.5, 0.9, 0.95, 0.99)(TimeToFirstChunkQuantiles)[3], 3) AS P95Seconds
FROM genai_calls_hourly
WHERE Hour >= now() - INTERVAL 7 DAY
GROUP BY RequestModel
HAVING NOT isNaN(P95Seconds)
ORDER BY P95Seconds DESC, RequestModel;

-- Q: Most expensive traces
SELECT
    TraceId,
    any(ServiceName) AS Service,
    any(Tenant) AS Tenant,
    count() AS Calls,
    sum(InputTokens + OutputTokens) AS Tokens,
    round(sum(Cost), 6) AS CostUSD,
    min(Timestamp) AS Started
FROM genai_calls
WHERE Timestamp >= now() - INTERVAL 7 DAY
GROUP BY TraceId
ORDER BY CostUSD DESC, TraceId
LIMIT 20;

-- Q: Traces with agent loops
SELECT
    TraceId,
    any(ServiceName) AS Service,
    any(Tenant) AS Tenant,
    count() AS LoopFindings,
    arraySort(groupUniqArray(Detector)) AS Detectors,
    max(toUInt64OrZero(Attributes['gen_ai.security.loop.repetitions'])) AS MaxRepetitions,
    round(max(toFloat64OrZero(Attributes['gen_ai.security.loop.cost'])), 6) AS LoopCostUSD,
    min(Timestamp) AS FirstSeen
FROM genai_findings
WHERE Category = 'agent_loop' AND Timestamp >= now() - INTERVAL 7 DAY
GROUP BY TraceId
ORDER BY LoopCostUSD DESC, TraceId;

-- Q: Error rate by provider
SELECT
    Provider,
    sum(Calls) AS CallCount,
    sum(Errors) AS ErrorCount,
    round(ErrorCount / CallCount, 4) AS ErrorRate
FROM genai_calls_hourly
WHERE Hour >= now() - INTERVAL 1 DAY
GROUP BY Provider
ORDER BY ErrorRate DESC, Provider;

-- Q: Tokens per service
SELECT
    ServiceName,
    sum(InputTokens) AS Input,
    sum(OutputTokens) AS Output,
    Input + Output AS TotalTokens
FROM genai_calls_hourly
WHERE Hour >= now() - INTERVAL 7 DAY
GROUP BY ServiceName
ORDER BY TotalTokens DESC, ServiceName;

-- Q: Findings by detector per day
SELECT
    toDate(Timestamp) AS Day,
    Category,
    Detector,
    count() AS Findings,
    uniqExact(TraceId) AS Traces
FROM genai_findings
WHERE Timestamp >= now() - INTERVAL 30 DAY
GROUP BY Day, Category, Detector
ORDER BY Day, Findings DESC, Category, Detector;

-- Q: Slowest models (call duration)
SELECT
    RequestModel,
    sum(Calls) AS CallCount,
    round(quantilesMerge(0.5, 0.9, 0.95, 0.99)(DurationQuantiles)[1] / 1e9, 3) AS P50Seconds,
    round(quantilesMerge(0.5, 0.9, 0.95, 0.99)(DurationQuantiles)[3] / 1e9, 3) AS P95Seconds
FROM genai_calls_hourly
WHERE Hour >= now() - INTERVAL 7 DAY
GROUP BY RequestModel
ORDER BY P95Seconds DESC, RequestModel;

-- Q: Prompt cache hit ratio per model
SELECT
    RequestModel,
    sum(InputTokens) AS Input,
    sum(CacheReadTokens) AS CacheRead,
    round(CacheRead / Input, 4) AS CacheHitRatio
FROM genai_calls_hourly
WHERE Hour >= now() - INTERVAL 7 DAY
GROUP BY RequestModel
HAVING Input > 0
ORDER BY CacheHitRatio DESC, RequestModel;

-- Q: Conversations by cost
SELECT
    ConversationId,
    any(Tenant) AS Tenant,
    count() AS Calls,
    uniqExact(TraceId) AS Traces,
    sum(InputTokens + OutputTokens) AS Tokens,
    round(sum(Cost), 6) AS CostUSD
FROM genai_calls
WHERE ConversationId != '' AND Timestamp >= now() - INTERVAL 7 DAY
GROUP BY ConversationId
ORDER BY CostUSD DESC, ConversationId
LIMIT 20;

-- Q: Calls without a known price, by model
SELECT
    Provider,
    RequestModel,
    count() AS Calls,
    sum(InputTokens + OutputTokens) AS Tokens
FROM genai_calls
WHERE CostSource IN ('', 'unpriced') AND Timestamp >= now() - INTERVAL 7 DAY
GROUP BY Provider, RequestModel
ORDER BY Calls DESC, Provider, RequestModel;

-- Q: Latest high and critical findings, with the call they were found on
SELECT
    f.Timestamp AS Timestamp,
    f.Detector AS Detector,
    f.Severity AS Severity,
    f.TraceId AS TraceId,
    c.ServiceName AS Service,
    c.RequestModel AS Model,
    c.Tenant AS Tenant
FROM genai_findings AS f
LEFT JOIN genai_calls AS c ON c.TraceId = f.TraceId AND c.SpanId = f.SpanId
WHERE f.Severity IN ('high', 'critical') AND f.Timestamp >= now() - INTERVAL 1 DAY
ORDER BY f.Timestamp DESC, f.Detector
LIMIT 50;

-- Q: Calls recorded twice (an app's span and the proxy's), by service
SELECT
    ServiceName AS Service,
    count() AS SecondRecords,
    sum(toUInt64OrZero(SpanAttributes['gen_ai.usage.input_tokens'])) AS InputTokensNotCountedAgain
FROM otel_traces
WHERE mapContains(SpanAttributes, 'gen_ai.call.duplicate_of') AND Timestamp >= now() - INTERVAL 7 DAY
GROUP BY Service
ORDER BY SecondRecords DESC, Service;
