"""Where the exporter's tables live and how they are built: one server or a cluster.

Every CREATE statement the exporter runs goes through a ``Layout``, so the
choices that differ between a single server and a cluster are made once:

- one server (or chDB): each table under its own name, ``MergeTree`` family
  engines (or the configured ``table_engine``);
- a cluster (``cluster_name``): every statement carries ``ON CLUSTER``, the data
  lives in ``<name>_local`` tables with ``Replicated*`` engines on each node, and
  a ``Distributed`` table under the plain name sits in front of them. Inserts and
  queries use the plain names, so readers (Grafana, docs/queries.sql) are the
  same either way; materialized views read and write the local tables, so each
  shard derives its own rows from the spans it holds.
"""

from __future__ import annotations

from dataclasses import dataclass

SECONDS_PER_DAY = 86_400
SECONDS_PER_HOUR = 3_600
SECONDS_PER_MINUTE = 60
LOCAL_SUFFIX = "_local"
MERGE_TREE = "MergeTree"
REPLICATED_PREFIX = "Replicated"
SHARED_PREFIX = "Shared"
INDEX_GRANULARITY = 8192
# Inserts remembered per table for deduplication on engines without Keeper (MergeTree):
# their hashes live in a small file next to the table. A retried batch comes back within
# the retry budget (minutes) or after a restart; even at ten inserts a second from many
# collectors that is well inside 10,000. Replicated and Shared engines keep their own
# window in Keeper (replicated_deduplication_window, 10,000 inserts and one hour on current servers).
NON_REPLICATED_DEDUPLICATION_WINDOW = 10_000


def quote_identifier(name: str) -> str:
    """A ClickHouse identifier in backticks, with embedded backticks escaped."""
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def ttl_clause(ttl_seconds: float, time_expression: str) -> str:
    """``TTL <expr> + toIntervalX(n)`` in the largest whole unit, or nothing when ttl is 0."""
    seconds = int(ttl_seconds)
    if seconds <= 0:
        return ""
    for unit_seconds, function in (
        (SECONDS_PER_DAY, "toIntervalDay"),
        (SECONDS_PER_HOUR, "toIntervalHour"),
        (SECONDS_PER_MINUTE, "toIntervalMinute"),
    ):
        if seconds % unit_seconds == 0:
            return f"TTL {time_expression} + {function}({seconds // unit_seconds})"
    return f"TTL {time_expression} + toIntervalSecond({seconds})"


@dataclass(frozen=True)
class Layout:
    """The database, retention, cluster and engine every table is created with.

    ``engine`` is the MergeTree family member for plain tables (``MergeTree``,
    ``ReplicatedMergeTree``, ``SharedMergeTree``); empty means ``MergeTree`` on
    one server and ``ReplicatedMergeTree`` on a cluster. Aggregating tables use
    the same family (``ReplicatedMergeTree`` gives ``ReplicatedAggregatingMergeTree``)
    and the same ``engine_params``.
    """

    database: str
    ttl_seconds: float = 0.0
    cluster: str = ""
    engine: str = ""
    engine_params: str = ""

    @property
    def on_cluster(self) -> str:
        """`` ON CLUSTER `name` `` to follow a statement's object name, or nothing."""
        return f" ON CLUSTER {quote_identifier(self.cluster)}" if self.cluster else ""

    def storage_name(self, table: str) -> str:
        """The name of the table that holds the rows: ``<table>_local`` on a cluster."""
        return table + LOCAL_SUFFIX if self.cluster else table

    def qualified(self, table: str) -> str:
        return f"{quote_identifier(self.database)}.{quote_identifier(table)}"

    def qualified_storage(self, table: str) -> str:
        return self.qualified(self.storage_name(table))

    def table_names(self, table: str) -> tuple[str, ...]:
        """Every table one logical table consists of: the local one and its Distributed front on a cluster."""
        return (self.storage_name(table), table) if self.cluster else (table,)

    @property
    def family(self) -> str:
        """The MergeTree family member plain tables are built with."""
        return self.engine or (REPLICATED_PREFIX + MERGE_TREE if self.cluster else MERGE_TREE)

    @property
    def keeps_own_deduplication_log(self) -> bool:
        """True for MergeTree, which deduplicates inserts only with a window set on the table."""
        return not self.family.startswith((REPLICATED_PREFIX, SHARED_PREFIX))

    def engine_clause(self, aggregating: bool = False) -> str:
        family = self.family
        if aggregating:
            family = family.removesuffix(MERGE_TREE) + "Aggregating" + MERGE_TREE
        return f"ENGINE = {family}({self.engine_params})"

    def deduplication_settings(self) -> tuple[str, ...]:
        """Table settings that make inserts with the same token land once; Keeper-backed engines need none."""
        if self.keeps_own_deduplication_log:
            return (f"non_replicated_deduplication_window = {NON_REPLICATED_DEDUPLICATION_WINDOW}",)
        return ()

    def settings_clause(self) -> str:
        """The SETTINGS clause every table of the schema is created with."""
        settings = (
            f"index_granularity = {INDEX_GRANULARITY}",
            "ttl_only_drop_parts = 1",
            *self.deduplication_settings(),
        )
        return "SETTINGS " + ", ".join(settings)

    def upgrade_settings(self, table: str) -> list[str]:
        """Statements that give a table made before deduplication its window; nothing when none is needed.

        CREATE ... IF NOT EXISTS leaves an existing table as it is, so without this
        a store created by an older version would never deduplicate.
        """
        settings = self.deduplication_settings()
        if not settings:
            return []
        return [f"ALTER TABLE {self.qualified_storage(table)}{self.on_cluster} MODIFY SETTING {', '.join(settings)}"]

    def ttl(self, time_expression: str) -> str:
        return ttl_clause(self.ttl_seconds, time_expression)

    def create_database(self) -> str:
        return f"CREATE DATABASE IF NOT EXISTS {quote_identifier(self.database)}{self.on_cluster}"

    def create_table(self, table: str, body: str) -> str:
        """``CREATE TABLE`` of the storage table; ``body`` starts with the column list."""
        return f"CREATE TABLE IF NOT EXISTS {self.qualified_storage(table)}{self.on_cluster} {body}"

    def create_view(self, view: str, target: str, select: str) -> str:
        """A materialized view writing into ``target``'s storage table; ``select`` reads storage tables."""
        return (
            f"CREATE MATERIALIZED VIEW IF NOT EXISTS {self.qualified(view)}{self.on_cluster}\n"
            f"TO {self.qualified_storage(target)}\n{select}"
        )

    def modify_view_query(self, view: str, select: str) -> str:
        """Replaces a materialized view's SELECT in place (``select`` as ``create_view`` takes it)."""
        return f"ALTER TABLE {self.qualified(view)}{self.on_cluster} MODIFY QUERY\n{select.removeprefix('AS ')}"

    def create_distributed(self, table: str, sharding_key: str) -> list[str]:
        """The Distributed table in front of ``table``'s local tables: nothing off a cluster."""
        if not self.cluster:
            return []
        engine = (
            f"Distributed({quote_identifier(self.cluster)}, {quote_identifier(self.database)}, "
            f"{quote_identifier(self.storage_name(table))}, {sharding_key})"
        )
        return [
            f"CREATE TABLE IF NOT EXISTS {self.qualified(table)}{self.on_cluster}\n"
            f"AS {self.qualified_storage(table)}\nENGINE = {engine}"
        ]
