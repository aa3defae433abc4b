"""How query results look in the terminal."""

from __future__ import annotations

import datetime
import json

from collector.query.output import render
from collector.query.result import QueryResult

RESULT = QueryResult(
    columns=["model", "calls", "attrs", "at"],
    types=["String", "UInt64", "Map(String, String)", "DateTime"],
    rows=[["gpt-4o", 3, {"k": "v"}, datetime.datetime(2026, 1, 2, 3, 4, 5)], ["a,b", 10, {}, None]],
)


def test_table_is_aligned_with_a_row_count() -> None:
    assert render(RESULT, "table").splitlines() == [
        "model  | calls | attrs      | at",
        "-------+-------+------------+--------------------",
        'gpt-4o | 3     | {"k": "v"} | 2026-01-02T03:04:05',
        "a,b    | 10    | {}         | NULL",
        "(2 rows)",
    ]


def test_json_is_a_list_of_objects() -> None:
    assert json.loads(render(RESULT, "json")) == [
        {"model": "gpt-4o", "calls": 3, "attrs": {"k": "v"}, "at": "2026-01-02T03:04:05"},
        {"model": "a,b", "calls": 10, "attrs": {}, "at": None},
    ]


def test_csv_quotes_as_needed() -> None:
    assert (
        render(RESULT, "csv")
        == 'model,calls,attrs,at\ngpt-4o,3,"{""k"": ""v""}",2026-01-02T03:04:05\n"a,b",10,{},NULL\n'
    )
