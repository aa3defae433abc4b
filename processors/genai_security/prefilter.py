"""A cheaper copy of an RE2 pattern for the one-pass set that decides which rules run on a text.

A DFA tracks where it is inside every counted repetition at once, so bounded
ranges such as ``[^\\n]{0,200}`` in a few patterns multiply its states until
RE2's cache thrashes: the set of all built-in rules then scans about four
times slower than the same set with those ranges opened up. The set only has
to say which rules *might* match (each rule's own pattern then runs and
decides), so it can use a loosened copy: ``X{m,n}`` with a wide range becomes
``X{m,}``, which matches everything the original did and more.

The copy also loses its anchors (``^``, ``$``, ``\\A``, ``\\z``), so that one
set pass over several texts joined by newlines finds every rule that could
match any one of them.
"""

from __future__ import annotations

import re

# Ranges at most this wide stay as written: they cost the DFA little and keep the set selective.
MAX_KEPT_RANGE = 8
_RANGE = re.compile(r"\{(\d+),(\d+)\}")
_ANCHOR_ESCAPES = ("\\A", "\\z")


def loosened(pattern: str) -> str:
    """``pattern`` without anchors, and with every wide ``{m,n}`` (outside classes and escapes) opened to ``{m,}``."""
    out: list[str] = []
    i = 0
    n = len(pattern)
    while i < n:
        char = pattern[i]
        if char == "\\":
            end = _escape_end(pattern, i)
            if pattern[i:end] in _ANCHOR_ESCAPES:
                i = end
                continue
        elif char in "^$":
            i += 1
            continue
        elif char == "[":
            end = _class_end(pattern, i)
        elif char == "{" and (repeat := _RANGE.match(pattern, i)) is not None:
            low, high = int(repeat.group(1)), int(repeat.group(2))
            out.append(f"{{{low},}}" if high - low > MAX_KEPT_RANGE else repeat.group())
            i = repeat.end()
            continue
        else:
            end = i + 1
        out.append(pattern[i:end])
        i = end
    return "".join(out)


def _escape_end(pattern: str, start: int) -> int:
    """Just past the escape at ``start``: ``\\x``, ``\\x{...}``, ``\\p{...}`` or a ``\\Q...\\E`` literal run."""
    kind = pattern[start + 1 : start + 2]
    if kind == "Q":
        close = pattern.find("\\E", start + 2)
        return len(pattern) if close < 0 else close + 2
    if kind in ("x", "p", "P") and pattern[start + 2 : start + 3] == "{":
        close = pattern.find("}", start + 3)
        return len(pattern) if close < 0 else close + 1
    return min(start + 2, len(pattern))


def _class_end(pattern: str, start: int) -> int:
    """Just past the character class opening at ``start`` (a ``]`` right after ``[`` or ``[^`` is literal)."""
    i = start + 1
    if pattern[i : i + 1] == "^":
        i += 1
    if pattern[i : i + 1] == "]":
        i += 1
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            i = _escape_end(pattern, i)
        elif char == "[" and pattern[i + 1 : i + 2] == ":":
            close = pattern.find(":]", i + 2)
            i = len(pattern) if close < 0 else close + 2
        elif char == "]":
            return i + 1
        else:
            i += 1
    return len(pattern)
