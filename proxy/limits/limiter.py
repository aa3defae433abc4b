"""What the proxy asks of its limits: admit a call (or refuse it, and why), settle it when it ends, and its headers.

A call is limited by its proxy key's limits (the key's own over ``limits.keys``)
and its tenant's (``limits.tenants[T]`` over ``limits.tenant``); it passes only
when every limit of both allows it, and then it is charged in both. Up front a
call is charged one request, its input tokens as estimated from the request,
and, for budgets, the USD price of that input plus its output bound (the
request's max tokens, else ``unbounded_output_tokens``). When it ends, however
it ends, the charge is corrected to the usage it really had and its place in
flight is freed. A model with no known price is not charged: budgets cannot
stop it, and its span says so.

With a shared store (Redis), a store that fails decides calls by
``on_store_error`` (allow or deny) for ``store_retry_interval`` before it is
tried again; the outage is logged once when it starts and once when it ends.
"""

from __future__ import annotations

import itertools
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

from collector import semconv
from collector.keys import Limits
from collector.telemetry import Telemetry
from proxy.auth import Caller
from proxy.generated_metrics import ProxySelfMetrics
from proxy.limits import attributes as names
from proxy.limits.buckets import day_of, month_of
from proxy.limits.memory import MemoryStore
from proxy.limits.settings import LimitsSettings
from proxy.limits.store import Charge, Decision, LimitStore, Refusal, Scope, Window
from proxy.record import CallRecord, Usage
from proxy.tokens import prompt_tokens

Clock = Callable[[], float]  # seconds since the epoch (budgets run over UTC days)
# USD a call's usage costs (provider, model, usage), or None when the price is unknown.
Pricer = Callable[[str, str, Usage], float | None]
RATE_LIMIT_CODE = "rate_limit_exceeded"
QUOTA_CODE = "insufficient_quota"
STORE_ERROR_RETRY_AFTER = 1.0


@dataclass
class Admission:
    """A call let through: what it was charged, and where, to settle when it ends."""

    scopes: tuple[Scope, ...]
    charge: Charge
    decision: Decision
    settled: bool = False


class LimitExceeded(Exception):
    """A call refused over a limit (or by ``on_store_error: deny``); ``decision`` gives its headers."""

    def __init__(
        self, refusal: Refusal | None, decision: Decision, message: str, code: str, retry_after: float
    ) -> None:
        super().__init__(message)
        self.refusal = refusal
        self.decision = decision
        self.code = code
        self.retry_after = retry_after


class Limiter:
    def __init__(
        self,
        settings: LimitsSettings,
        telemetry: Telemetry,
        logger: logging.Logger,
        price: Pricer | None = None,
        clock: Clock = time.time,
        store: LimitStore | None = None,
    ) -> None:
        self._settings = settings
        self._price = price
        self._clock = clock
        self._logger = logger
        metrics = ProxySelfMetrics(telemetry)
        self._refusals = metrics.proxy_limit_refusals
        self._store_failures = metrics.proxy_limit_store_failures
        lost = metrics.proxy_limit_settlements_lost.bind()
        self._store = store or _store_for(settings, lambda: lost.add(1))
        self._failed_until: float | None = None  # monotonic; set while the store is failing
        self._leases = itertools.count()
        self._lease_prefix = os.urandom(6).hex()  # leases of replicas sharing a store never collide
        self._scopes: dict[tuple[str | None, Limits, str | None], tuple[Scope, ...]] = {}
        # Whether any limit can apply at all: a proxy with none pays nothing per call.
        self.active = settings.keys.any or settings.tenant.any or bool(settings.tenants)
        if settings.shared:
            logger.info(
                "limits are shared through %s (on_store_error: %s)", settings.store_shown(), settings.on_store_error
            )

    def scopes(self, caller: Caller) -> tuple[Scope, ...]:
        """The key's and the tenant's scopes that have limits (worked out once per key, limits and tenant)."""
        known = (caller.key_id, caller.key_limits, caller.tenant)
        scopes = self._scopes.get(known)
        if scopes is None:
            if len(self._scopes) >= self._settings.max_tracked_scopes:
                self._scopes.clear()
            scopes = self._scopes[known] = self._scopes_of(caller)
        return scopes

    def _scopes_of(self, caller: Caller) -> tuple[Scope, ...]:
        scopes: list[Scope] = []
        if caller.key_id is not None:
            limits = caller.key_limits.over(self._settings.keys)
            if limits.any:
                scopes.append(Scope("key", caller.key_id, limits))
        if caller.tenant is not None:
            tenant = self._settings.tenants.get(caller.tenant)
            limits = tenant.over(self._settings.tenant) if tenant is not None else self._settings.tenant
            if limits.any:
                scopes.append(Scope("tenant", caller.tenant, limits))
        return tuple(scopes)

    async def admit(self, caller: Caller, record: CallRecord) -> Admission | None:
        """Charge the call up front, or raise LimitExceeded; None when no limit applies to it."""
        if not (self.active or caller.key_limits.any):
            return None
        scopes = self.scopes(caller)
        if not scopes:
            return None
        now = self._clock()
        charge = self._charge(scopes, record, now)
        if self._failed_until is not None and time.monotonic() < self._failed_until:
            return self._without_store(scopes, charge, record)
        try:
            decision = await self._store.take(scopes, charge, now)
        except Exception as exc:  # any failure of the store is an outage, decided by on_store_error
            self._store_failed(exc)
            return self._without_store(scopes, charge, record)
        self._store_recovered()
        record.set(names.LIMITS_SCOPES, [scope.id for scope in scopes])
        record.set(names.LIMITS_ESTIMATED_TOKENS, charge.tokens)
        record.set(names.LIMITS_ESTIMATED_COST, charge.cost)
        if decision.refusal is not None:
            self._refused(decision.refusal, decision, record)
        return Admission(scopes, charge, decision)

    def settle(self, admission: Admission | None, record: CallRecord, provider: str, model: str | None) -> None:
        """Correct the call's charge to its real usage and free its place in flight (once; never raises)."""
        if admission is None or admission.settled:
            return
        admission.settled = True
        usage = record.usage
        used = (usage.input_tokens or 0) + (usage.output_tokens or 0) if usage.known else 0
        cost_delta = 0.0
        if admission.charge.cost is not None:
            cost = self._price(provider, model, usage) if self._price and model and usage.known else 0.0
            if cost is not None:
                cost_delta = cost - admission.charge.cost
        tokens_delta = used - admission.charge.tokens
        try:
            self._store.settle(admission.scopes, admission.charge, tokens_delta, cost_delta, self._clock())
        except Exception:  # the call is over; its charge stays as estimated
            self._logger.debug("could not settle a call's limits", exc_info=True)

    async def close(self) -> None:
        await self._store.close()

    def _charge(self, scopes: tuple[Scope, ...], record: CallRecord, now: float) -> Charge:
        needs_tokens = any(s.limits.tpm is not None or _has_budget(s.limits) for s in scopes)
        tokens = prompt_tokens(record.prompt_texts, record.prompt_chat_messages) if needs_tokens else 0
        cost: float | None = None
        if self._price is not None and record.request_model and any(_has_budget(s.limits) for s in scopes):
            bound = record.attributes.get(semconv.REQUEST_MAX_TOKENS)
            # A client's bound below 0 bounds nothing: it must not make the estimate, or a budget's spend, negative.
            output = max(0, bound) if isinstance(bound, int) else self._settings.unbounded_output_tokens
            cost = self._price(record.provider, record.request_model, Usage(tokens, output))
            if cost is None:
                record.set(names.LIMITS_UNPRICED, True)
            else:
                cost = max(0.0, cost)
        lease = f"{self._lease_prefix}-{next(self._leases)}"
        return Charge(tokens, cost, lease, day_of(now), month_of(now))

    def _refused(self, refusal: Refusal, decision: Decision, record: CallRecord) -> None:
        self._refusals.add(1, limit=refusal.limit, scope=refusal.scope.kind)
        record.set(names.LIMITS_REFUSED, refusal.limit)
        record.set(names.LIMITS_REFUSED_SCOPE, refusal.scope.id)
        budget = refusal.limit in ("daily_budget", "monthly_budget")
        what = {"rpm": "requests per minute", "tpm": "tokens per minute", "concurrency": "calls in flight"}
        if budget:
            period = "day (UTC)" if refusal.limit == "daily_budget" else "month (UTC)"
            message = f"the {refusal.scope.kind}'s USD budget for this {period} is spent; see your proxy's limits"
        else:
            message = f"the {refusal.scope.kind}'s limit on {what[refusal.limit]} is reached; retry after the delay"
        code = QUOTA_CODE if budget else RATE_LIMIT_CODE
        raise LimitExceeded(refusal, decision, message, code, refusal.retry_after)

    def _without_store(self, scopes: tuple[Scope, ...], charge: Charge, record: CallRecord) -> Admission | None:
        decision = self._settings.on_store_error
        self._store_failures.add(1, decision=decision)
        record.set(names.LIMITS_STORE_ERROR, decision)
        if decision == "allow":
            return None  # nothing was taken, so nothing is settled
        raise LimitExceeded(
            None,
            Decision(None),
            "the proxy cannot check its limits right now (its limits store is unreachable)",
            RATE_LIMIT_CODE,
            STORE_ERROR_RETRY_AFTER,
        )

    def _store_failed(self, exc: Exception) -> None:
        if self._failed_until is None:
            # The exception's type only: a message or traceback could quote the store's URL.
            self._logger.error(
                "the limits store %s failed (%s): calls are %s until it answers again",
                self._settings.store_shown(),
                type(exc).__name__,
                "allowed" if self._settings.on_store_error == "allow" else "refused with 429",
            )
        self._failed_until = time.monotonic() + self._settings.store_retry_interval

    def _store_recovered(self) -> None:
        if self._failed_until is not None:
            self._failed_until = None
            self._logger.warning("the limits store %s answers again: limits apply", self._settings.store_shown())


def _has_budget(limits: Limits) -> bool:
    return limits.daily_budget is not None or limits.monthly_budget is not None


def _store_for(settings: LimitsSettings, settlement_lost: Callable[[], None]) -> LimitStore:
    if not settings.shared:
        return MemoryStore(settings.max_tracked_scopes)
    from proxy.limits.redis_store import RedisStore  # only a proxy with a shared store loads redis

    return RedisStore(settings.store.reveal(), settings.store_timeout, settings.concurrency_lease, settlement_lost)


def rate_limit_headers(decision: Decision) -> list[tuple[bytes, bytes]]:
    """OpenAI's x-ratelimit-* headers for the tightest request and token windows (none when not limited)."""
    headers: list[tuple[bytes, bytes]] = []
    for kind, window in (("requests", decision.requests), ("tokens", decision.tokens)):
        if window is not None:
            headers.extend(_window_headers(kind, window))
    return headers


def _window_headers(kind: str, window: Window) -> list[tuple[bytes, bytes]]:
    return [
        (f"x-ratelimit-limit-{kind}".encode(), str(window.limit).encode()),
        (f"x-ratelimit-remaining-{kind}".encode(), str(window.remaining).encode()),
        (f"x-ratelimit-reset-{kind}".encode(), duration_text(window.reset).encode()),
    ]


def duration_text(seconds: float) -> str:
    """A reset delay as OpenAI writes it: ``1s``, ``6m0s``, ``20ms``."""
    if seconds < 1:
        return f"{max(0, round(seconds * 1000))}ms"
    if seconds >= 60:
        minutes, rest = divmod(round(seconds), 60)  # whole seconds first: 119.7 s is 2m0s, not 1m60s
        return f"{minutes}m{rest}s"
    return f"{seconds:.3g}s"
