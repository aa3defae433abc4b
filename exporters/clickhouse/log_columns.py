"""Walk OTLP log records into the columns of the ``otel_logs`` table, as the contrib exporter fills it.

The body is pdata's ``Value.AsString`` of the record's AnyValue (a string as
it is, other types as exporters.clickhouse.rendering renders attribute values);
the timestamp is the record's time, or its observed time when it has none;
trace and span IDs are lower-case hex, empty when absent; ``TraceFlags`` is the
record's W3C trace flags (the low byte of ``flags``).
"""

from __future__ import annotations

from collections.abc import Iterable

import pyarrow as pa
from opentelemetry.proto.logs.v1.logs_pb2 import LogsData

from exporters.clickhouse.rendering import MapBuilder, id_hex_or_empty, resource_columns, value_as_string

LOG_COLUMNS: tuple[str, ...] = (
    "Timestamp",
    "TraceId",
    "SpanId",
    "TraceFlags",
    "SeverityText",
    "SeverityNumber",
    "ServiceName",
    "Body",
    "ResourceSchemaUrl",
    "ResourceAttributes",
    "ScopeSchemaUrl",
    "ScopeName",
    "ScopeVersion",
    "ScopeAttributes",
    "LogAttributes",
    "EventName",
)
# The W3C trace flags are the low byte of LogRecord.flags; the rest is reserved.
TRACE_FLAGS_MASK = 0xFF
# SeverityNumber is a UInt8 column; a number outside the enum's range (1-24) keeps its low byte, not the batch.
SEVERITY_NUMBER_MASK = 0xFF


def log_record_count(logs: LogsData) -> int:
    """How many log records ``logs`` holds."""
    return sum(len(scope_logs.log_records) for rl in logs.resource_logs for scope_logs in rl.scope_logs)


def logs_to_table(batches: Iterable[LogsData]) -> pa.Table:
    """Every log record of ``batches`` as an Arrow table with the columns of LOG_COLUMNS, in that order."""
    timestamp: list[int] = []
    trace_id: list[str] = []
    span_id: list[str] = []
    trace_flags: list[int] = []
    severity_text: list[str] = []
    severity_number: list[int] = []
    service_name: list[str] = []
    body: list[str] = []
    resource_schema_url: list[str] = []
    scope_schema_url: list[str] = []
    scope_name: list[str] = []
    scope_version: list[str] = []
    event_name: list[str] = []
    rendered: dict[bytes, str] = {}
    resource_attributes = MapBuilder(rendered)
    scope_attributes = MapBuilder(rendered)
    log_attributes = MapBuilder(rendered)
    for logs in batches:
        for resource_logs in logs.resource_logs:
            resource_keys, resource_values, service = resource_columns(resource_logs.resource.attributes)
            resource_url = resource_logs.schema_url
            for scope_logs in resource_logs.scope_logs:
                scope = scope_logs.scope
                scope_keys, scope_values, _ = resource_columns(scope.attributes)
                name_of_scope, version_of_scope, scope_url = scope.name, scope.version, scope_logs.schema_url
                for record in scope_logs.log_records:
                    timestamp.append(record.time_unix_nano or record.observed_time_unix_nano)
                    trace_id.append(id_hex_or_empty(record.trace_id))
                    span_id.append(id_hex_or_empty(record.span_id))
                    trace_flags.append(record.flags & TRACE_FLAGS_MASK)
                    severity_text.append(record.severity_text)
                    severity_number.append(record.severity_number & SEVERITY_NUMBER_MASK)
                    service_name.append(service)
                    value = record.body
                    body.append(
                        value.string_value if value.WhichOneof("value") == "string_value" else value_as_string(value)
                    )
                    resource_schema_url.append(resource_url)
                    resource_attributes.add_flat(resource_keys, resource_values)
                    scope_schema_url.append(scope_url)
                    scope_name.append(name_of_scope)
                    scope_version.append(version_of_scope)
                    scope_attributes.add_flat(scope_keys, scope_values)
                    log_attributes.add(record.attributes)
                    event_name.append(record.event_name)
    text = pa.string()
    arrays = [
        pa.array(timestamp, pa.timestamp("ns")),
        pa.array(trace_id, text),
        pa.array(span_id, text),
        pa.array(trace_flags, pa.uint8()),
        pa.array(severity_text, text),
        pa.array(severity_number, pa.uint8()),
        pa.array(service_name, text),
        pa.array(body, text),
        pa.array(resource_schema_url, text),
        resource_attributes.build(),
        pa.array(scope_schema_url, text),
        pa.array(scope_name, text),
        pa.array(scope_version, text),
        scope_attributes.build(),
        log_attributes.build(),
        pa.array(event_name, text),
    ]
    return pa.Table.from_arrays(arrays, names=list(LOG_COLUMNS))
