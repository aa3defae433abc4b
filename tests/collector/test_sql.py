"""The read-only guard in front of the store."""

from __future__ import annotations

import pytest

from collector.sql import NotReadOnlyError, check_read_only


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 1",
        "  select count() from otel_traces;  ",
        "WITH x AS (SELECT 1) SELECT * FROM x",
        "SHOW TABLES",
        "DESCRIBE TABLE otel_traces",
        "EXPLAIN SELECT 1",
        "(SELECT 1) UNION ALL (SELECT 2)",
        "-- a comment\nSELECT 'a;b'",
        "/* DROP TABLE x; */ SELECT 1",
    ],
)
def test_read_only_statements_pass(sql: str) -> None:
    assert check_read_only(sql) == sql.strip().rstrip(";").rstrip()


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("INSERT INTO t VALUES (1)", "got INSERT"),
        ("DROP TABLE otel_traces", "got DROP"),
        ("ALTER TABLE otel_traces DELETE WHERE 1", "got ALTER"),
        ("SELECT 1; DROP TABLE otel_traces", "only one statement at a time is accepted"),
        ("", "the query is empty"),
        ("-- only a comment", "the query is empty"),
    ],
)
def test_anything_else_is_refused(sql: str, message: str) -> None:
    with pytest.raises(NotReadOnlyError) as refused:
        check_read_only(sql)
    assert str(refused.value).endswith(message)
