"""Limit state in this process's memory: the default store, exact for one proxy process.

The event loop runs one call's check at a time, so check-then-take needs no lock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from proxy.limits.buckets import refilled
from proxy.limits.store import Charge, Decision, Levels, Refusal, Scope, refusal, tightest_windows


@dataclass
class _ScopeState:
    requests: float | None = None  # bucket levels; None: never used, full
    requests_at: float = 0.0
    requests_limit: float | None = None  # the limit the level was stored under
    tokens: float | None = None
    tokens_at: float = 0.0
    tokens_limit: float | None = None
    in_flight: int = 0
    day: str = ""
    day_spent: float = 0.0
    month: str = ""
    month_spent: float = 0.0

    def spent_on(self, day: str, month: str) -> tuple[float, float]:
        return (self.day_spent if self.day == day else 0.0, self.month_spent if self.month == month else 0.0)


class MemoryStore:
    def __init__(self, max_scopes: int) -> None:
        self._states: dict[str, _ScopeState] = {}
        self._max_scopes = max_scopes

    async def take(self, scopes: Sequence[Scope], charge: Charge, now: float) -> Decision:
        states = [self._state(scope.id) for scope in scopes]
        levels = [_levels(scope, state, now) for scope, state in zip(scopes, states, strict=True)]
        for scope, state, scope_levels in zip(scopes, states, levels, strict=True):
            refused = _check(scope, state, scope_levels, charge, now)
            if refused is not None:
                return Decision(refused, *tightest_windows(scopes, levels))
        taken: list[Levels] = []
        for scope, state, (request_level, token_level) in zip(scopes, states, levels, strict=True):
            limits = scope.limits
            if request_level is not None and limits.rpm is not None:
                request_level -= 1
                state.requests, state.requests_at, state.requests_limit = request_level, now, limits.rpm
            if token_level is not None and limits.tpm is not None:
                token_level -= charge.tokens
                state.tokens, state.tokens_at, state.tokens_limit = token_level, now, limits.tpm
            taken.append((request_level, token_level))
            state.in_flight += 1
            if charge.cost:
                day_spent, month_spent = state.spent_on(charge.day, charge.month)
                state.day, state.day_spent = charge.day, day_spent + charge.cost
                state.month, state.month_spent = charge.month, month_spent + charge.cost
        return Decision(None, *tightest_windows(scopes, taken))

    def settle(self, scopes: Sequence[Scope], charge: Charge, tokens_delta: int, cost_delta: float, now: float) -> None:
        for scope in scopes:
            state = self._states.get(scope.id)
            if state is None:  # forgotten while idle: nothing in flight to end
                continue
            state.in_flight = max(0, state.in_flight - 1)
            tpm = scope.limits.tpm
            if tokens_delta and tpm is not None:
                level = refilled(state.tokens, state.tokens_at, now, tpm, state.tokens_limit)
                state.tokens, state.tokens_at, state.tokens_limit = min(tpm, level - tokens_delta), now, tpm
            if cost_delta:
                if state.day == charge.day:
                    state.day_spent = max(0.0, state.day_spent + cost_delta)
                if state.month == charge.month:
                    state.month_spent = max(0.0, state.month_spent + cost_delta)

    async def close(self) -> None:
        return None

    def _state(self, scope_id: str) -> _ScopeState:
        state = self._states.get(scope_id)
        if state is None:
            if len(self._states) >= self._max_scopes:
                self._forget_idle()
            state = self._states[scope_id] = _ScopeState()
        return state

    def _forget_idle(self) -> None:
        """Room for a new scope: the oldest without a call in flight goes (dicts keep insertion order)."""
        for scope_id, state in self._states.items():
            if state.in_flight == 0:
                del self._states[scope_id]
                return


def over_budget(spent: float, cost: float, budget: float) -> bool:
    """A call may not start once the budget is spent, nor when its estimate would take it past the budget."""
    return spent >= budget or spent + cost > budget


def _levels(scope: Scope, state: _ScopeState, now: float) -> Levels:
    limits = scope.limits
    request_level = token_level = None
    if limits.rpm is not None:
        request_level = refilled(state.requests, state.requests_at, now, limits.rpm, state.requests_limit)
    if limits.tpm is not None:
        token_level = refilled(state.tokens, state.tokens_at, now, limits.tpm, state.tokens_limit)
    return request_level, token_level


def _check(scope: Scope, state: _ScopeState, levels: Levels, charge: Charge, now: float) -> Refusal | None:
    """The first of the scope's limits the charge would break, in the order the Redis script checks them."""
    limits, (request_level, token_level) = scope.limits, levels
    if limits.rpm is not None and request_level is not None and (limits.rpm <= 0 or request_level < 1):
        return refusal(scope, "rpm", request_level, charge, now)
    if limits.tpm is not None and token_level is not None:
        wanted = min(charge.tokens, limits.tpm)
        if limits.tpm <= 0 or token_level < wanted or token_level <= 0:
            return refusal(scope, "tpm", token_level, charge, now)
    if limits.concurrency is not None and state.in_flight >= limits.concurrency:
        return refusal(scope, "concurrency", 0, charge, now)
    day_spent, month_spent = state.spent_on(charge.day, charge.month)
    cost = charge.cost or 0.0
    if limits.daily_budget is not None and over_budget(day_spent, cost, limits.daily_budget):
        return refusal(scope, "daily_budget", 0, charge, now)
    if limits.monthly_budget is not None and over_budget(month_spent, cost, limits.monthly_budget):
        return refusal(scope, "monthly_budget", 0, charge, now)
    return None
