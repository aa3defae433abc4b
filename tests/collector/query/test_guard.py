"""The raw-SQL guard on the real chDB store: every attack class of issue 13 refused, files untouched, nothing run.

Each refused statement goes through ClickHouseStore.query, the path the admin
endpoint and ``genai-collector query`` take. Where an attack would read a
file, the file is a canary whose content must not come back; where it would
write or run something, the path it would create must not exist afterwards.
The controls show the engine itself would have done it (readonly does not stop
the scalar file() nor INTO OUTFILE), so the guard is what stops it.
"""

from __future__ import annotations

import logging
import re
import sysconfig
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from collector.query import guard
from collector.query.errors import NotReadOnlyError, QueryError
from collector.query.functions import ALLOWED_TABLE_FUNCTIONS, allowed_functions
from collector.queue import Batch
from exporters.clickhouse.config import ClickHouseConfig
from exporters.clickhouse.store import ClickHouseStore
from tests.conftest import make_traces

FUNCTION_REFUSED = r"^function {}\(\) is not allowed in queries$"
TABLE_FUNCTION_REFUSED = r"^table function {}\(\) is not allowed in queries$"
TABLE_REFUSED = r"^table {} is not allowed in queries: they read database default and the system tables "
NOT_A_READ = "only SELECT, WITH, EXPLAIN, SHOW TABLES, SHOW DATABASES and SHOW COLUMNS statements are accepted; got "


@dataclass(frozen=True)
class Paths:
    """Files an attack would read, write or create; ``secret`` is the canary's content."""

    canary: Path
    secret: str
    out: Path
    marker: Path


@pytest.fixture(scope="module")
def paths(tmp_path_factory: pytest.TempPathFactory) -> Paths:
    root = tmp_path_factory.mktemp("attacks")
    secret = f"canary-{uuid.uuid4().hex}"
    canary = root / "canary.txt"
    canary.write_text(secret)
    return Paths(canary=canary, secret=secret, out=root / "written.csv", marker=root / "executed")


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClickHouseStore]:
    path = tmp_path_factory.mktemp("guard") / "clickhouse"
    store = ClickHouseStore(ClickHouseConfig(endpoint=f"chdb://{path}"), logging.getLogger("test.guard"))
    store.start()
    store.send(Batch([make_traces(3, service="guarded")], 3))
    try:
        yield store
    finally:
        store.close()


def refused(store: ClickHouseStore, sql: str, paths: Paths) -> str:
    """The guard's message for ``sql``, after checking nothing of the canary came back and nothing was made."""
    with pytest.raises((NotReadOnlyError, QueryError)) as raised:
        store.query(sql)
    message = str(raised.value)
    assert paths.secret not in message
    assert "\n" not in message
    assert not paths.out.exists() and not paths.marker.exists()
    return message


def fill(template: str, paths: Paths) -> str:
    return template.format(canary=paths.canary, out=paths.out, marker=paths.marker)


READS = {
    # The exact inputs of issue 13.
    "quoted name": ("SELECT `file`('{canary}')", FUNCTION_REFUSED.format("file")),
    "string that looks like a comment": ("SELECT '--', file('{canary}')", FUNCTION_REFUSED.format("file")),
    "heredoc": ("SELECT $$--$$, file('{canary}')", FUNCTION_REFUSED.format("file")),
    "environment": ("SELECT file('/proc/self/environ')", FUNCTION_REFUSED.format("file")),
    # Quoting.
    "double-quoted name": ("SELECT \"file\"('{canary}')", FUNCTION_REFUSED.format("file")),
    "upper case": ("SELECT FILE('{canary}')", FUNCTION_REFUSED.format("FILE")),
    "tagged heredoc holding a quote": ("SELECT $t$'$t$, file('{canary}')", FUNCTION_REFUSED.format("file")),
    "heredoc holding a comment start": ("SELECT $$/*$$, file('{canary}'), $$*/$$", FUNCTION_REFUSED.format("file")),
    # Comments and string escapes.
    "block comment start in a string": ("SELECT '/*', file('{canary}'), '*/'", FUNCTION_REFUSED.format("file")),
    "comment before the call": ("SELECT /* file( */ file('{canary}')", FUNCTION_REFUSED.format("file")),
    "line comment": ("SELECT 1 -- a comment\n, file('{canary}')", FUNCTION_REFUSED.format("file")),
    "backslash-escaped quote": ("SELECT 'it\\'s', file('{canary}')", FUNCTION_REFUSED.format("file")),
    "doubled quote": ("SELECT 'it''s', file('{canary}')", FUNCTION_REFUSED.format("file")),
    "escaped backslash then quote": ("SELECT 'a\\\\', file('{canary}')", FUNCTION_REFUSED.format("file")),
    # Unicode look-alikes: not the name "file" to the parser, and not an allowed name either.
    "cyrillic i in backticks": ("SELECT `f\u0456le`('{canary}')", FUNCTION_REFUSED.format("f\u0456le")),
    "zero-width joiner in backticks": ("SELECT `fi\u200dle`('{canary}')", FUNCTION_REFUSED.format("fi\u200dle")),
    # Nesting: subqueries, CTEs, lambdas, transformers, every clause.
    "nested subquery": ("SELECT * FROM (SELECT * FROM (SELECT file('{canary}')))", FUNCTION_REFUSED.format("file")),
    "CTE": ("WITH f AS (SELECT file('{canary}') AS c) SELECT c FROM f", FUNCTION_REFUSED.format("file")),
    "WITH expression": ("WITH file('{canary}') AS c SELECT c", FUNCTION_REFUSED.format("file")),
    "scalar subquery": ("SELECT (SELECT file('{canary}'))", FUNCTION_REFUSED.format("file")),
    "IN subquery": ("SELECT 1 IN (SELECT file('{canary}'))", FUNCTION_REFUSED.format("file")),
    "lambda": ("SELECT arrayMap(p -> file(p), ['{canary}'])", FUNCTION_REFUSED.format("file")),
    "APPLY transformer": ("SELECT * APPLY(file) FROM (SELECT '{canary}' AS p)", FUNCTION_REFUSED.format("file")),
    "APPLY lambda": ("SELECT * APPLY(p -> file(p)) FROM (SELECT '{canary}' AS p)", FUNCTION_REFUSED.format("file")),
    "ORDER BY": ("SELECT 1 ORDER BY file('{canary}')", FUNCTION_REFUSED.format("file")),
    "window": ("SELECT sum(1) OVER (PARTITION BY file('{canary}'))", FUNCTION_REFUSED.format("file")),
    "EXPLAIN": ("EXPLAIN SYNTAX SELECT file('{canary}')", FUNCTION_REFUSED.format("file")),
    "UNION": ("SELECT 1 UNION ALL SELECT file('{canary}')", FUNCTION_REFUSED.format("file")),
    # Table functions.
    "table function": ("SELECT * FROM file('{canary}', 'LineAsString')", TABLE_FUNCTION_REFUSED.format("file")),
    "quoted table function": (
        "SELECT * FROM `file`('{canary}', 'LineAsString')",
        TABLE_FUNCTION_REFUSED.format("file"),
    ),
    "joined table function": (
        "SELECT * FROM numbers(1) AS n JOIN file('{canary}', 'LineAsString') AS f ON 1",
        TABLE_FUNCTION_REFUSED.format("file"),
    ),
    "view of a file": ("SELECT * FROM view(SELECT file('{canary}'))", FUNCTION_REFUSED.format("file")),
    "url": ("SELECT * FROM url('http://127.0.0.1:9/', 'LineAsString')", TABLE_FUNCTION_REFUSED.format("url")),
    "merge over system": ("SELECT * FROM merge('system', '^processes$')", TABLE_FUNCTION_REFUSED.format("merge")),
}


@pytest.mark.parametrize("attack", sorted(READS))
def test_reading_a_file_is_refused(store: ClickHouseStore, paths: Paths, attack: str) -> None:
    template, message = READS[attack]
    assert re.match(message, refused(store, fill(template, paths), paths))


def test_control_the_engine_alone_would_read_the_canary(store: ClickHouseStore, paths: Paths) -> None:
    # readonly=1 does not stop the scalar file(): built SQL, which skips the guard, reads the canary.
    assert store.submit_built("SELECT file({path:String})", {"path": str(paths.canary)}).result().rows == [
        [paths.secret]
    ]


@pytest.mark.parametrize(
    "template",
    [
        "SELECT 1 INTO OUTFILE '{out}'",
        "SELECT 1 INTO OUTFILE '{out}' TRUNCATE",
        "SELECT 1 INTO OUTFILE '{out}' APPEND",
        "SELECT 1 INTO OUTFILE '{out}' AND STDOUT",
        "SELECT 1 INTO OUTFILE '{out}' COMPRESSION 'gzip'",
        "SELECT 1 INTO OUTFILE '{out}' APPEND COMPRESSION 'gzip' LEVEL 3",
        "SELECT * FROM (SELECT 1) INTO OUTFILE '{out}'",
        "WITH x AS (SELECT 1) SELECT * FROM x INTO OUTFILE '{out}'",
        "SELECT 1 UNION ALL SELECT 2 INTO OUTFILE '{out}'",
        "EXPLAIN AST SELECT 1 INTO OUTFILE '{out}'",
        "SHOW TABLES INTO OUTFILE '{out}'",
        "select 1 into\n outfile '{out}'",
        "SELECT 1 /* */ INTO /* */ OUTFILE '{out}'",
    ],
)
def test_writing_a_file_is_refused(store: ClickHouseStore, paths: Paths, template: str) -> None:
    assert refused(store, fill(template, paths), paths) == guard.INTO_OUTFILE


def test_a_pth_file_cannot_be_planted_in_site_packages(store: ClickHouseStore, paths: Paths) -> None:
    planted = Path(sysconfig.get_paths()["purelib"]) / f"genai_guard_{uuid.uuid4().hex}.pth"
    sql = f"SELECT 'import os; open(\\'{paths.marker}\\', \\'w\\')' INTO OUTFILE '{planted}'"
    assert refused(store, sql, paths) == guard.INTO_OUTFILE
    assert not planted.exists()


def test_control_the_engine_alone_would_write_the_file(store: ClickHouseStore, tmp_path: Path) -> None:
    # INTO OUTFILE is not stopped by readonly=1 either (built SQL skips the guard).
    target = tmp_path / "control.csv"
    store.submit_built(f"SELECT 1 INTO OUTFILE '{target}'").result()
    assert target.exists()


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("SELECT * FROM executable('touch {marker}', 'TSV', 'x String')", TABLE_FUNCTION_REFUSED.format("executable")),
        ('SELECT * FROM python(\'open("{marker}", "w")\')', TABLE_FUNCTION_REFUSED.format("python")),
        (
            "SELECT * FROM executable('touch {marker}', 'TSV', 'x String') SETTINGS readonly = 0",
            re.escape(guard.SETTINGS),
        ),
        ("SELECT sleepEachRow(1) FROM numbers(3)", FUNCTION_REFUSED.format("sleepEachRow")),
        ("SELECT dictGet('d', 'a', toUInt64(1))", FUNCTION_REFUSED.format("dictGet")),
        ("SELECT addressToSymbol(toUInt64(0))", FUNCTION_REFUSED.format("addressToSymbol")),
        ("SELECT aiGenerate('hello')", FUNCTION_REFUSED.format("aiGenerate")),
        ("SELECT getSetting('readonly')", FUNCTION_REFUSED.format("getSetting")),
        ("SELECT * FROM input('x String')", TABLE_FUNCTION_REFUSED.format("input")),
        ("SELECT * FROM remote('127.0.0.1:9', system.one)", TABLE_FUNCTION_REFUSED.format("remote")),
        ("SELECT * FROM s3('http://127.0.0.1:9/b/k', 'CSV')", TABLE_FUNCTION_REFUSED.format("s3")),
    ],
)
def test_running_code_or_reaching_out_is_refused(
    store: ClickHouseStore, paths: Paths, template: str, message: str
) -> None:
    assert re.match(message, refused(store, fill(template, paths), paths))


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 1 SETTINGS readonly = 0",
        "SELECT 1 SETTINGS max_execution_time = 3600",
        "SELECT * FROM (SELECT 1 SETTINGS max_threads = 8)",
        "WITH x AS (SELECT 1 SETTINGS allow_introspection_functions = 1) SELECT * FROM x",
        "EXPLAIN SELECT 1 SETTINGS allow_introspection_functions = 1",
        "EXPLAIN PLAN header = 1 SELECT 1",
        "SHOW TABLES SETTINGS max_threads = 1",
    ],
)
def test_settings_anywhere_are_refused(store: ClickHouseStore, paths: Paths, sql: str) -> None:
    assert refused(store, sql, paths) == guard.SETTINGS


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("SELECT 1; SELECT 2", "only one statement at a time is accepted"),
        ("SELECT 1; DROP TABLE otel_traces", "only one statement at a time is accepted"),
        ("SELECT '; ', 1; SELECT file('/etc/passwd')", "only one statement at a time is accepted"),
        ("SET readonly = 0", guard.SETTINGS),
        ("SET allow_introspection_functions = 1", guard.SETTINGS),
        ("SELECT {x:String}", guard.PARAMETERS),
        ("SELECT * FROM {t:Identifier}", guard.PARAMETERS),
        ("SELECT 1 FORMAT JSON", guard.FORMAT),
        ("SHOW TABLES FORMAT JSON", guard.FORMAT),
        ("SELECT 1 FORMAT TSV SETTINGS max_threads = 2", guard.FORMAT),
        ("", "the query is empty"),
        ("   \n ", "the query is empty"),
        ("-- only a comment", "Empty query (SYNTAX_ERROR)"),
        ("INSERT INTO otel_traces (SpanName) VALUES ('x')", NOT_A_READ + "INSERT"),
        ("INSERT INTO otel_traces (SpanName) SELECT 'x'", NOT_A_READ + "INSERT"),
        ("DROP TABLE otel_traces", NOT_A_READ + "DROP"),
        ("TRUNCATE TABLE otel_traces", NOT_A_READ + "DROP"),
        ("ALTER TABLE otel_traces DELETE WHERE 1", NOT_A_READ + "ALTER"),
        ("DELETE FROM otel_traces WHERE 1", NOT_A_READ + "DELETE"),
        ("CREATE TABLE t (a Int8) ENGINE = Memory", NOT_A_READ + "CREATE"),
        ("OPTIMIZE TABLE otel_traces", NOT_A_READ + "OPTIMIZE"),
        ("KILL QUERY WHERE 1", NOT_A_READ + "KILL QUERY"),
        ("SYSTEM FLUSH LOGS", NOT_A_READ + "SYSTEM"),
        ("GRANT SELECT ON *.* TO default", NOT_A_READ + "GRANT"),
        ("USE system", NOT_A_READ + "USE"),
        ("EXPLAIN AST INSERT INTO otel_traces SELECT 1", "EXPLAIN is accepted for SELECT only; got INSERT"),
        ("EXPLAIN CURRENT TRANSACTION", "EXPLAIN CURRENT TRANSACTION is not accepted in queries"),
        ("DESCRIBE otel_traces", "DESCRIBE is not accepted; SHOW COLUMNS FROM <table> lists the columns"),
        ("EXISTS otel_traces", "EXISTS is not accepted; SELECT count() FROM system.tables WHERE name = '<table>' "
         "answers it"),
        ("SHOW CREATE TABLE otel_traces", "SHOW CREATE TABLE is not accepted; SELECT create_table_query FROM "
         "system.tables WHERE name = '<table>' shows it"),
        ("SHOW PROCESSLIST", NOT_A_READ + "SHOW PROCESSLIST"),
        ("SHOW SETTINGS LIKE 'max%'", guard.SHOW_SETTINGS),
        ("SHOW DICTIONARIES", "SHOW TABLES with DICTIONARIES is not accepted in queries"),
        ("SHOW TABLES FROM system", "SHOW TABLES is accepted for database default only; got system"),
    ],
)  # fmt: skip
def test_anything_but_a_read_is_refused_with_one_line(
    store: ClickHouseStore, paths: Paths, sql: str, message: str
) -> None:
    assert refused(store, sql, paths) == message


@pytest.mark.parametrize(
    ("sql", "table"),
    [
        ("SELECT * FROM system.processes", "system.processes"),
        ('SELECT * FROM "system"."processes"', "system.processes"),
        ("SELECT * FROM system.`processes`", "system.processes"),
        ("SELECT query FROM system.query_log", "system.query_log"),
        ("SELECT name FROM system.users", "system.users"),
        ("SELECT * FROM system.settings", "system.settings"),
        ("SELECT 1 IN system.users", "system.users"),
        ("SELECT system.processes.query", "system.processes"),
        ("SELECT * FROM INFORMATION_SCHEMA.TABLES", "INFORMATION_SCHEMA.TABLES"),
        ("SELECT * FROM otel_traces AS t JOIN system.processes AS p ON 1", "system.processes"),
        ("WITH p AS (SELECT * FROM system.processes) SELECT * FROM p", "system.processes"),
        ("SHOW COLUMNS FROM system.processes", "system.processes"),
        ("SHOW COLUMNS FROM processes FROM system", "system.processes"),
    ],
)
def test_tables_beyond_the_store_are_refused(store: ClickHouseStore, paths: Paths, sql: str, table: str) -> None:
    assert re.match(TABLE_REFUSED.format(re.escape(table)), refused(store, sql, paths))


def test_every_table_function_off_the_list_is_refused(store: ClickHouseStore, paths: Paths) -> None:
    names = [row[0] for row in store.submit_built("SELECT name FROM system.table_functions").result().rows]
    refused_names = [name for name in names if name not in ALLOWED_TABLE_FUNCTIONS]
    assert len(refused_names) > 80
    # Most take a path or a string; a few only parse around a query (view-like functions).
    arguments = (f"'{paths.canary}'", "SELECT 1", "SELECT 1 ELSE null('x Int8')")
    for name in refused_names:
        messages = {refused(store, f"SELECT * FROM `{name}`({argument})", paths) for argument in arguments}
        assert f"table function {name}() is not allowed in queries" in messages, messages


def test_every_function_off_the_list_is_refused(store: ClickHouseStore, paths: Paths) -> None:
    names = [row[0] for row in store.submit_built("SELECT name FROM system.functions").result().rows]
    refused_names = [name for name in names if not allowed_functions().allows(name)]
    assert {"file", "sleep", "dictGet", "addressToSymbol", "aiGenerate", "getSetting", "hostName"} <= set(refused_names)
    for name in refused_names:
        message = refused(store, f"SELECT `{name}`('{paths.canary}')", paths)
        assert message == f"function {name}() is not allowed in queries"


@pytest.mark.parametrize(
    ("sql", "rows"),
    [
        ("SELECT count() FROM otel_traces", [[3]]),
        ("select ServiceName, count() from otel_traces group by ServiceName;", [["guarded", 3]]),
        ("SELECT count() FROM default.otel_traces WHERE SpanName != 'file(x)'", [[3]]),
        ("SELECT '--', $$/*$$, 'it''s', 'a\\'b'", [["--", "/*", "it's", "a'b"]]),
        ("WITH t AS (SELECT number AS n FROM numbers(5)) SELECT sum(n) FROM t", [[10]]),
        ("WITH 2 AS two SELECT two * 2", [[4]]),
        ("SELECT * FROM (SELECT * FROM (SELECT 1 AS a))", [[1]]),
        ("SELECT count() FROM numbers(10) WHERE number IN (SELECT number FROM numbers(3))", [[3]]),
        ("SELECT arrayMap(x -> x * 2, [1, 2])", [[[2, 4]]]),
        ("SELECT sumIf(number, number > 2), countDistinct(number), COUNT(*) FROM numbers(5)", [[7, 5, 5]]),
        ("SELECT number, sum(number) OVER (ORDER BY number) FROM numbers(3)", [[0, 0], [1, 1], [2, 3]]),
        ("SELECT CASE number WHEN 1 THEN 'one' ELSE 'other' END FROM numbers(2)", [["other"], ["one"]]),
        ("SELECT 1 UNION ALL SELECT 2 ORDER BY 1", [[1], [2]]),
        ("SELECT * FROM generate_series(1, 2)", [[1], [2]]),
        ("SELECT * FROM view(SELECT 7)", [[7]]),
        ("SELECT dummy FROM system.one", [[0]]),
        ("SELECT count() > 0 FROM system.tables WHERE database = currentDatabase()", [[True]]),
        ("SELECT system.one.dummy FROM system.one", [[0]]),
        ("SHOW DATABASES LIKE 'default'", [["default"]]),
        ("SHOW TABLES LIKE 'otel_traces'", [["otel_traces"]]),
    ],
)
def test_reads_pass(store: ClickHouseStore, sql: str, rows: list[list[object]]) -> None:
    assert store.query(sql).rows == rows


def test_explain_and_show_columns_pass(store: ClickHouseStore) -> None:
    assert store.query("EXPLAIN SELECT count() FROM otel_traces").columns == ["explain"]
    columns = {row[0] for row in store.query("SHOW COLUMNS FROM otel_traces").rows}
    assert {"TraceId", "SpanName", "SpanAttributes"} <= columns


def test_what_runs_is_rebuilt_from_the_checked_tree(store: ClickHouseStore) -> None:
    sql = "SELECT /* hidden */ 'a' AS `x`, -- gone\n 1"
    row = store.submit_built(guard.PARSE_SQL, {"sql": sql}).result().rows[0]
    parsed = guard.ParsedStatement.from_row(row)
    assert guard.accept(parsed, "default") == "SELECT 'a' AS x, 1"


def test_a_query_the_round_trip_would_change_is_refused(store: ClickHouseStore, paths: Paths) -> None:
    assert refused(store, "SELECT -0.0", paths) == (
        "the query cannot be checked exactly (the engine's JSON form of it differs from what you wrote); "
        "rewrite it as: SELECT 0."
    )


def test_unicode_look_alikes_outside_quotes_are_syntax_errors(store: ClickHouseStore, paths: Paths) -> None:
    for look_alike in ("f\u0456le", "\uff46\uff49\uff4c\uff45", "fi\u200ble"):
        message = refused(store, f"SELECT {look_alike}('{paths.canary}')", paths)
        assert message.endswith("(SYNTAX_ERROR)")


def test_a_statement_over_the_size_limit_is_refused_before_the_engine(store: ClickHouseStore, paths: Paths) -> None:
    sql = "SELECT '" + "x" * guard.MAX_SQL_BYTES + "'"
    assert refused(store, sql, paths) == f"the query is longer than {guard.MAX_SQL_BYTES} bytes"
