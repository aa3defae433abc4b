"""Fuzz the raw-SQL guard: SQL mixing allowed and forbidden pieces on the real chDB store, and hostile trees.

On the store, every statement either runs or is refused with the guard's own
error types (NotReadOnlyError, QueryError); one that runs is parsed again and
an independent walk checks that nothing forbidden is in what ran: no
forbidden function or table function, no table outside the store's database
and the allowed system tables, no INTO OUTFILE, no SETTINGS. The canary
file's content never comes back and the output file never appears.

Off the engine, the tree walker gets arbitrary JSON and mutations of real
trees, and must refuse (NotReadOnlyError) or pass them, never raise anything
else; what it passes the same independent walk must find clean.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from collector.query import guard
from collector.query.errors import NotReadOnlyError, QueryError
from collector.query.functions import ALLOWED_TABLE_FUNCTIONS
from exporters.clickhouse.config import ClickHouseConfig
from exporters.clickhouse.store import ClickHouseStore
from tests.fuzz.profiles import fuzz_settings

SECRET = f"canary-{uuid.uuid4().hex}"
# Independent of the allow-list: functions that read files, sleep, reveal settings or the process, or reach out.
FORBIDDEN_FUNCTIONS = frozenset(
    {"file", "url", "sleep", "sleepeachrow", "getsetting", "addresstosymbol", "dictget", "hostname", "aigenerate"}
)
# The system tables docs/security.md lists.
ALLOWED_SYSTEM = frozenset(
    {"one", "numbers", "numbers_mt", "zeros", "zeros_mt", "databases", "tables", "columns", "parts",
     "data_skipping_indices", "functions"}
)  # fmt: skip


def clean(tree: Any) -> None:
    """Assert, without the guard's code, that ``tree`` holds nothing forbidden."""
    pending = [(tree, False)]
    while pending:
        node, table_function = pending.pop()
        if isinstance(node, list):
            pending.extend((child, False) for child in node)
            continue
        if not isinstance(node, dict):
            continue
        assert "out_file" not in node and node.get("type") != "SetQuery" and "settings" not in node
        assert node.get("type") not in ("QueryParameter", "InsertQuery", "DropQuery", "AlterQuery", "CreateQuery")
        if node.get("type") == "Function":
            name = str(node.get("name", ""))
            if table_function:
                assert name in ALLOWED_TABLE_FUNCTIONS, name
            else:
                assert name.lower() not in FORBIDDEN_FUNCTIONS, name
        if node.get("type") in ("Identifier", "TableIdentifier"):
            parts = node.get("name_parts") or [node.get("name")]
            if len(parts) >= 2 and parts[0] == "system":
                assert parts[1] in ALLOWED_SYSTEM, parts
        for key, value in node.items():
            pending.append((value, key == "table_function"))


@pytest.fixture(scope="module")
def canary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("fuzz-canary") / "canary.txt"
    path.write_text(SECRET)
    return path


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClickHouseStore]:
    path = tmp_path_factory.mktemp("fuzz-guard") / "clickhouse"
    store = ClickHouseStore(ClickHouseConfig(endpoint=f"chdb://{path}"), logging.getLogger("fuzz.guard"))
    store.start()
    try:
        yield store
    finally:
        store.close()


CANARY = "'@CANARY@'"
OUTFILE = "'@OUTFILE@'"
literals = st.sampled_from(
    ["1", "-2.5", "'a'", "'--'", "'/*'", "'*/'", "'it''s'", "'a\\'b'", "$$--$$", "$t$'$t$", "'file(x)'", "NULL",
     "[1, 2]", "(1, 'x')", "'\u0456'", "'; DROP TABLE otel_traces'"]
)  # fmt: skip
allowed_calls = st.sampled_from(["abs({})", "concat({}, 'x')", "toString({})", "length(toString({}))", "sum({})"])
forbidden_calls = st.sampled_from(
    ["file(" + CANARY + ")", "`file`(" + CANARY + ")", '"file"(' + CANARY + ")", "FILE(" + CANARY + ")",
     "sleep(0)", "getSetting('readonly')", "addressToSymbol(toUInt64(0))", "dictGet('d', 'a', toUInt64(1))",
     "hostName()", "system.processes.query", "number IN system.users", "{p:String}"]
)  # fmt: skip
tables = st.sampled_from(
    ["numbers(3)", "system.one", "otel_traces", "default.otel_traces", "system.tables", "file(" + CANARY + ")",
     "`file`(" + CANARY + ", 'LineAsString')", "system.processes", '"system"."users"', "merge('system', 'users')",
     "url('http://127.0.0.1:9/')", "view(SELECT file(" + CANARY + "))", "generate_series(1, 2)"]
)  # fmt: skip
glue = st.sampled_from([" ", "\n", " /* c */ ", " -- c\n", "\t"])
suffixes = st.sampled_from(
    ["", "", " LIMIT 2", " INTO OUTFILE " + OUTFILE, " INTO OUTFILE " + OUTFILE + " APPEND", " SETTINGS readonly = 0",
     " FORMAT JSON", "; SELECT file(" + CANARY + ")", " UNION ALL SELECT file(" + CANARY + ")", ";"]
)  # fmt: skip


@st.composite
def expressions(draw: st.DrawFn, depth: int = 0) -> str:
    choice = draw(st.integers(0, 4 if depth < 2 else 1))
    if choice == 0:
        return draw(literals)
    if choice == 1:
        return draw(st.one_of(forbidden_calls, st.just("number")))
    if choice == 2:
        return draw(allowed_calls).format(draw(expressions(depth + 1)))
    if choice == 3:
        return f"(SELECT {draw(expressions(depth + 1))})"
    return f"arrayMap(x -> {draw(expressions(depth + 1))}, [1])"


@st.composite
def statements(draw: st.DrawFn) -> str:
    items = draw(st.lists(expressions(), min_size=1, max_size=3))
    sep = draw(glue)
    sql = f"SELECT{sep}{', '.join(items)}{sep}FROM{sep}{draw(tables)}"
    if draw(st.booleans()):
        sql = f"WITH w AS ({sql}){sep}SELECT * FROM w"
    if draw(st.booleans()):
        sql = draw(st.sampled_from(["EXPLAIN ", "EXPLAIN AST ", ""])) + sql
    sql += draw(suffixes)
    return sql.upper() if draw(st.integers(0, 9)) == 0 else sql


@fuzz_settings(ci_examples=400)
@given(sql=st.one_of(statements(), st.text(max_size=60)))
def test_nothing_forbidden_runs(store: ClickHouseStore, canary: Path, sql: str) -> None:
    out = canary.parent / "written.out"
    sql = sql.replace("@CANARY@", str(canary)).replace("@OUTFILE@", str(out))
    try:
        result = store.query(sql)
    except (NotReadOnlyError, QueryError) as refused:
        event(f"refused: {type(refused).__name__}")
        message = str(refused)
        assert SECRET not in message and "\n" not in message
    else:
        event("ran")
        assert SECRET not in repr(result.rows)
        row = store.submit_built(guard.PARSE_SQL, {"sql": sql.strip()}).result().rows[0]
        clean(json.loads(guard.ParsedStatement.from_row(row).checked))
    assert not out.exists()


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=12)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(
            st.sampled_from(["type", "name", "children", "arguments", "out_file", "settings", "table_function",
                             "name_parts", "kind", "query", "list_of_selects", "select", "tables", "value", "alias",
                             "database_and_table_name", "format_ast", "from", "database", "table", "func_name"]),
            st.one_of(inner, st.sampled_from(list(guard.NODE_KEYS) + ["SetQuery", "QueryParameter", "file", "numbers",
                                                                       "system", "processes", "LAMBDA_FUNCTION"])),
            max_size=5,
        ),
    ),
    max_leaves=30,
)  # fmt: skip
SEED = json.loads(
    '{"type":"SelectWithUnionQuery","union_mode":"UNION_DEFAULT","list_of_selects":{"type":"ExpressionList",'
    '"children":[{"type":"SelectQuery","select":{"type":"ExpressionList","children":[{"type":"Function",'
    '"name":"abs","arguments":{"type":"ExpressionList","children":[{"type":"Identifier","name":"number"}]}}]},'
    '"tables":{"type":"TablesInSelectQuery","children":[{"type":"TablesInSelectQueryElement","table_expression":'
    '{"type":"TableExpression","table_function":{"type":"Function","name":"numbers","arguments":{"type":'
    '"ExpressionList","children":[{"type":"Literal","value":{"field_type":"UInt64","value":3}}]}}}}]}}]},'
    '"is_outfile_append":false,"is_outfile_truncate":false,"is_into_outfile_with_stdout":false}'
)


def walk_or_refuse(tree: Any) -> None:
    text = json.dumps(tree)
    parsed = guard.ParsedStatement(
        ast=text, canonical="SELECT 1", rebuilt="SELECT 1", checked=text, databases=["system"]
    )
    try:
        guard.accept(parsed, "default")
    except NotReadOnlyError as refused:
        assert str(refused) and "\n" not in str(refused)
    else:
        clean(tree)


@fuzz_settings(ci_examples=300)
@given(tree=json_values)
def test_arbitrary_trees_are_refused_or_clean(tree: Any) -> None:
    walk_or_refuse(tree)


def _nodes(tree: Any) -> list[dict[str, Any]]:
    found, pending = [], [tree]
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            found.append(node)
            pending.extend(node.values())
        elif isinstance(node, list):
            pending.extend(node)
    return found


@fuzz_settings(ci_examples=300)
@given(data=st.data())
def test_mutated_real_trees_are_refused_or_clean(data: st.DataObject) -> None:
    tree = json.loads(json.dumps(SEED))
    for _ in range(data.draw(st.integers(1, 3))):
        node = data.draw(st.sampled_from(_nodes(tree)))
        key = data.draw(st.sampled_from([*node.keys(), "out_file", "settings", "alias", "kind", "name_parts"]))
        node[key] = data.draw(json_values)
    walk_or_refuse(tree)


def test_a_tree_too_deep_for_python_is_refused() -> None:
    deep = "[" * 100_000 + "]" * 100_000
    parsed = guard.ParsedStatement(ast=deep, canonical="x", rebuilt="x", checked=deep, databases=[])
    with pytest.raises(NotReadOnlyError, match="nested too deeply"):
        guard.accept(parsed, "default")
