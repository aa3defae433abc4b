"""The TraceQL subset: what each accepted query means, and the message each refused one gets.

Syntax as grafana/tempo defines it (commit ad33aa8f): pkg/traceql/lexer.go and lexer_test.go (attribute names,
scopes, durations, multi-character operators), docs/sources/tempo/traceql/construct-traceql-queries.md
(regular expressions are anchored at both ends). Which traces each query finds in a store is checked in
test_tempo_api.py.
"""

from __future__ import annotations

import pytest

from collector.extensions.api.spanfilter import (
    And,
    Attribute,
    Comparison,
    DurationValue,
    Intrinsic,
    KindValue,
    Nil,
    Or,
    StatusValue,
)
from collector.extensions.api.tempo.traceql import TraceQLError, UnsupportedTraceQL, parse, parse_field

SECOND = 1_000_000_000

ACCEPTED = [
    ("{}", None),
    ("{ }", None),
    ('{ span.http.method = "GET" }', Comparison(Attribute("http.method", "span"), "=", "GET")),
    ("{ resource.service.name != `api` }", Comparison(Attribute("service.name", "resource"), "!=", "api")),
    ('{ .foo =~ "ba.*" }', Comparison(Attribute("foo"), "=~", "ba.*")),
    ('{ span."a b".c !~ "x" }', Comparison(Attribute("a b.c", "span"), "!~", "x")),
    ("{ .foo-bar+baz = 1 }", Comparison(Attribute("foo-bar+baz"), "=", 1)),
    ("{ span.http.status_code >= 500 }", Comparison(Attribute("http.status_code", "span"), ">=", 500)),
    ("{ .ratio < 0.5 }", Comparison(Attribute("ratio"), "<", 0.5)),
    ("{ .delta > -3 }", Comparison(Attribute("delta"), ">", -3)),
    ("{ .ok = true }", Comparison(Attribute("ok"), "=", True)),
    ("{ .gone != nil }", Comparison(Attribute("gone"), "!=", Nil())),
    ('{ name = "chat gpt-4o" }', Comparison(Intrinsic("name"), "=", "chat gpt-4o")),
    ('{ span:name = "x" }', Comparison(Intrinsic("name"), "=", "x")),
    ("{ status = error }", Comparison(Intrinsic("status"), "=", StatusValue("error"))),
    ("{ span:status != ok }", Comparison(Intrinsic("status"), "!=", StatusValue("ok"))),
    ('{ statusMessage = "boom" }', Comparison(Intrinsic("status_message"), "=", "boom")),
    ("{ kind = client }", Comparison(Intrinsic("kind"), "=", KindValue("client"))),
    ("{ duration > 1.5s }", Comparison(Intrinsic("duration"), ">", DurationValue(1_500_000_000))),
    ("{ span:duration <= 1h30m }", Comparison(Intrinsic("duration"), "<=", DurationValue(5400 * SECOND))),
    ("{ duration >= 250ms }", Comparison(Intrinsic("duration"), ">=", DurationValue(250_000_000))),
    (
        '{ .a = "1" && .b = "2" || .c = "3" }',
        Or(
            And(Comparison(Attribute("a"), "=", "1"), Comparison(Attribute("b"), "=", "2")),
            Comparison(Attribute("c"), "=", "3"),
        ),
    ),
    (
        '{ .a = "1" && (.b = "2" || .c = "3") }',
        And(
            Comparison(Attribute("a"), "=", "1"),
            Or(Comparison(Attribute("b"), "=", "2"), Comparison(Attribute("c"), "=", "3")),
        ),
    ),
    ('{ .msg = "say \\"hi\\"\\n" }', Comparison(Attribute("msg"), "=", 'say "hi"\n')),
]


@pytest.mark.parametrize(("query", "expected"), ACCEPTED)
def test_accepted_queries_parse_to_their_span_filter(query: str, expected: object) -> None:
    assert parse(query) == expected


UNSUPPORTED = [
    ("{ .a = 1 } | count() > 1", "pipelines (|)"),
    ("{ .a = 1 } && { .b = 2 }", "combining spansets with &&"),
    ("{ .a = 1 } || { .b = 2 }", "combining spansets with ||"),
    ("{ .a = 1 } >> { .b = 2 }", "the structural operator >>"),
    ("{ .a = 1 } > { .b = 2 }", "the structural operator >"),
    ("{ .a = 1 } ~ { .b = 2 }", "the structural operator ~"),
    ("{ .a = 1 } !< { .b = 2 }", "the structural operator !<"),
    ("{ event.name = 1 }", "event attributes (event.)"),
    ('{ link.kind = "x" }', "link attributes (link.)"),
    ("{ parent.foo = 1 }", "parent attributes (parent.)"),
    ('{ instrumentation.x = "y" }', "instrumentation attributes (instrumentation.)"),
    ("{ trace:duration > 1s }", "the intrinsic trace:duration"),
    ('{ event:name = "x" }', "the intrinsic event:name"),
    ("{ span:childCount = 0 }", "the intrinsic span:childCount"),
    ('{ rootServiceName = "x" }', "the intrinsic rootServiceName"),
    ("{ traceDuration > 1s }", "the intrinsic traceDuration"),
    ("{ .a }", "a field used alone as a condition (.a); compare it, e.g. != nil"),
    ("{ .a = .b }", "comparing two fields (.b)"),
    ("{ duration > span:duration }", "comparing two fields (span:duration)"),
    ("{ !(.a = 1) }", "negation (!)"),
    ("{ .a + 1 = 2 }", "arithmetic (+)"),
    ("{ 5 = .a }", "a condition that starts with a value (5); write the field first"),
    ("{ { .a = 1 } }", "a spanset inside a spanset"),
    ("count() > 2", "the function count()"),
    ("({ .a = 1 })", "grouping spansets with parentheses"),
    ("{ .a = 1 } with (most_recent=true)", "query hints (with)"),
]


@pytest.mark.parametrize(("query", "construct"), UNSUPPORTED)
def test_constructs_outside_the_subset_are_refused_by_name(query: str, construct: str) -> None:
    with pytest.raises(UnsupportedTraceQL) as refused:
        parse(query)
    assert refused.value.construct == construct
    assert str(refused.value).startswith(f"unsupported TraceQL: {construct}; supported is one spanset")


MALFORMED = [
    ("", "parse error: the query is empty; {} matches every span"),
    ("{ .a = 1", "parse error at col 9: expected } or && or ||, found end of query"),
    ('{ .a = "x }', 'parse error: a string is not closed (missing ")'),
    ("{ . = 1 }", "parse error at col 3: an attribute name is missing after ."),
    ("{ .a = 1e3 }", "parse error at col 8: '1e' is not a number or a duration"),
    ("{ .a = 1 } }", "parse error at col 12: expected the end of the query, found }"),
    ("{ .a = 3x }", "parse error at col 8: '3x' is not a number or a duration"),
    ("{ duration > 1.5q }", "parse error at col 14: '1.5q' is not a number or a duration"),
    ('{ duration = "x" }', "invalid comparison at col 3: duration is compared with a string; expected a duration"),
    ("{ status = 1 }", "invalid comparison at col 3: status is compared with a number; expected a status"),
    ("{ kind > server }", "invalid comparison at col 3: kind can only be compared with = or !="),
    ("{ name > 5 }", "invalid comparison at col 3: name is compared with a number; expected a string"),
    ("{ .a =~ 5 }", "invalid comparison at col 3: =~ needs a string (a regular expression)"),
    ("{ .a = error }", "invalid comparison at col 3: an attribute (a) is compared with a status"),
    ("{ .a > true }", "invalid comparison at col 3: a boolean can only be compared with = or !="),
    ('{ .a =~ "(" }', "invalid regular expression at col 6: missing ): ^(?:()$"),
    ("{ .a = 1 ; }", "parse error at col 10: unexpected character ';'"),
    ('{ .a = "\\q" }', "parse error at col 9: invalid escape sequence \\q"),
]


@pytest.mark.parametrize(("query", "message"), MALFORMED)
def test_malformed_queries_say_where(query: str, message: str) -> None:
    with pytest.raises(TraceQLError) as refused:
        parse(query)
    assert not isinstance(refused.value, UnsupportedTraceQL)
    assert str(refused.value) == message


def test_tag_names_parse_as_single_fields() -> None:
    assert parse_field("span.http.method") == Attribute("http.method", "span")
    assert parse_field("resource.service.name") == Attribute("service.name", "resource")
    assert parse_field(".foo") == Attribute("foo")
    assert parse_field("status") == Intrinsic("status")
    assert parse_field("span:kind") == Intrinsic("kind")
    with pytest.raises(UnsupportedTraceQL):
        parse_field("event.x")
    with pytest.raises(TraceQLError, match="expected the end of the tag name"):
        parse_field("span.a = 1")
