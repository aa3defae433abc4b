"""The ``query_limits`` settings, the locked profile every read connection gets, and the engine's memory budget.

Names follow ClickHouse's own settings. Every read connection is opened with
the profile below, ``readonly`` last: once it is set, the engine refuses any
change to the others for the rest of the connection's life (chDB, where
``readonly=1``); a server gets ``readonly=2``, which lets the client send the
profile with each query, and the query user an operator may configure bounds
the same settings with constraints (docs/security.md).

Memory, with the embedded engine: chDB runs in the collector's process, so its
memory counts against the ``memory_limiter``. When one is configured the
engine is capped at its soft limit (``max_server_memory_usage``), and queries
share half of that cap; ``max_memory_usage`` × ``max_concurrent_queries`` must
fit in their share. Without a memory_limiter the engine keeps its own cap (0.9
of the machine's memory) and the same share rule applies to it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from collector.config.types import Duration
from processors.memory_limiter.memory import total_bytes as machine_memory

DEFAULT_MAX_CONCURRENT_QUERIES = 2
DEFAULT_MAX_QUEUED_QUERIES = 16
DEFAULT_MAX_EXECUTION_TIME = Duration(30.0)
# Per query; lowered to fit the engine's budget when not set explicitly (see MemoryPlan).
DEFAULT_MAX_MEMORY_USAGE = 1024 * 1024 * 1024
DEFAULT_MAX_RESULT_ROWS = 100_000
DEFAULT_MAX_RESULT_BYTES = 64 * 1024 * 1024
# Engine threads per query: queries must leave cores to ingest.
DEFAULT_MAX_THREADS = 1
# The embedded engine's own cap when nothing sets one: ClickHouse's max_server_memory_usage_to_ram_ratio.
ENGINE_DEFAULT_MEMORY_RATIO = 0.9
# The part of the engine's memory cap queries may use together; inserts and merges keep the rest.
QUERY_SHARE_OF_ENGINE_MEMORY = 0.5
# ClickHouse's query priority (1 is the highest; 0 takes no part): a query waits while an insert of
# higher priority runs, so ingest keeps its pace while queries run on the same engine.
INSERT_PRIORITY = 1
QUERY_PRIORITY = 10
# The nice value of the engine threads running a query (os_thread_priority); the engine applies it only
# with CAP_SYS_NICE, and ignores it otherwise.
QUERY_THREAD_NICE = 19
MIB = 1024 * 1024


@dataclass(frozen=True)
class QueryLimits:
    """How many queries run at once, how many wait, and what each may use."""

    max_concurrent_queries: int = DEFAULT_MAX_CONCURRENT_QUERIES
    max_queued_queries: int = DEFAULT_MAX_QUEUED_QUERIES
    max_execution_time: Duration = DEFAULT_MAX_EXECUTION_TIME
    max_memory_usage: int = 0  # 0: DEFAULT_MAX_MEMORY_USAGE, or less to fit the engine's budget
    max_result_rows: int = DEFAULT_MAX_RESULT_ROWS
    max_result_bytes: int = DEFAULT_MAX_RESULT_BYTES
    max_threads: int = DEFAULT_MAX_THREADS

    def validate(self) -> Iterable[tuple[str, str]]:
        for name in ("max_concurrent_queries", "max_result_rows", "max_result_bytes", "max_threads"):
            if getattr(self, name) < 1:
                yield name, "must be at least 1"
        if self.max_queued_queries < 0:
            yield "max_queued_queries", "must not be negative"
        if self.max_execution_time <= 0:
            yield "max_execution_time", "must be more than 0"
        if self.max_memory_usage < 0:
            yield "max_memory_usage", "must not be negative (0 picks a share of the engine's memory)"


@dataclass(frozen=True)
class MemoryPlan:
    """The embedded engine's memory cap (0: the engine's own default) and each query's max_memory_usage."""

    engine_cap: int
    per_query: int


def plan_memory(limits: QueryLimits, memory_limit: int, total_bytes: int | None = None) -> MemoryPlan:
    """Memory for the embedded engine; ``memory_limit`` is the memory_limiter's soft limit, 0 without one."""
    budget = query_budget(memory_limit, machine_memory() if total_bytes is None else total_bytes)
    fitted = max(1, budget // limits.max_concurrent_queries)
    per_query = limits.max_memory_usage or min(DEFAULT_MAX_MEMORY_USAGE, fitted)
    return MemoryPlan(engine_cap=memory_limit, per_query=per_query)


def query_budget(memory_limit: int, total_bytes: int) -> int:
    """What the embedded engine's queries may use together."""
    cap = memory_limit or int(total_bytes * ENGINE_DEFAULT_MEMORY_RATIO)
    return int(cap * QUERY_SHARE_OF_ENGINE_MEMORY)


def memory_problems(limits: QueryLimits, memory_limit: int, total_bytes: int) -> Iterable[tuple[str, str]]:
    """An explicit max_memory_usage that, times max_concurrent_queries, overruns the embedded engine's budget."""
    budget = query_budget(memory_limit, total_bytes)
    wanted = limits.max_memory_usage * limits.max_concurrent_queries
    if limits.max_memory_usage and wanted > budget:
        cap = "the memory_limiter's soft limit" if memory_limit else "the engine's default cap"
        yield (
            "max_memory_usage",
            f"{limits.max_concurrent_queries} concurrent queries × {limits.max_memory_usage // MIB} MiB "
            f"exceed the {budget // MIB} MiB queries may use (half of {cap}); "
            "lower max_memory_usage or max_concurrent_queries",
        )


def insert_profile(embedded: bool) -> dict[str, str]:
    """The settings of the connection that inserts: above queries in the engine's priorities (chDB only; on a
    server, inserts keep whatever priority the server's profile gives them)."""
    return {"priority": str(INSERT_PRIORITY)} if embedded else {}


def locked_profile(limits: QueryLimits, max_memory_usage: int, embedded: bool) -> dict[str, str]:
    """The settings of every read connection, in the order they must be applied (readonly last)."""
    profile = {
        "max_execution_time": f"{float(limits.max_execution_time):g}",
        "timeout_overflow_mode": "throw",
        "max_memory_usage": str(max_memory_usage),
        "max_result_rows": str(limits.max_result_rows),
        "max_result_bytes": str(limits.max_result_bytes),
        "result_overflow_mode": "throw",
        "max_threads": str(limits.max_threads),
        # Reach the engine offers beyond the data: the process's own symbols and memory, regular
        # expression sets compiled by Hyperscan outside the engine's memory accounting, DDL.
        "allow_introspection_functions": "0",
        "allow_hyperscan": "0",
        "allow_ddl": "0",
        # Ingest first: queries yield to inserts, and their threads run at the lowest CPU priority.
        "priority": str(QUERY_PRIORITY),
        "os_thread_priority": str(QUERY_THREAD_NICE),
    }
    if embedded:
        # chDB runs Python code from queries through python(); servers have no such setting.
        profile["allow_python_table_function"] = "0"
        profile["readonly"] = "1"
    else:
        # A query whose client went away is stopped by the server instead of running on.
        profile["cancel_http_readonly_queries_on_client_close"] = "1"
        profile["readonly"] = "2"
    return profile
