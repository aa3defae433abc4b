"""The tags parameter of Tempo's search, decoded as go-logfmt decodes it (grafana/tempo pkg/api/http.go)."""

from __future__ import annotations

import pytest

from collector.extensions.api.tempo.logfmt import LogfmtError, decode_pairs


def test_pairs_bare_quoted_and_empty() -> None:
    text = 'service.name=frontend http.url="/a b" empty= flag msg="say \\"hi\\""'
    assert decode_pairs(text) == [
        ("service.name", "frontend"),
        ("http.url", "/a b"),
        ("empty", ""),
        ("flag", ""),
        ("msg", 'say "hi"'),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a=1 a=2", "invalid tags: tag a has been set twice"),
        ('a="open', "invalid tags: unterminated quoted value at pos 8"),
        ("a=b=c", "invalid tags: unexpected '=' at pos 4"),
        ("=x", "invalid tags: unexpected '=' at pos 1"),
        ('a="\\q"', "invalid tags: invalid escape at pos 5"),
    ],
)
def test_malformed_tags_are_refused(text: str, message: str) -> None:
    with pytest.raises(LogfmtError) as refused:
        decode_pairs(text)
    assert str(refused.value) == message
