"""The raw-SQL guard: a user's statement is checked on the engine's own parser, then rebuilt from what was checked.

The engine parses the statement (``parseQueryToJSON``, bound as a parameter,
never pasted into SQL) and hands back its syntax tree as JSON. The same round
trip formats that tree back into SQL (``formatQueryFromJSON``) and parses the
result again: that second tree is what this module walks, and the SQL it came
from is what runs, so what runs is what was checked. The rebuilt SQL must also
equal the engine's own formatting of the statement (``formatQuerySingleLine``),
so the round trip cannot silently drop part of what the user wrote.

The walk is allow-lists all the way down, failing closed: every node type,
every key of a node, every function (``functions.allowed_functions``), every
table function (``functions.ALLOWED_TABLE_FUNCTIONS``) and every table must be
known and allowed. Accepted: SELECT (with WITH, UNION, INTERSECT, EXCEPT,
subqueries, joins, window functions), EXPLAIN of such a SELECT, SHOW TABLES,
SHOW DATABASES and SHOW COLUMNS. Refused, each with one line saying so: any
other statement, INTO OUTFILE, FORMAT, SETTINGS, query parameters, tables
outside the store's database except a few system tables, and functions off
the list. DESCRIBE, EXISTS and SHOW CREATE TABLE have no JSON form in the
engine, so they cannot be checked and are refused with the query to ask
instead.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from collector.query.errors import NotReadOnlyError, QueryError
from collector.query.functions import ALLOWED_TABLE_FUNCTIONS, allowed_functions

# One round trip: the tree of the user's statement, the engine's formatting of it, the SQL rebuilt from the
# tree, the tree of that rebuilt SQL (the one checked), and the databases the engine knows.
PARSE_SQL = (
    "SELECT parseQueryToJSON({sql:String}) AS ast, formatQuerySingleLine({sql:String}) AS canonical, "
    "formatQueryFromJSON(ast) AS rebuilt, parseQueryToJSON(rebuilt) AS checked, "
    "(SELECT groupArray(name) FROM system.databases) AS databases"
)
# ClickHouse's own max_query_size default: the longest statement its parser takes.
MAX_SQL_BYTES = 256 * 1024
SYSTEM_DATABASE = "system"
# What an analyst needs from the system database: the constant and number tables, and the store's layout.
ALLOWED_SYSTEM_TABLES = frozenset(
    {"one", "numbers", "numbers_mt", "zeros", "zeros_mt", "databases", "tables", "columns", "parts",
     "data_skipping_indices", "functions"}
)  # fmt: skip
ACCEPTED = "SELECT, WITH, EXPLAIN, SHOW TABLES, SHOW DATABASES and SHOW COLUMNS"
# Statements the engine parses but cannot give as JSON, with what to ask instead.
_WITHOUT_JSON = {
    "DescribeQuery": "DESCRIBE is not accepted; SHOW COLUMNS FROM <table> lists the columns",
    "ExistsTableQuery": "EXISTS is not accepted; SELECT count() FROM system.tables WHERE name = '<table>' answers it",
    "ShowCreateTableQuery": (
        "SHOW CREATE TABLE is not accepted; SELECT create_table_query FROM system.tables WHERE name = '<table>' "
        "shows it"
    ),
}
_NO_JSON_TYPE = re.compile(r"AST node of type '([A-Za-z]+?)(?:_[^']*)?' does not support JSON serialization")
_ERROR_NAME = re.compile(r"\(([A-Z][A-Z0-9_]+)\)(?: \(version [^)]*\))?\s*$")
_EXCEPTION = "DB::Exception: "
# The engine quotes the whole PARSE_SQL call after this; the user's statement is in it, escaped.
_SCOPE = ": In scope "
UNKNOWN_FUNCTION = "UNKNOWN_FUNCTION"

INTO_OUTFILE = "INTO OUTFILE is not accepted: the result comes back to you, nothing is written on the collector's side"
FORMAT = "FORMAT is not accepted: choose the output with the query command's --format"
SETTINGS = "SETTINGS is not accepted in queries: the collector sets the query limits (query_limits)"
PARAMETERS = "query parameters ({name:Type}) are not accepted in raw SQL"
SHAPE = "the query's syntax tree has an unexpected shape"
SHOW_SETTINGS = "SHOW SETTINGS is not accepted in queries"


@dataclass(frozen=True)
class ParsedStatement:
    """What one PARSE_SQL round trip answered for a statement."""

    ast: str
    canonical: str
    rebuilt: str
    checked: str
    databases: Sequence[str]

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> ParsedStatement:
        ast, canonical, rebuilt, checked, databases = row
        return cls(str(ast), str(canonical), str(rebuilt), str(checked), [str(d) for d in databases])


def prepare(sql: str) -> str:
    """``sql`` ready to be parsed, or NotReadOnlyError for what needs no parser to refuse."""
    if len(sql.encode("utf-8", "surrogatepass")) > MAX_SQL_BYTES:
        raise NotReadOnlyError(f"the query is longer than {MAX_SQL_BYTES} bytes")
    statement = sql.strip()
    if not statement:
        raise NotReadOnlyError("the query is empty")
    return statement


def accept(parsed: ParsedStatement, database: str) -> str:
    """The SQL to run for ``parsed``, once its tree passes every check; else NotReadOnlyError."""
    if parsed.rebuilt != parsed.canonical:
        raise NotReadOnlyError(
            "the query cannot be checked exactly (the engine's JSON form of it differs from what you wrote); "
            f"rewrite it as: {parsed.rebuilt}"
        )
    try:
        tree = json.loads(parsed.checked)
    except RecursionError:
        raise NotReadOnlyError("the query is nested too deeply to be checked") from None
    _Walk(database, frozenset(parsed.databases)).statement(tree)
    return parsed.rebuilt


def parse_failure(message: str, where: str) -> Exception:
    """The error to raise when the engine could not parse a statement; ``where`` names the store for messages."""
    no_json = _NO_JSON_TYPE.search(message)
    if no_json is not None:
        kind = no_json.group(1)
        refusal = _WITHOUT_JSON.get(kind, f"only {ACCEPTED} statements are accepted; got {_keyword(kind)}")
        return NotReadOnlyError(refusal)
    if "INSERT with inline data" in message:
        return NotReadOnlyError(f"only {ACCEPTED} statements are accepted; got INSERT")
    if "Multi-statements are not allowed" in message:
        return NotReadOnlyError("only one statement at a time is accepted")
    text, name = engine_message(message)
    if name == UNKNOWN_FUNCTION and "parseQueryToJSON" in text:
        return QueryError(
            f"raw SQL is refused: {where} cannot check it (it has no parseQueryToJSON function; "
            "a ClickHouse release that has it is needed)"
        )
    return QueryError(f"{text} ({name})" if name else text)


def engine_message(message: str) -> tuple[str, str | None]:
    """(what went wrong, the error's name) from a ClickHouse error, without its code and the quoted query."""
    lines = [line for line in message.strip().splitlines() if _EXCEPTION in line] or message.strip().splitlines()
    text = lines[0] if lines else ""
    text = text[text.find(_EXCEPTION) + len(_EXCEPTION) :] if _EXCEPTION in text else text
    found = _ERROR_NAME.search(text)
    if found is not None:
        text = text[: found.start()]
    text = text.split(_SCOPE, 1)[0].strip().rstrip(".").strip()
    return text or message.strip(), found.group(1) if found else None


def _keyword(node_type: str) -> str:
    """``DropQuery`` -> ``DROP``, ``KillQueryQuery`` -> ``KILL QUERY``: a statement's keyword for messages."""
    return re.sub(r"(?<!^)(?=[A-Z])", " ", node_type.removesuffix("Query")).upper()


# Keys of each node type the walk knows, and what their values are. Strings and names that resolve to
# something (a function, a table, a database) are checked by the node's own check (``_Walk._check``).
NODE = "node"  # a node, walked
NODES = "nodes"  # a list of nodes, each walked
TABLE_FUNCTION = "table function"  # a Function node naming a table function, walked as one
TEXT = "text"  # a string
WORDS = "words"  # a list of strings (the parts of a name, union modes)
FLAG = "flag"  # a boolean that changes nothing about what is read
COUNT = "count"  # an integer (sort direction...)
DATA = "data"  # a literal's value: plain data, never walked
FALSE = "false"  # must be false (INTO OUTFILE's flags)
_SHAPES: Mapping[str, type | tuple[type, ...]] = {
    NODE: dict, TABLE_FUNCTION: dict, NODES: list, TEXT: str, WORDS: list, FLAG: bool, COUNT: int, FALSE: bool,
}  # fmt: skip

_OUTPUT = {"is_outfile_append": FALSE, "is_outfile_truncate": FALSE, "is_into_outfile_with_stdout": FALSE}
_TRANSFORMERS = {"transformers": NODE}
_LIKE = {"like": TEXT, "not_like": FLAG, "case_insensitive_like": FLAG, "limit_length": NODE, "where_expression": NODE}
NODE_KEYS: Mapping[str, Mapping[str, str]] = {
    "SelectWithUnionQuery": {"union_mode": TEXT, "list_of_modes": WORDS, "list_of_selects": NODE, **_OUTPUT},
    "SelectQuery": {
        **dict.fromkeys(
            (
                "with",
                "select",
                "tables",
                "prewhere",
                "where",
                "group_by",
                "having",
                "window",
                "qualify",
                "order_by",
                "limit_by_offset",
                "limit_by_length",
                "limit_by",
                "limit_offset",
                "limit_length",
                "interpolate",
            ),
            NODE,
        ),
        **dict.fromkeys(
            (
                "distinct",
                "group_by_all",
                "group_by_with_totals",
                "group_by_with_rollup",
                "group_by_with_cube",
                "group_by_with_grouping_sets",
                "order_by_all",
                "limit_with_ties",
                "recursive_with",
            ),
            FLAG,
        ),
    },  # fmt: skip
    "ExplainQuery": {"kind": TEXT, "query": NODE, **_OUTPUT},
    "ShowTablesQuery": {"from": NODE, "databases": FLAG, "full": FLAG, **_LIKE, **_OUTPUT},
    "ShowColumnsQuery": {"database": TEXT, "table": TEXT, "full": FLAG, "extended": FLAG, **_LIKE, **_OUTPUT},
    "ExpressionList": {"children": NODES},
    "Subquery": {"children": NODES, "alias": TEXT},
    "WithElement": {"name": TEXT, "subquery": NODE, "aliases": NODE, "is_materialized": FLAG},
    "TablesInSelectQuery": {"children": NODES},
    "TablesInSelectQueryElement": {"table_expression": NODE, "table_join": NODE, "array_join": NODE},
    "TableExpression": {
        "database_and_table_name": NODE,
        "table_function": TABLE_FUNCTION,
        "subquery": NODE,
        "final": FLAG,
        "sample_size": NODE,
        "sample_offset": NODE,
        "column_aliases": NODE,
    },
    "TableIdentifier": {"name": TEXT, "name_parts": WORDS, "alias": TEXT},
    "SampleRatio": {"numerator": TEXT, "denominator": TEXT},
    "TableJoin": {
        "kind": TEXT,
        "strictness": TEXT,
        "locality": TEXT,
        "on_expression": NODE,
        "using_expression_list": NODE,
    },
    "ArrayJoin": {"kind": TEXT, "expression_list": NODE},
    "Identifier": {"name": TEXT, "name_parts": WORDS, "alias": TEXT},
    "Literal": {"value": DATA, "alias": TEXT},
    "Function": {
        "name": TEXT,
        "kind": TEXT,
        "arguments": NODE,
        "parameters": NODE,
        "alias": TEXT,
        "is_operator": FLAG,
        "is_window_function": FLAG,
        "is_lambda_function": FLAG,
        "window_name": TEXT,
        "window_definition": NODE,
        "nulls_action": TEXT,
    },
    "OrderByElement": {
        "expression": NODE,
        "direction": COUNT,
        "nulls_direction": COUNT,
        "nulls_direction_was_explicitly_specified": FLAG,
        "collation": NODE,
        "with_fill": FLAG,
        "fill_from": NODE,
        "fill_to": NODE,
        "fill_step": NODE,
        "fill_staleness": NODE,
    },
    "InterpolateElement": {"column": TEXT, "expr": NODE},
    "WindowListElement": {"name": TEXT, "definition": NODE},
    "WindowDefinition": {
        "parent_window_name": TEXT,
        "partition_by": NODE,
        "order_by": NODE,
        "frame_is_default": FLAG,
        "frame_type": TEXT,
        "frame_begin_type": TEXT,
        "frame_begin_offset": NODE,
        "frame_begin_preceding": FLAG,
        "frame_end_type": TEXT,
        "frame_end_offset": NODE,
        "frame_end_preceding": FLAG,
    },
    "Asterisk": _TRANSFORMERS,
    "QualifiedAsterisk": {"qualifier": NODE, **_TRANSFORMERS},
    "ColumnsRegexpMatcher": {"pattern": TEXT, **_TRANSFORMERS},
    "QualifiedColumnsRegexpMatcher": {"qualifier": NODE, "pattern": TEXT, **_TRANSFORMERS},
    "ColumnsListMatcher": {"column_list": NODE, **_TRANSFORMERS},
    "QualifiedColumnsListMatcher": {"qualifier": NODE, "column_list": NODE, **_TRANSFORMERS},
    "ColumnsTransformerList": {"children": NODES},
    "ColumnsApplyTransformer": {
        "func_name": TEXT,
        "parameters": NODE,
        "lambda": NODE,
        "lambda_arg": TEXT,
        "column_name_prefix": TEXT,
    },
    "ColumnsExceptTransformer": {"children": NODES, "is_strict": FLAG, "pattern": TEXT},
    "ColumnsReplaceTransformer": {"children": NODES, "is_strict": FLAG},
    "ColumnsReplaceTransformerReplacement": {"name": TEXT, "children": NODES},
}
STATEMENTS = frozenset({"SelectWithUnionQuery", "ExplainQuery", "ShowTablesQuery", "ShowColumnsQuery"})
# EXPLAIN kinds that describe a query without running it ("EXPLAIN" alone is EXPLAIN PLAN).
EXPLAIN_KINDS = frozenset(
    {"EXPLAIN", "EXPLAIN AST", "EXPLAIN SYNTAX", "EXPLAIN QUERY TREE", "EXPLAIN PIPELINE", "EXPLAIN ESTIMATE"}
)
LAMBDA = "lambda"
LAMBDA_KIND = "LAMBDA_FUNCTION"
FUNCTION_KINDS = frozenset({LAMBDA_KIND, "WINDOW_FUNCTION"})
# Functions the parser produces from syntax rather than from a name in system.functions.
SYNTAX_FUNCTIONS = frozenset({"exists"})
# Keys with a refusal of their own, wherever they appear.
_REFUSED_KEYS = {
    "out_file": INTO_OUTFILE,
    "compression": INTO_OUTFILE,
    "compression_level": INTO_OUTFILE,
    "format_ast": FORMAT,
    "format": FORMAT,
    "settings": SETTINGS,
    "settings_ast": SETTINGS,
}


class _Walk:
    """One check of one statement's tree; raises NotReadOnlyError at the first thing it does not allow."""

    def __init__(self, database: str, databases: frozenset[str]) -> None:
        self._database = database
        # Names that, first in a dotted identifier, name another database rather than a table or column.
        self._other_databases = databases - {database}
        self._functions = allowed_functions()

    def statement(self, tree: Any) -> None:
        node_type = _type_of(tree)
        if node_type == "SetQuery":
            raise NotReadOnlyError(SETTINGS)
        if node_type not in STATEMENTS:
            raise NotReadOnlyError(f"only {ACCEPTED} statements are accepted; got {_keyword(node_type) or 'nothing'}")
        pending: list[tuple[Any, bool]] = [(tree, False)]
        while pending:  # iterative: a deep tree must not exhaust Python's stack
            node, as_table_function = pending.pop()
            pending.extend(self._node(node, as_table_function))

    def _node(self, node: Any, as_table_function: bool) -> Iterator[tuple[Any, bool]]:
        """Check one node; yield its children to walk (and whether each names a table function)."""
        if not isinstance(node, dict) or not isinstance(node.get("type"), str):
            raise NotReadOnlyError(SHAPE)
        node_type = node["type"]
        if node_type == "SetQuery":
            raise NotReadOnlyError(SETTINGS)
        if node_type == "QueryParameter":
            raise NotReadOnlyError(PARAMETERS)
        keys = NODE_KEYS.get(node_type)
        if keys is None:
            raise NotReadOnlyError(f"{_keyword(node_type)} is not accepted in queries")
        for key, value in node.items():
            if key == "type":
                continue
            if key in _REFUSED_KEYS:
                show_settings = node_type == "ShowTablesQuery" and key == "settings"
                raise NotReadOnlyError(SHOW_SETTINGS if show_settings else _REFUSED_KEYS[key])
            kind = keys.get(key)
            if kind is None and key == "children" and node_type in ("Identifier", "TableIdentifier"):
                raise NotReadOnlyError(PARAMETERS)  # a name made of {name:Identifier} parameters
            if kind is None:
                raise NotReadOnlyError(f"{_keyword(node_type)} with {key.upper()} is not accepted in queries")
            if kind != DATA and not isinstance(value, _SHAPES[kind]):
                raise NotReadOnlyError(SHAPE)
            if kind == FALSE and value:
                raise NotReadOnlyError(INTO_OUTFILE)
            if kind in (NODE, TABLE_FUNCTION):
                yield value, kind == TABLE_FUNCTION
            elif kind == NODES:
                yield from ((child, False) for child in value)
        self._check(node, node_type, as_table_function)

    def _check(self, node: Mapping[str, Any], node_type: str, as_table_function: bool) -> None:
        if node_type == "Function":
            self._function(node, as_table_function)
        elif node_type == "ColumnsApplyTransformer" and "func_name" in node:
            self._function_name(str(node["func_name"]))
        elif node_type == "TableIdentifier":
            self._table_identifier(node)
        elif node_type == "Identifier":
            self._identifier(node)
        elif node_type == "ExplainQuery" and node.get("kind") not in EXPLAIN_KINDS:
            raise NotReadOnlyError(f"{node.get('kind')} is not accepted in queries")
        elif node_type == "ExplainQuery" and _type_of(node.get("query")) != "SelectWithUnionQuery":
            raise NotReadOnlyError(f"EXPLAIN is accepted for SELECT only; got {_keyword(_type_of(node.get('query')))}")
        elif node_type == "ShowTablesQuery" and "from" in node:
            self._database_named(_identifier_name(node["from"]))
        elif node_type == "ShowColumnsQuery":
            self._table(node.get("database") or self._database, str(node.get("table", "")))

    def _function(self, node: Mapping[str, Any], as_table_function: bool) -> None:
        name = node.get("name")
        if not isinstance(name, str):
            raise NotReadOnlyError(SHAPE)
        kind = node.get("kind")
        if kind is not None and kind not in FUNCTION_KINDS:
            raise NotReadOnlyError(f"function {name}() of kind {kind} is not accepted in queries")
        if as_table_function:
            if name not in ALLOWED_TABLE_FUNCTIONS:
                raise NotReadOnlyError(f"table function {name}() is not allowed in queries")
        elif name == LAMBDA:
            if kind != LAMBDA_KIND:
                raise NotReadOnlyError(f"function {name}() is not allowed in queries")
        elif name not in SYNTAX_FUNCTIONS:
            self._function_name(name)

    def _function_name(self, name: str) -> None:
        if not self._functions.allows(name):
            raise NotReadOnlyError(f"function {name}() is not allowed in queries")

    def _table_identifier(self, node: Mapping[str, Any]) -> None:
        parts = _name_parts(node)
        if len(parts) == 1:
            return  # a table of the store's database (the current one), or a WITH name
        if len(parts) != 2:
            raise NotReadOnlyError(f"table {'.'.join(parts)} is not allowed in queries")
        self._table(parts[0], parts[1])

    def _identifier(self, node: Mapping[str, Any]) -> None:
        """A dotted name starting with another database's name reads that database's table (system.one.dummy)."""
        parts = _name_parts(node)
        if len(parts) >= 2 and parts[0] in self._other_databases:
            self._table(parts[0], parts[1])

    def _table(self, database: str, table: str) -> None:
        if database == self._database:
            return
        if database == SYSTEM_DATABASE and table in ALLOWED_SYSTEM_TABLES:
            return
        raise NotReadOnlyError(
            f"table {database}.{table} is not allowed in queries: they read database {self._database} "
            f"and the system tables {', '.join(sorted(ALLOWED_SYSTEM_TABLES))}"
        )

    def _database_named(self, database: str) -> None:
        if database != self._database:
            raise NotReadOnlyError(f"SHOW TABLES is accepted for database {self._database} only; got {database}")


def _type_of(node: Any) -> str:
    """A node's type, or "" for anything that is not a node."""
    node_type = node.get("type") if isinstance(node, dict) else None
    return node_type if isinstance(node_type, str) else ""


def _name_parts(node: Mapping[str, Any]) -> list[str]:
    parts = node.get("name_parts")
    if parts is None:
        return [str(node.get("name", ""))]
    if not isinstance(parts, list) or not all(isinstance(p, str) for p in parts):
        raise NotReadOnlyError(SHAPE)
    return list(parts)


def _identifier_name(node: Any) -> str:
    if _type_of(node) != "Identifier":
        raise NotReadOnlyError(SHAPE)
    return ".".join(_name_parts(node))
