"""The store tables the read side queries, with their time columns and tenant expressions.

The read side depends on the store's schema (exporters.clickhouse.schema and
genai_schema: the contrib clickhouseexporter's ``otel_traces`` layout and the
GenAI tables derived from it); the names and expressions come from there, so
a tenant is the same thing to the views that fill ``genai_calls`` and to the
queries that read it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Protocol

from collector.extensions.api.query.sql import Table
from exporters.clickhouse.evaluation_schema import log_tenant_expression
from exporters.clickhouse.genai_schema import GenAITables, tenant_expression
from exporters.clickhouse.layout import Layout
from exporters.clickhouse.schema import TraceTables
from exporters.clickhouse.signal_schema import SignalTables

EVALUATIONS_TABLE = "genai_evaluations"


class SchemaOwner(Protocol):
    """What the read side needs to know of a store to name its tables (the clickhouse exporter's store)."""

    @property
    def tables(self) -> TraceTables: ...

    @property
    def layout(self) -> Layout: ...

    @property
    def signal_tables(self) -> SignalTables: ...

    @property
    def has_signal_tables(self) -> bool: ...


@dataclass(frozen=True)
class StoreTables:
    """Every table the read side reads, qualified for the store's database (the Distributed ones on a cluster)."""

    spans: Table
    calls: Table
    findings: Table
    calls_hourly: Table
    # The log records, GenAI content events among them (query.content); read only for spans a scope shows.
    logs: Table
    # <traces>_trace_id_ts: trace id → first and last second; holds no tenant data (see query.sql.TraceWindow).
    trace_lookup: str
    # One row per gen_ai.evaluation.result record (the clickhouse exporter's logs path fills it).
    evaluations: Table
    # Whether ``logs`` and ``evaluations`` exist: a traces-only store with create_schema off may not have them,
    # and then calls and traces are shown without event-borne content or evaluations.
    has_signal_tables: bool = True

    @classmethod
    def of(cls, store: SchemaOwner) -> StoreTables:
        return dataclasses.replace(
            cls.named(store.layout, store.tables, store.signal_tables), has_signal_tables=store.has_signal_tables
        )

    @classmethod
    def named(cls, layout: Layout, tables: TraceTables, signals: SignalTables | None = None) -> StoreTables:
        genai = GenAITables(tables.traces)
        signals = signals or SignalTables()
        return cls(
            spans=Table(layout.qualified(tables.traces), "Timestamp", "nanoseconds", tenant_expression()),
            calls=Table(layout.qualified(genai.calls), "Timestamp", "nanoseconds", "Tenant"),
            findings=Table(layout.qualified(genai.findings), "Timestamp", "nanoseconds", "Tenant"),
            calls_hourly=Table(layout.qualified(genai.calls_hourly), "Hour", "seconds", "Tenant"),
            logs=Table(layout.qualified(signals.logs), "Timestamp", "nanoseconds", log_tenant_expression()),
            trace_lookup=layout.qualified(tables.trace_id_ts),
            evaluations=Table(layout.qualified(EVALUATIONS_TABLE), "Timestamp", "nanoseconds", "TenantId"),
        )
