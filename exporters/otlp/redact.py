"""Blank header secrets out of text a server sends back, before the text is logged or raised.

Shared by the OTLP exporters: a careless server may quote the credential it was
sent (a rejected token, say) in an error message or a partial-success warning.
"""

from __future__ import annotations

from collections.abc import Iterable

REDACTED = "***"


class Redactor:
    """Replaces every secret it was given with ``***``."""

    def __init__(self, secrets: Iterable[str]) -> None:
        # Longest first, so a secret containing another is blanked whole.
        self._secrets = sorted({secret for secret in secrets if secret}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return text
