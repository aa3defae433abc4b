"""What a limits store keeps and answers: one interface, backed by this process's memory or by Redis."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from collector.keys import Limits
from proxy.limits.buckets import seconds_to_next_day, seconds_to_next_month, seconds_until

LimitName = Literal["rpm", "tpm", "concurrency", "daily_budget", "monthly_budget"]
ScopeKind = Literal["key", "tenant"]
# A call refused for concurrency may try again this soon: a slot frees when any call in flight ends.
CONCURRENCY_RETRY_AFTER = 1.0


@dataclass(frozen=True)
class Scope:
    """Whom a limit is for: one proxy key (by id) or one tenant, with the limits that apply to it."""

    kind: ScopeKind
    name: str
    limits: Limits

    @property
    def id(self) -> str:
        return f"{self.kind}:{self.name}"


@dataclass(frozen=True)
class Charge:
    """What a call takes up front: a request, its estimated tokens, its estimated USD (None: unpriced)."""

    tokens: int
    cost: float | None
    lease: str  # names the call among those in flight
    day: str  # the UTC day and month its cost is charged to (and corrected in)
    month: str


@dataclass(frozen=True)
class Window:
    """One rate limit as a client's x-ratelimit-* headers tell it: limit, what is left, seconds until full."""

    limit: int
    remaining: int
    reset: float


@dataclass(frozen=True)
class Refusal:
    scope: Scope
    limit: LimitName
    retry_after: float  # seconds


@dataclass(frozen=True)
class Decision:
    """A store's answer: refused (and why), or taken; the tightest request and token windows either way."""

    refusal: Refusal | None
    requests: Window | None = None
    tokens: Window | None = None


def window(limit: int, level: float) -> Window:
    """A bucket of ``limit`` per minute at ``level`` as its headers tell it."""
    return Window(limit, max(0, int(level // 1)), seconds_until(level, limit, limit))


def refusal(scope: Scope, limit: LimitName, level: float, charge: Charge, now: float) -> Refusal:
    """Refused over ``limit``; ``level`` is the bucket's (rpm, tpm): when may the client try again."""
    limits = scope.limits
    if limit == "rpm":
        return Refusal(scope, limit, seconds_until(level, 1, limits.rpm or 0))
    if limit == "tpm":
        tpm = limits.tpm or 0
        return Refusal(scope, limit, seconds_until(level, max(min(charge.tokens, tpm), 1), tpm))
    if limit == "daily_budget":
        return Refusal(scope, limit, seconds_to_next_day(now))
    if limit == "monthly_budget":
        return Refusal(scope, limit, seconds_to_next_month(now))
    return Refusal(scope, limit, CONCURRENCY_RETRY_AFTER)


Levels = tuple[float | None, float | None]  # a scope's requests and tokens bucket levels (None: not limited)


def tightest_windows(scopes: Sequence[Scope], levels: Sequence[Levels]) -> tuple[Window | None, Window | None]:
    """The request and token windows a client must respect: of every scope's, those with least left."""
    requests: tuple[float, int] | None = None
    tokens: tuple[float, int] | None = None
    for scope, (request_level, token_level) in zip(scopes, levels, strict=True):
        rpm, tpm = scope.limits.rpm, scope.limits.tpm
        if request_level is not None and rpm is not None and (requests is None or request_level < requests[0]):
            requests = (request_level, rpm)
        if token_level is not None and tpm is not None and (tokens is None or token_level < tokens[0]):
            tokens = (token_level, tpm)
    return (
        window(requests[1], requests[0]) if requests is not None else None,
        window(tokens[1], tokens[0]) if tokens is not None else None,
    )


class LimitStore(Protocol):
    async def take(self, scopes: Sequence[Scope], charge: Charge, now: float) -> Decision:
        """Check every limit of every scope; take the charge from all of them only when all allow it."""
        ...

    def settle(self, scopes: Sequence[Scope], charge: Charge, tokens_delta: int, cost_delta: float, now: float) -> None:
        """Correct the charge by what the call really used, and end its time in flight.

        Never waits and never raises: a store that must talk to a server does so in the background.
        """
        ...

    async def close(self) -> None:
        """Finish what is under way (settlements included) and let go of connections."""
        ...
