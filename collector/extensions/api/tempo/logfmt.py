"""The ``tags`` parameter of Tempo's search: ``key=value`` pairs in logfmt, as go-logfmt decodes them.

Pairs are separated by spaces; a value is bare (up to the next space) or
double-quoted with Go escapes (``\\"``, ``\\\\``, ``\\n``, ``\\t``...); a key
without ``=`` has the empty value. A key given twice is refused, as Tempo
refuses it (pkg/api/http.go ParseSearchRequest).
"""

from __future__ import annotations

_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "/": "/", "b": "\b", "f": "\f"}


class LogfmtError(ValueError):
    """The text is not logfmt; the message says where."""


def decode_pairs(text: str) -> list[tuple[str, str]]:
    """The key/value pairs of ``text`` in order; LogfmtError on a syntax error or a repeated key."""
    pairs: list[tuple[str, str]] = []
    seen: set[str] = set()
    i, n = 0, len(text)
    while i < n:
        if text[i] in " \t\r\n":
            i += 1
            continue
        start = i
        while i < n and text[i] not in " \t\r\n=" and text[i] != '"':
            i += 1
        key = text[start:i]
        if not key:
            raise LogfmtError(f"invalid tags: unexpected '{text[i]}' at pos {i + 1}")
        value = ""
        if i < n and text[i] == "=":
            i += 1
            if i < n and text[i] == '"':
                value, i = _quoted(text, i)
            else:
                value_start = i
                while i < n and text[i] not in " \t\r\n":
                    if text[i] in '="':
                        raise LogfmtError(f"invalid tags: unexpected '{text[i]}' at pos {i + 1}")
                    i += 1
                value = text[value_start:i]
        elif i < n and text[i] == '"':
            raise LogfmtError(f"invalid tags: unexpected '\"' at pos {i + 1}")
        if key in seen:
            raise LogfmtError(f"invalid tags: tag {key} has been set twice")
        seen.add(key)
        pairs.append((key, value))
    return pairs


def _quoted(text: str, i: int) -> tuple[str, int]:
    """The value of the quoted string starting at ``i`` and the index after its closing quote."""
    out: list[str] = []
    i += 1
    while i < len(text):
        char = text[i]
        if char == '"':
            return "".join(out), i + 1
        if char == "\\":
            i += 1
            if i >= len(text) or text[i] not in _ESCAPES:
                raise LogfmtError(f"invalid tags: invalid escape at pos {i + 1}")
            out.append(_ESCAPES[text[i]])
        else:
            out.append(char)
        i += 1
    raise LogfmtError(f"invalid tags: unterminated quoted value at pos {len(text) + 1}")
