"""A TraceQL subset: one spanset of span conditions, parsed into a ``spanfilter`` tree.

Accepted: ``{ }`` (every span) or ``{ condition }``, where a condition compares
a field with a value and conditions join with ``&&``, ``||`` and parentheses.
Fields are span and resource attributes (``span.x``, ``resource.x``, ``.x``,
quoted parts as in ``span."a b"``) and the intrinsics ``name``, ``status``,
``statusMessage``, ``duration`` and ``kind`` (also as ``span:name`` and so on).
Operators: ``= != > >= < <=`` and the regular-expression matches ``=~ !~``
(RE2, anchored at both ends as TraceQL's are). Values: strings ("..." or
`...`), integers, floats, durations (``100ms``, ``1.5s``, ``1h30m``),
``true``/``false``, ``nil``, the status words ``ok error unset`` and the kind
words ``unspecified internal server client producer consumer``.

Everything else TraceQL has (pipelines, aggregates, structural and spanset
operators, event/link/parent/instrumentation scopes, trace-level intrinsics,
arithmetic, negation, hints) is refused with a TraceQLError naming it. The
grammar follows grafana/tempo's pkg/traceql (lexer.go, expr.y): attribute names
end at white space or one of ``{}()=~!<>&|^,``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import re2

from collector.extensions.api import spanfilter
from collector.extensions.api.durations import PROMETHEUS_UNITS, UNIT_CHARACTERS, parse_duration
from collector.extensions.api.spanfilter import (
    Attribute,
    Comparison,
    DurationValue,
    FilterError,
    Intrinsic,
    IntrinsicName,
    KindValue,
    Nil,
    Operator,
    SpanFilter,
    StatusValue,
    Value,
)

# Longest first, so that "!~" wins over "!" and ">>" over ">".
_SYMBOLS = (
    "!>>", "!<<", "&>>", "&<<",
    "&&", "||", "!=", "=~", "!~", ">=", "<=", ">>", "<<", "!>", "!<", "&>", "&<", "&~",
    "=", ">", "<", "~", "!", "|", ",", "+", "-", "*", "/", "%", "^", "{", "}", "(", ")",
)  # fmt: skip
_COMPARISONS: frozenset[str] = frozenset(spanfilter.OPERATORS)
_ATTRIBUTE_ENDERS = frozenset("{}()=~!<>&|^,")
_STRUCTURAL = frozenset({">>", "<<", ">", "<", "~", "!>>", "!<<", "!>", "!<", "!~", "&>>", "&<<", "&>", "&<", "&~"})
_ARITHMETIC = frozenset({"+", "-", "*", "/", "%", "^"})
# Scopes written "scope." before an attribute name, and the ones this subset reads.
_DOT_SCOPES = frozenset({"span", "resource", "event", "link", "instrumentation", "parent"})
_COLON_SCOPES = frozenset({"span", "trace", "event", "link", "instrumentation", "resource"})
_INTRINSICS: dict[str, IntrinsicName] = {
    "name": "name",
    "status": "status",
    "statusMessage": "status_message",
    "duration": "duration",
    "kind": "kind",
}
# TraceQL words that name something this subset does not read.
_OTHER_INTRINSICS = frozenset(
    {"childCount", "rootName", "rootServiceName", "rootService", "traceDuration", "nestedSetLeft",
     "nestedSetRight", "nestedSetParent", "id", "traceID", "spanID", "parentID", "timeSinceStart", "version"}
)  # fmt: skip
_FUNCTIONS = frozenset(
    {"count", "avg", "max", "min", "sum", "by", "coalesce", "select", "rate", "count_over_time", "min_over_time",
     "max_over_time", "avg_over_time", "sum_over_time", "quantile_over_time", "histogram_over_time", "compare",
     "topk", "bottomk"}
)  # fmt: skip
_DURATION_RUNES = UNIT_CHARACTERS
_REGEX_OPTIONS = re2.Options()
_REGEX_OPTIONS.log_errors = False  # a bad pattern is the caller's 400, not a line on stderr
SUPPORTED = (
    "one spanset { ... } of comparisons on span and resource attributes, name, status, statusMessage, "
    "duration and kind, joined by && and ||"
)

TokenKind = Literal["symbol", "string", "number", "duration", "word", "attribute", "intrinsic", "end"]


class TraceQLError(ValueError):
    """The query is malformed, or uses a construct this subset does not have; the message says which."""


class UnsupportedTraceQL(TraceQLError):
    """Valid TraceQL outside the subset."""

    def __init__(self, construct: str) -> None:
        super().__init__(f"unsupported TraceQL: {construct}; supported is {SUPPORTED}")
        self.construct = construct


@dataclass(frozen=True)
class Token:
    kind: TokenKind
    text: str  # the source text, for messages
    position: int  # 1-based column
    value: str | int | float = ""
    scope: str = ""  # attributes and scoped intrinsics: the scope written before the name


def parse(query: str) -> SpanFilter | None:
    """The span filter ``query`` states: None for ``{ }`` (every span). Raises TraceQLError."""
    return _Parser(_tokens(query)).query()


def parse_field(text: str) -> Attribute | Intrinsic:
    """One field as a tag name of Tempo's v2 API names it (``span.http.method``, ``.foo``, ``name``...)."""
    parser = _Parser(_tokens(text))
    if parser._peek().kind == "end":
        raise TraceQLError("a tag name is required")
    field = parser._field()
    rest = parser._peek()
    if rest.kind != "end":
        raise TraceQLError(f"parse error at col {rest.position}: expected the end of the tag name, found {rest.text}")
    return field


# --------------------------------------------------------------------------------------------------------------
# Lexer


def _tokens(query: str) -> list[Token]:
    tokens: list[Token] = []
    i, n = 0, len(query)
    while i < n:
        char = query[i]
        if char.isspace():
            i += 1
            continue
        start = i
        if char in '"`':
            text, i = _string(query, i)
            tokens.append(Token("string", query[start:i], start + 1, text))
        elif char.isdigit() or (char == "." and i + 1 < n and query[i + 1].isdigit()):
            token, i = _number(query, i)
            tokens.append(token)
        elif char == ".":
            name, i = _attribute_name(query, i + 1)
            tokens.append(Token("attribute", query[start:i], start + 1, name, scope=""))
        elif char.isalpha() or char == "_":
            i += 1
            while i < n and (query[i].isalnum() or query[i] == "_"):
                i += 1
            word = query[start:i]
            if i < n and query[i] == "." and word in _DOT_SCOPES:
                name, i = _attribute_name(query, i + 1)
                tokens.append(Token("attribute", query[start:i], start + 1, name, scope=word))
            elif i < n and query[i] == ":" and word in _COLON_SCOPES:
                i += 1
                name_start = i
                while i < n and (query[i].isalnum() or query[i] == "_"):
                    i += 1
                tokens.append(Token("intrinsic", query[start:i], start + 1, query[name_start:i], scope=word))
            else:
                tokens.append(Token("word", word, start + 1, word))
        else:
            symbol = next((s for s in _SYMBOLS if query.startswith(s, i)), None)
            if symbol is None:
                raise TraceQLError(f"parse error at col {start + 1}: unexpected character {char!r}")
            i += len(symbol)
            tokens.append(Token("symbol", symbol, start + 1, symbol))
    tokens.append(Token("end", "end of query", n + 1))
    return tokens


def _string(query: str, i: int) -> tuple[str, int]:
    """A quoted string at ``i``: its value (Go escapes in "...", none in `...`) and the index after it."""
    quote = query[i]
    out: list[str] = []
    i += 1
    while i < len(query):
        char = query[i]
        if char == quote:
            return "".join(out), i + 1
        if char == "\\" and quote == '"':
            i += 1
            if i >= len(query):
                break
            escaped = query[i]
            replacement = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'"}.get(escaped)
            if replacement is None:
                raise TraceQLError(f"parse error at col {i}: invalid escape sequence \\{escaped}")
            out.append(replacement)
        else:
            out.append(char)
        i += 1
    raise TraceQLError(f"parse error: a string is not closed (missing {quote})")


def _attribute_name(query: str, i: int) -> tuple[str, int]:
    """The attribute name starting at ``i`` (quoted parts joined in) and the index after it."""
    out: list[str] = []
    while i < len(query):
        char = query[i]
        if char == '"':
            part, i = _string(query, i)
            out.append(part)
        elif char.isspace() or char in _ATTRIBUTE_ENDERS:
            break
        else:
            out.append(char)
            i += 1
    return "".join(out), i


def _number(query: str, i: int) -> tuple[Token, int]:
    """An integer, a float or a duration starting at ``i``."""
    start = i
    while i < len(query) and (query[i].isdigit() or query[i] == "." or query[i] in _DURATION_RUNES):
        i += 1
    text = query[start:i]
    if i < len(query) and (query[i].isalnum() or query[i] == "_"):
        raise TraceQLError(f"parse error at col {start + 1}: {query[start : i + 1]!r} is not a number or a duration")
    if any(char in _DURATION_RUNES for char in text):
        return Token("duration", text, start + 1, _duration_nanos(text, start + 1)), i
    try:
        number: int | float = float(text) if "." in text else int(text)
    except ValueError:
        raise TraceQLError(f"parse error at col {start + 1}: {text!r} is not a number") from None
    return Token("number", text, start + 1, number), i


def _duration_nanos(text: str, position: int) -> int:
    """``1h30m``, ``1.5s``, ``250ms``, ``2d``... in nanoseconds."""
    try:
        return parse_duration(text, PROMETHEUS_UNITS)
    except ValueError as exc:
        raise TraceQLError(f"parse error at col {position}: {exc}") from None


# --------------------------------------------------------------------------------------------------------------
# Parser


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self._tokens = tokens
        self._at = 0

    def _peek(self) -> Token:
        return self._tokens[self._at]

    def _next(self) -> Token:
        token = self._tokens[self._at]
        if token.kind != "end":
            self._at += 1
        return token

    def _is(self, *symbols: str) -> bool:
        token = self._peek()
        return token.kind == "symbol" and token.text in symbols

    def query(self) -> SpanFilter | None:
        first = self._peek()
        if first.kind == "end":
            raise TraceQLError("parse error: the query is empty; {} matches every span")
        if not self._is("{"):
            self._refuse_outside_spanset(first)
        condition = self._spanset()
        after = self._peek()
        if after.kind != "end":
            self._refuse_after_spanset(after)
        return condition

    def _spanset(self) -> SpanFilter | None:
        self._next()  # {
        if self._is("}"):
            self._next()
            return None
        condition = self._or()
        closing = self._peek()
        if not self._is("}"):
            self._refuse_inside(closing, "} or && or ||")
        self._next()
        return condition

    def _or(self) -> SpanFilter:
        left = self._and()
        while self._is("||"):
            self._next()
            left = spanfilter.Or(left, self._and())
        return left

    def _and(self) -> SpanFilter:
        left = self._primary()
        while self._is("&&"):
            self._next()
            left = spanfilter.And(left, self._primary())
        return left

    def _primary(self) -> SpanFilter:
        token = self._peek()
        if self._is("("):
            self._next()
            inner = self._or()
            if not self._is(")"):
                self._refuse_inside(self._peek(), ")")
            self._next()
            return inner
        if self._is("{"):
            raise UnsupportedTraceQL("a spanset inside a spanset")
        field = self._field()
        operator_token = self._peek()
        if operator_token.kind != "symbol" or operator_token.text not in _COMPARISONS:
            if operator_token.kind == "symbol" and operator_token.text in _ARITHMETIC:
                raise UnsupportedTraceQL(f"arithmetic ({operator_token.text})")
            if operator_token.kind == "symbol" and operator_token.text in ("&&", "||", ")", "}"):
                raise UnsupportedTraceQL(f"a field used alone as a condition ({token.text}); compare it, e.g. != nil")
            self._refuse_inside(operator_token, "a comparison operator")
        self._next()
        operator: Operator = operator_token.text  # type: ignore[assignment]  # checked against _COMPARISONS
        value = self._value()
        comparison = Comparison(field, operator, value)
        try:
            spanfilter.check(comparison)
        except FilterError as exc:
            raise TraceQLError(f"invalid comparison at col {token.position}: {exc}") from None
        if operator in spanfilter.REGEX and isinstance(value, str):
            _check_regex(value, operator_token.position)
        return comparison

    def _field(self) -> Attribute | Intrinsic:
        token = self._next()
        if token.kind == "attribute":
            if token.scope not in ("", "span", "resource"):
                raise UnsupportedTraceQL(f"{token.scope} attributes ({token.scope}.)")
            if not isinstance(token.value, str) or not token.value:
                raise TraceQLError(
                    f"parse error at col {token.position}: an attribute name is missing after {token.text}"
                )
            scope: spanfilter.Scope = "any" if token.scope == "" else token.scope  # type: ignore[assignment]
            return Attribute(token.value, scope)
        if token.kind == "intrinsic":
            if token.scope == "span" and token.value in _INTRINSICS:
                return Intrinsic(_INTRINSICS[str(token.value)])
            raise UnsupportedTraceQL(f"the intrinsic {token.text}")
        if token.kind == "word":
            if token.text in _INTRINSICS:
                return Intrinsic(_INTRINSICS[token.text])
            if token.text in _OTHER_INTRINSICS:
                raise UnsupportedTraceQL(f"the intrinsic {token.text}")
            if token.text in _FUNCTIONS:
                raise UnsupportedTraceQL(f"the function {token.text}()")
        if token.kind in ("string", "number", "duration") or (token.kind == "word" and _keyword_value(token)):
            raise UnsupportedTraceQL(f"a condition that starts with a value ({token.text}); write the field first")
        if token.kind == "symbol" and token.text == "!":
            raise UnsupportedTraceQL("negation (!)")
        self._refuse_inside(token, "a field (span.x, resource.x, .x, name, status, duration, kind)")
        raise AssertionError("unreachable")

    def _value(self) -> Value:
        token = self._next()
        if token.kind == "string":
            return str(token.value)
        if token.kind == "number":
            return token.value if isinstance(token.value, int | float) else 0
        if token.kind == "duration":
            return DurationValue(int(token.value))
        if token.kind == "symbol" and token.text == "-":
            number = self._next()
            if number.kind == "number" and isinstance(number.value, int | float):
                return -number.value
            if number.kind == "duration":
                return DurationValue(-int(number.value))
            self._refuse_inside(number, "a number after -")
        if token.kind == "word":
            keyword = _keyword_value(token)
            if keyword is not None:
                return keyword
        if token.kind in ("attribute", "intrinsic") or (token.kind == "word" and token.text in _INTRINSICS):
            raise UnsupportedTraceQL(f"comparing two fields ({token.text})")
        self._refuse_inside(token, "a value")
        raise AssertionError("unreachable")

    def _refuse_outside_spanset(self, token: Token) -> None:
        if token.kind == "word" and token.text in _FUNCTIONS:
            raise UnsupportedTraceQL(f"the function {token.text}()")
        if token.kind == "symbol" and token.text == "(":
            raise UnsupportedTraceQL("grouping spansets with parentheses")
        raise TraceQLError(f"parse error at col {token.position}: expected {{, found {token.text}")

    def _refuse_after_spanset(self, token: Token) -> None:
        if token.kind == "symbol":
            if token.text == "|":
                raise UnsupportedTraceQL("pipelines (|)")
            if token.text in ("&&", "||"):
                raise UnsupportedTraceQL(f"combining spansets with {token.text}")
            if token.text in _STRUCTURAL:
                raise UnsupportedTraceQL(f"the structural operator {token.text}")
        if token.kind == "word" and token.text == "with":
            raise UnsupportedTraceQL("query hints (with)")
        raise TraceQLError(f"parse error at col {token.position}: expected the end of the query, found {token.text}")

    def _refuse_inside(self, token: Token, expected: str) -> None:
        if token.kind == "symbol":
            if token.text == "!":
                raise UnsupportedTraceQL("negation (!)")
            if token.text in _ARITHMETIC:
                raise UnsupportedTraceQL(f"arithmetic ({token.text})")
            if token.text == "|":
                raise UnsupportedTraceQL("pipelines (|)")
        if token.kind == "word" and token.text in _FUNCTIONS:
            raise UnsupportedTraceQL(f"the function {token.text}()")
        raise TraceQLError(f"parse error at col {token.position}: expected {expected}, found {token.text}")


def _keyword_value(token: Token) -> Value | None:
    word = token.text
    if word == "true":
        return True
    if word == "false":
        return False
    if word == "nil":
        return Nil()
    if word in spanfilter.STATUS_WORDS:
        return StatusValue(word)
    if word in spanfilter.KIND_WORDS:
        return KindValue(word)
    return None


def _check_regex(pattern: str, position: int) -> None:
    """Refuse a pattern RE2 (ClickHouse's engine for match()) cannot compile, naming RE2's reason."""
    try:
        re2.compile(spanfilter.anchored(pattern), _REGEX_OPTIONS)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise TraceQLError(f"invalid regular expression at col {position}: {reason}") from None
