"""Settings of the ``genai_security`` processor: what to do with each kind of finding, and user rules."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

import re2

from collector.config.types import Secret
from processors.genai_security.rules import BUILTIN_RULES, compile_pattern

Action = Literal["keep", "mask", "hash", "drop"]
CATEGORIES = ("secret", "personal_data", "prompt_injection")
DEFAULT_MAX_SCAN_CHARS = 1_000_000


@dataclass(frozen=True)
class UserRule:
    """A detector of the user's: ``pattern`` is RE2 syntax (linear time on any input)."""

    id: str = ""
    pattern: str = ""
    category: Literal["secret", "personal_data", "prompt_injection"] = "secret"
    severity: Literal["low", "medium", "high", "critical"] = "high"
    confidence: float = 0.8

    def validate(self) -> Iterable[tuple[str, str]]:
        if not self.id:
            yield "id", "is required"
        if not self.pattern:
            yield "pattern", "is required"
        else:
            try:
                compile_pattern(self.pattern)
            except re2.error as exc:
                reason = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else str(exc)
                yield "pattern", f"not a valid RE2 pattern: {reason}"
        if not 0 < self.confidence <= 1:
            yield "confidence", "must be more than 0 and at most 1"


@dataclass(frozen=True)
class GenAiSecurityConfig:
    """``actions`` maps a detector id or a category to keep, mask, hash or drop; the most specific wins.

    mask replaces the value with ``[REDACTED:<detector>]``; hash with a keyed HMAC of it (``hmac_key``
    is then required); drop removes the whole content attribute the finding was in.
    """

    actions: dict[str, Action] = field(default_factory=dict)
    default_action: Action = "keep"
    hmac_key: Secret = field(default_factory=lambda: Secret(""))
    rules: tuple[UserRule, ...] = ()
    disabled: tuple[str, ...] = ()  # built-in detector ids to switch off
    max_scan_chars: int = DEFAULT_MAX_SCAN_CHARS  # per span; what is beyond is not scanned, and the span says so

    def validate(self) -> Iterable[tuple[str, str]]:
        known = {rule.id for rule in BUILTIN_RULES} | {rule.id for rule in self.rules} | {"system_prompt_leak"}
        for key in self.actions:
            if key not in known and key not in CATEGORIES:
                yield f"actions.{key}", f"not a detector or category; categories are {', '.join(CATEGORIES)}"
        for name in self.disabled:
            if name not in known:
                yield "disabled", f'unknown detector "{name}"'
        uses_hash = self.default_action == "hash" or "hash" in self.actions.values()
        if uses_hash and not self.hmac_key.reveal():
            yield "hmac_key", "is required when an action is hash (set it from the environment: ${env:NAME})"
        if self.max_scan_chars < 1:
            yield "max_scan_chars", "must be at least 1"
