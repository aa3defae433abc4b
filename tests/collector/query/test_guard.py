"""The read-only guard in front of the store."""

from __future__ import annotations

import pytest

from collector.sql import NotReadOnlyError, check_read_only

OUTSIDE = " reaches outside the store (files, programs or the network) and is not accepted"


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
        "SELECT SpanAttributes['url'] AS url FROM otel_traces WHERE SpanName = 'file(x)'",
        "SELECT count() FROM numbers(10)",
        "SELECT profile FROM t",
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
        ("SELECT 1 INTO OUTFILE '/tmp/x.csv'", "INTO OUTFILE is not accepted; the result is returned to you"),
        ("select 1 into\n outfile 'x'", "INTO OUTFILE is not accepted; the result is returned to you"),
        (
            "SELECT file('/etc/passwd')",
            "file()" + OUTSIDE,
        ),
        (
            "SELECT * FROM File ('/etc/passwd', 'LineAsString')",
            "File()" + OUTSIDE,
        ),
        (
            "SELECT * FROM url('http://10.0.0.1/', 'JSON')",
            "url()" + OUTSIDE,
        ),
        (
            "WITH t AS (SELECT * FROM s3('https://b/k')) SELECT 1",
            "s3()" + OUTSIDE,
        ),
        (
            "SELECT * FROM remote('db:9000', system.one)",
            "remote()" + OUTSIDE,
        ),
    ],
)
def test_anything_else_is_refused(sql: str, message: str) -> None:
    with pytest.raises(NotReadOnlyError) as refused:
        check_read_only(sql)
    assert str(refused.value).endswith(message)
