"""The function allow-list: every entry real in the engine, none that reaches outside, names resolved as it does."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import chdb
import pytest

from collector.query.functions import (
    AGGREGATE,
    ALLOWED_TABLE_FUNCTIONS,
    COMBINATOR,
    DATA_FILE,
    allowed_functions,
    parse_allow_list,
)
from collector.query.make_allowed_functions import HEADER, REFUSED_CATEGORIES, rows

# Families no query may reach: files, the network, other servers and databases, programs, Python, dictionaries,
# introspection of the process, the engine's settings, users and hosts, time spent on purpose, Keeper.
FORBIDDEN_NAMES = frozenset(
    name.lower()
    for name in (
        "file", "url", "urlCluster", "s3", "gcs", "hdfs", "remote", "remoteSecure", "cluster", "clusterAllReplicas",
        "mysql", "postgresql", "mongodb", "redis", "sqlite", "jdbc", "odbc", "executable", "python", "input", "tid",
        "demangle", "logTrace", "getMacro", "getClientHTTPHeader", "currentUser", "currentRoles", "authenticatedUser",
        "hostName", "FQDN", "fullHostName", "uptime", "version", "buildId", "serverUUID", "joinGet",
        "hasColumnInTable", "generateSerialID", "globalVariable", "evalMLMethod", "parseQueryToJSON",
        "formatQueryFromJSON", "chdb",
    )
)  # fmt: skip
FORBIDDEN = re.compile(
    r"^(dictGet|dictHas|region|ai[A-Z]|address|sleep|getSetting|getServerSetting|filesystem|transaction|zookeeper"
    r"|naiveBayesClassifier|s3|azure|iceberg[A-Z]?Cluster|hdfs)"
)


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    connection = chdb.connect(str(tmp_path_factory.mktemp("functions") / "engine"))  # type: ignore[no-untyped-call]
    try:
        yield connection
    finally:
        connection.close()


def _table(engine: Any, sql: str) -> list[list[str]]:
    return [line.split("\t") for line in engine.query(sql, "TabSeparatedRaw").bytes().decode().splitlines()]


def _entries() -> list[list[str]]:
    return [line.split("\t") for line in DATA_FILE.read_text().splitlines() if line and not line.startswith("#")]


def test_the_committed_list_is_what_the_policy_picks_from_this_engine(engine: Any) -> None:
    body = "".join("\t".join(map(str, row)) + "\n" for row in rows(engine))
    assert DATA_FILE.read_text() == HEADER + body


def test_every_entry_exists_in_the_engine_as_listed(engine: Any) -> None:
    functions = {
        name: (aggregate, insensitive, alias)
        for name, aggregate, insensitive, alias in _table(
            engine, "SELECT name, is_aggregate, case_insensitive, alias_to FROM system.functions"
        )
    }
    combinators = {row[0] for row in _table(engine, "SELECT name FROM system.aggregate_function_combinators")}
    for name, kind, insensitive, alias_of in _entries():
        if kind == COMBINATOR:
            assert name in combinators, name
            continue
        assert name in functions, name
        aggregate, engine_insensitive, engine_alias = functions[name]
        assert insensitive == engine_insensitive, name
        assert (kind == AGGREGATE) == (aggregate == "1"), name
        assert alias_of.lower() == engine_alias.lower(), name


def test_no_entry_belongs_to_a_family_that_reaches_outside(engine: Any) -> None:
    categories = dict(_table(engine, "SELECT name, categories FROM system.functions"))
    for name, kind, _, alias_of in _entries():
        if kind == COMBINATOR:
            continue
        canonical = alias_of or name
        for spelling in (name, canonical):
            assert spelling.lower() not in FORBIDDEN_NAMES and not FORBIDDEN.match(spelling), name
        found = {c.strip() for c in categories.get(canonical, "").split(",")}
        assert not found & (REFUSED_CATEGORIES - {"Internal"}), (name, found)
    assert allowed_functions().allows("sum") and len(_entries()) > 1000


def test_table_functions_are_generators_of_rows_only(engine: Any) -> None:
    listed = {row[0] for row in _table(engine, "SELECT name FROM system.table_functions")}
    assert listed >= ALLOWED_TABLE_FUNCTIONS
    assert not {name for name in ALLOWED_TABLE_FUNCTIONS if name.lower() in FORBIDDEN_NAMES or FORBIDDEN.match(name)}
    assert {"numbers", "numbers_mt", "generate_series", "generateSeries", "values", "view"} == ALLOWED_TABLE_FUNCTIONS


@pytest.mark.parametrize(
    "name",
    ["count", "COUNT", "Sum", "sum", "length", "CARDINALITY", "first_value", "sumIf", "countDistinct",
     "uniqExactArrayIf", "quantilesMergeState", "avgOrNull", "SUMIf", "caseWithExpression", "mod", "replace"],
)  # fmt: skip
def test_names_resolve_as_the_engine_resolves_them(name: str) -> None:
    assert allowed_functions().allows(name)


@pytest.mark.parametrize(
    "name",
    ["file", "FILE", "File", "sleep", "sleepEachRow", "sleepIf", "fileIf", "OrNull", "State", "dictGet", "url",
     "addressToSymbol", "aiGenerate", "AIGenerate", "python", "getSetting", "fullHostName", "session_user",
     "lengthIf", "fıle", "ｆｉｌｅ", ""],
)  # fmt: skip
def test_anything_else_is_refused(name: str) -> None:
    assert not allowed_functions().allows(name)


def test_overlapping_combinator_suffixes_resolve_in_linear_time() -> None:
    # MergeState is both Merge+State and MergeState: without memo the candidates double with every repeat.
    assert allowed_functions().allows("sum" + "MergeState" * 2000)
    assert not allowed_functions().allows("sleep" + "MergeState" * 2000)


def test_the_data_file_format() -> None:
    parsed = parse_allow_list("# comment\nsum\taggregate\t1\t\nabs\tfunction\t1\t\nIf\tcombinator\t0\t\n")
    assert parsed.allows("SUMIf") and parsed.allows("ABS") and not parsed.allows("absIf")
