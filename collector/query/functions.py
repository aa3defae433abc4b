"""Which functions a raw query may call: ``allowed_functions.tsv``, and how a name resolves against it.

A name in a query resolves the way the engine resolves it: exactly; or, for
the functions the engine marks case-insensitive, in any case (``COUNT``,
``Sum``); or as an aggregate function with combinators appended (``sumIf``,
``uniqExactArrayIf``, ``countDistinct``), where every suffix must be a listed
combinator and what remains an allowed aggregate function. Aliases are listed
in the file beside the function they name, only when that function is allowed.
Anything else is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

DATA_FILE = Path(__file__).with_name("allowed_functions.tsv")
FUNCTION = "function"
AGGREGATE = "aggregate"
COMBINATOR = "combinator"
# Table functions a query may read from: generators of numbers and literal rows, and view(SELECT ...),
# whose query is checked like any other. Everything else in system.table_functions reads files, URLs,
# other servers or databases, object storage, or other tables by pattern (merge), and is refused.
ALLOWED_TABLE_FUNCTIONS = frozenset({"numbers", "numbers_mt", "generate_series", "generateSeries", "values", "view"})


@dataclass(frozen=True)
class FunctionAllowList:
    """The allowed function names, split the way resolution needs them."""

    exact: frozenset[str]
    aggregates: frozenset[str]
    # Lower-cased name -> listed name, for the functions the engine matches in any case.
    insensitive: dict[str, str]
    # Longest first, so "MergeState" is tried before "State".
    combinators: tuple[str, ...]

    def allows(self, name: str) -> bool:
        """Whether ``name``, as written in a query, names an allowed function."""
        return self._listed(name) is not None or self._combined_aggregate(name)

    def _listed(self, name: str) -> str | None:
        if name in self.exact:
            return name
        return self.insensitive.get(name.lower())

    def _combined_aggregate(self, name: str) -> bool:
        """``name`` is an allowed aggregate function followed by one or more combinators."""
        # Every candidate base is a prefix of name, so remembering them keeps this linear in its length
        # however the suffixes overlap (MergeState is both Merge+State and MergeState).
        seen: set[str] = set()
        pending = [name]
        while pending:
            current = pending.pop()
            for combinator in self.combinators:
                base = current[: -len(combinator)]
                if not current.endswith(combinator) or not base or base in seen:
                    continue
                if self._listed(base) in self.aggregates:
                    return True
                seen.add(base)
                pending.append(base)
        return False


def parse_allow_list(text: str) -> FunctionAllowList:
    """The allow-list in ``text`` (the data file's format: name, kind, case_insensitive, alias_of)."""
    exact: set[str] = set()
    aggregates: set[str] = set()
    insensitive: dict[str, str] = {}
    combinators: list[str] = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name, kind, case_insensitive, _alias_of = line.split("\t")
        if kind == COMBINATOR:
            combinators.append(name)
            continue
        exact.add(name)
        if kind == AGGREGATE:
            aggregates.add(name)
        if case_insensitive == "1":
            insensitive[name.lower()] = name
    return FunctionAllowList(
        exact=frozenset(exact),
        aggregates=frozenset(aggregates),
        insensitive=insensitive,
        combinators=tuple(sorted(combinators, key=len, reverse=True)),
    )


@cache
def allowed_functions() -> FunctionAllowList:
    """The committed allow-list, read once."""
    return parse_allow_list(DATA_FILE.read_text(encoding="utf-8"))
