"""Blank header secrets out of text a server sends back, before the text is logged or raised.

Shared by the OTLP exporters: a careless server may quote the credential it was
sent (a rejected token, say) in an error message or a partial-success warning.
"""

from __future__ import annotations

from collections.abc import Iterable

REDACTED = "***"
MIN_WORD_CHARS = 8  # shorter words of a header value ("Bearer", "Basic") are not the secret


class Redactor:
    """Replaces every secret it was given with ``***``."""

    def __init__(self, secrets: Iterable[str]) -> None:
        # A server usually quotes the credential, not the whole header value ("Bearer <token>"): each
        # value's words long enough to be one are secrets too. Longest first, so a secret holding
        # another is blanked whole.
        whole = {secret for secret in secrets if secret}
        words = {word for secret in whole for word in secret.replace(",", " ").split() if len(word) >= MIN_WORD_CHARS}
        self._secrets = sorted(whole | words, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return text
