"""What Jaeger's three read APIs ask the store, answered in Jaeger's terms, once for all three.

The UI's HTTP JSON API, api_v3 and the gRPC remote storage all list services
and operations, search, fetch traces by id, summarise traces and derive
dependencies; ``JaegerReader`` does each once over the read side's queries
(collector.extensions.api.query), and each API only encodes the answer.

Span kinds are Jaeger's words (``server``, ``client``, ``producer``,
``consumer``, ``internal``; ``""`` for unspecified). Services and operations
are those seen within the configured ``max_time_window`` before now.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from opentelemetry.proto.trace.v1.trace_pb2 import Span, TracesData

from collector.extensions.api.jaeger.search import JaegerQuery
from collector.extensions.api.query import catalog, spanmatch
from collector.extensions.api.query.dependencies import Dependency, dependencies
from collector.extensions.api.query.runner import QueryRunner
from collector.extensions.api.query.services import list_services
from collector.extensions.api.query.spanmatch import TraceMatch, TraceOverview
from collector.extensions.api.query.sql import Scope, TimeRange, Window
from collector.extensions.api.query.tables import StoreTables
from collector.extensions.caller import CallerWatch
from exporters.clickhouse.columns import SPAN_KIND_NAMES

# Services and operations one listing returns at most.
MAX_CATALOG_NAMES = 10_000
_STORED_KIND = {
    "server": SPAN_KIND_NAMES[Span.SPAN_KIND_SERVER],
    "client": SPAN_KIND_NAMES[Span.SPAN_KIND_CLIENT],
    "producer": SPAN_KIND_NAMES[Span.SPAN_KIND_PRODUCER],
    "consumer": SPAN_KIND_NAMES[Span.SPAN_KIND_CONSUMER],
    "internal": SPAN_KIND_NAMES[Span.SPAN_KIND_INTERNAL],
}
_JAEGER_KIND = {stored: jaeger for jaeger, stored in _STORED_KIND.items()}
JAEGER_SPAN_KINDS = tuple(_STORED_KIND)


class UnknownSpanKind(ValueError):
    """A span kind Jaeger does not name."""


@dataclass(frozen=True)
class Operation:
    name: str
    span_kind: str  # Jaeger's word, "" for unspecified


class JaegerReader:
    """The store as Jaeger's APIs see it; every call is scoped to the caller's tenant."""

    def __init__(
        self,
        runner: QueryRunner,
        tables: StoreTables,
        max_trace_spans: int,
        catalog_window_seconds: float,
        clock: Callable[[], int],
    ) -> None:
        self._runner = runner
        self._tables = tables
        self._max_trace_spans = max_trace_spans
        self._catalog_window_ns = int(catalog_window_seconds * 1e9)
        self._clock = clock

    def _catalog_window(self) -> TimeRange:
        now = self._clock()
        return TimeRange(now - self._catalog_window_ns, now + 1)

    async def services(self, scope: Scope, caller: CallerWatch | None = None) -> list[str]:
        """The services with spans in the catalog window, by name."""
        records, _ = await list_services(
            self._runner, self._tables, scope, self._catalog_window(), MAX_CATALOG_NAMES, caller
        )
        return [record.name for record in records]

    async def operations(
        self, scope: Scope, service: str, span_kind: str = "", caller: CallerWatch | None = None
    ) -> list[Operation]:
        """The operations (span names and kinds) of ``service``; ``span_kind`` (Jaeger's word) narrows to one kind."""
        if span_kind and span_kind not in _STORED_KIND:
            raise UnknownSpanKind(f'unsupported span kind: "{span_kind}"; expected one of {", ".join(_STORED_KIND)}')
        found = await catalog.list_operations(
            self._runner,
            self._tables,
            scope,
            self._catalog_window(),
            service,
            MAX_CATALOG_NAMES,
            _STORED_KIND[span_kind] if span_kind else None,
            caller,
        )
        return [Operation(operation.name, _JAEGER_KIND.get(operation.kind, "")) for operation in found]

    async def find_trace_ids(
        self, scope: Scope, window: TimeRange, query: JaegerQuery, limit: int, caller: CallerWatch | None = None
    ) -> list[TraceMatch]:
        """The traces with a span meeting ``query`` in ``window``, newest first, at most ``limit``."""
        return await spanmatch.find_traces(
            self._runner, self._tables, scope, window, query.span_filter(), limit, caller=caller
        )

    async def find_traces(
        self, scope: Scope, window: TimeRange, query: JaegerQuery, limit: int, caller: CallerWatch | None = None
    ) -> list[tuple[str, TracesData]]:
        """The spans of the traces ``find_trace_ids`` names, in its order."""
        matches = await self.find_trace_ids(scope, window, query, limit, caller)
        return await self.get_traces(scope, [match.trace_id for match in matches], None, caller)

    async def get_traces(
        self,
        scope: Scope,
        trace_ids: Sequence[str],
        window: Window | None = None,
        caller: CallerWatch | None = None,
    ) -> list[tuple[str, TracesData]]:
        """The spans of ``trace_ids`` (32 hex digits each) that have any in ``scope``, in the order asked."""
        found = await spanmatch.fetch_traces(
            self._runner, self._tables, scope, trace_ids, self._max_trace_spans, window, caller
        )
        return [(trace_id, found[trace_id]) for trace_id in dict.fromkeys(trace_ids) if trace_id in found]

    async def trace_summaries(
        self, scope: Scope, window: TimeRange, query: JaegerQuery, limit: int, caller: CallerWatch | None = None
    ) -> list[TraceOverview]:
        """Overviews of the traces ``find_trace_ids`` names, in its order."""
        matches = await self.find_trace_ids(scope, window, query, limit, caller)
        ids = [match.trace_id for match in matches]
        found = await spanmatch.overviews(self._runner, self._tables, scope, ids, caller)
        return [found[trace_id] for trace_id in ids if trace_id in found]

    async def dependencies(
        self, scope: Scope, window: TimeRange, caller: CallerWatch | None = None
    ) -> list[Dependency]:
        return await dependencies(self._runner, self._tables, scope, window, caller)
