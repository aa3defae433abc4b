"""Find what the rules match in one text, and leak checks that need two texts (system prompt in an output)."""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

import re2

from processors.genai_security.prefilter import loosened
from processors.genai_security.rules import PATTERN_OPTIONS, Rule

# A system prompt sentence this long, repeated in an output, is a leak rather than a coincidence.
LEAK_MIN_CHARS = 40
_SENTENCE = re.compile(r"[^.!?\n]+")


@dataclass(frozen=True)
class Finding:
    rule_id: str
    category: str
    severity: str
    confidence: float
    start: int
    end: int


class Scanner:
    """Every rule, with one RE2 set over all their patterns in front.

    Most text holds no finding: one linear pass of the set over it says which
    rules can match at all, and only those run to find where (a text with no
    match costs one pass, not one per rule). The set holds loosened copies of
    the patterns (see ``prefilter``), so it may name a rule that then finds
    nothing, never the reverse.
    """

    def __init__(self, rules: Iterable[Rule]) -> None:
        self.rules = tuple(rules)
        self._set = re2.Set.SearchSet(PATTERN_OPTIONS)
        for rule in self.rules:
            try:
                self._set.Add(loosened(rule.pattern.pattern))
            except re2.error:
                self._set.Add("")  # an odd pattern loosening broke (such as ``^*``): its rule runs on every text
        self._set.Compile()

    def may_match(self, text: str) -> bool:
        """False when no rule can match anywhere in ``text`` (one set pass); several texts may be joined by newlines."""
        return bool(self._set.Match(_utf8(text)[0]))

    def scan(self, text: str, role: str) -> list[Finding]:
        """Every finding in ``text``; a match overlapping an earlier rule's finding is dropped (rules run in order)."""
        # RE2 works on UTF-8: encode once and match bytes (the wrapper would re-encode the text for every call).
        data, text = _utf8(text)
        hits = self._set.Match(data)
        if not hits:
            return []
        is_ascii = len(data) == len(text)
        findings: list[Finding] = []  # in text order
        starts: list[int] = []
        for index in sorted(hits):
            rule = self.rules[index]
            if rule.roles is not None and role not in rule.roles:
                continue
            group = 1 if rule.pattern.groups > 0 else 0
            offsets = None if is_ascii else _CharOffsets(data)
            for match in rule.pattern.finditer(data):
                start, end = match.span(group)
                if start < 0:
                    continue
                if offsets is not None:
                    start, end = offsets.char(start), offsets.char(end)
                if rule.check is not None and not rule.check(text[start:end]):
                    continue
                # Findings kept sorted by start: only the neighbours can overlap (linear in findings, not quadratic).
                at = bisect.bisect_left(starts, start)
                if (at > 0 and findings[at - 1].end > start) or (at < len(findings) and findings[at].start < end):
                    continue
                starts.insert(at, start)
                findings.insert(at, Finding(rule.id, rule.category, rule.severity, rule.confidence, start, end))
        return findings


_SURROGATE = re.compile("[\ud800-\udfff]")


def _utf8(text: str) -> tuple[bytes, str]:
    """``text`` as UTF-8, and the text the bytes spell (lone surrogates, which UTF-8 cannot hold, become U+FFFD).

    One code point replaces another, so character offsets into the returned text are offsets into ``text``.
    """
    try:
        return text.encode(), text
    except UnicodeEncodeError:
        cleaned = _SURROGATE.sub("\ufffd", text)
        return cleaned.encode(), cleaned


class _CharOffsets:
    """Byte offsets into UTF-8 as character offsets; asked in increasing order, it decodes each byte once."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._byte = 0
        self._char = 0

    def char(self, byte: int) -> int:
        if byte < self._byte:
            self._byte = self._char = 0
        self._char += len(self._data[self._byte : byte].decode())
        self._byte = byte
        return self._char


def system_prompt_leak(output: str, system_texts: Iterable[str]) -> Finding | None:
    """The first long sentence of the system instructions that the output repeats verbatim."""
    for system in system_texts:
        for sentence in long_sentences(system):
            start = output.find(sentence)
            if start >= 0:
                return Finding("system_prompt_leak", "prompt_injection", "high", 0.9, start, start + len(sentence))
    return None


@lru_cache(maxsize=256)
def long_sentences(system: str) -> tuple[str, ...]:
    """The sentences of a system prompt long enough to count as leaked when repeated.

    Cached: an application sends the same system prompt with every call.
    """
    sentences = (match.group().strip() for match in _SENTENCE.finditer(system))
    return tuple(sentence for sentence in sentences if len(sentence) >= LEAK_MIN_CHARS)
