"""The limiter's semantics, the same with both stores: token buckets, calls in flight, budgets, settling.

Time is a ManualClock: buckets refill only when a test moves it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

import pytest

from collector.config.types import Secret
from collector.keys import Limits
from collector.semconv import LATEST
from collector.telemetry import Telemetry
from proxy.auth import Caller
from proxy.limits import attributes as names
from proxy.limits.limiter import Admission, Limiter, LimitExceeded, rate_limit_headers
from proxy.limits.settings import LimitsSettings
from proxy.record import CallRecord, Usage
from proxy.semconv import dialect_for
from tests.conftest import ManualClock
from tests.proxy.limits.redis_server import RedisServer

# 2026-12-06 12:00:00 UTC
NOON = 1_796_558_400.0
DAY = 86_400.0
MODEL = "gpt-4o-mini"
# A price easy to count with: 1 USD per 1000 tokens, in or out.
USD_PER_TOKEN = 0.001


def _price(provider: str, model: str, usage: Usage) -> float | None:
    if model != MODEL:
        return None
    return ((usage.input_tokens or 0) + (usage.output_tokens or 0)) * USD_PER_TOKEN


def _record(prompt: str = "one two three", max_tokens: int | None = None, model: str = MODEL) -> CallRecord:
    record = CallRecord("chat", "openai", dialect_for(LATEST), False, request_model=model)
    record.prompt_texts.append(prompt)
    if max_tokens is not None:
        record.set("gen_ai.request.max_tokens", max_tokens)
    return record


def _caller(limits: Limits, tenant: str = "acme", key_id: str = "key_000000000001") -> Caller:
    return Caller(True, tenant, "hash", key_id, limits)


def _used(record: CallRecord, input_tokens: int, output_tokens: int) -> CallRecord:
    record.usage = Usage(input_tokens, output_tokens)
    return record


class Harness:
    """A limiter on the store under test, with a manual clock, driven from synchronous tests."""

    def __init__(self, settings: LimitsSettings, store_url: str | None) -> None:
        if store_url is not None:
            settings = replace(settings, store=Secret(store_url))
        self.clock = ManualClock(NOON)
        self.telemetry = Telemetry()
        self.loop = asyncio.new_event_loop()
        self.limiter = Limiter(settings, self.telemetry, logging.getLogger("test.limits"), _price, self.clock)

    def run(self, work: Awaitable[Any]) -> Any:
        return self.loop.run_until_complete(work)

    def admit(self, caller: Caller, record: CallRecord | None = None) -> Admission | None:
        admission: Admission | None = self.run(self.limiter.admit(caller, record or _record()))
        return admission

    def refused(self, caller: Caller, record: CallRecord | None = None) -> LimitExceeded:
        with pytest.raises(LimitExceeded) as refused:
            self.admit(caller, record)
        return refused.value

    def settle(self, admission: Admission | None, record: CallRecord) -> None:
        async def settle() -> None:  # on the loop, as the proxy settles
            self.limiter.settle(admission, record, "openai", MODEL)

        self.run(settle())

    def drain(self) -> None:
        """Let background settlements finish (the Redis store sends them in tasks of its own)."""
        pending = [task for task in asyncio.all_tasks(self.loop) if not task.done()]
        if pending:
            self.run(asyncio.gather(*pending))

    def close(self) -> None:
        self.run(self.limiter.close())
        self.loop.close()


@pytest.fixture(params=["memory", "redis"])
def make(request: pytest.FixtureRequest) -> Any:
    made: list[Harness] = []

    def build(settings: LimitsSettings | None = None) -> Harness:
        url = None
        if request.param == "redis":
            server: RedisServer = request.getfixturevalue("redis")
            url = server.url
        harness = Harness(settings or LimitsSettings(), url)
        made.append(harness)
        return harness

    yield build
    for harness in made:
        harness.close()


Make = Callable[..., Harness]


def test_requests_per_minute_is_a_token_bucket(make: Make) -> None:
    limits = make()
    caller = _caller(Limits(rpm=2))
    first = limits.admit(caller)
    limits.admit(caller)
    refused = limits.refused(caller)
    assert (refused.refusal and refused.refusal.limit, refused.code) == ("rpm", "rate_limit_exceeded")
    assert refused.retry_after == pytest.approx(30.0)  # one request comes back every 60/2 s
    limits.clock.now += 29.0
    limits.refused(caller)
    limits.clock.now += 1.0
    third = limits.admit(caller)
    assert first is not None and third is not None
    assert rate_limit_headers(third.decision)[:2] == [
        (b"x-ratelimit-limit-requests", b"2"),
        (b"x-ratelimit-remaining-requests", b"0"),
    ]
    limits.clock.now += 600.0  # a long pause never fills a bucket past its limit
    limits.admit(caller)
    limits.admit(caller)
    limits.refused(caller)


def test_a_hundred_concurrent_calls_against_ten_per_minute_let_exactly_ten_through(make: Make) -> None:
    limits = make()
    caller = _caller(Limits(rpm=10))

    async def one() -> bool:
        try:
            await limits.limiter.admit(caller, _record())
            return True
        except LimitExceeded:
            return False

    async def hundred() -> list[bool]:
        return await asyncio.gather(*(one() for _ in range(100)))

    assert sum(limits.run(hundred())) == 10


def test_tokens_per_minute_are_charged_up_front_and_settled_with_the_real_usage(make: Make) -> None:
    limits = make()
    caller = _caller(Limits(tpm=100))
    record = _record("word " * 20)
    admission = limits.admit(caller, record)
    assert admission is not None
    estimate = admission.charge.tokens
    assert estimate > 0 and record.attributes[names.LIMITS_ESTIMATED_TOKENS] == estimate
    assert admission.decision.tokens is not None and admission.decision.tokens.remaining == 100 - estimate
    # The reply used 70 tokens in all: the bucket keeps 30, not 100 - estimate.
    limits.settle(admission, _used(record, estimate, 70 - estimate))
    limits.drain()
    small = _record("hi")
    after = limits.admit(caller, small)
    assert after is not None and after.decision.tokens is not None
    assert after.decision.tokens.remaining == 30 - after.charge.tokens
    # A call that used more than the bucket held leaves it in debt: refused until refill repays it.
    limits.settle(after, _used(small, after.charge.tokens, 100))
    limits.drain()
    refused = limits.refused(caller, _record("hi"))
    assert refused.refusal is not None and refused.refusal.limit == "tpm"
    limits.clock.now += refused.retry_after
    assert limits.admit(caller, _record("hi")) is not None


def test_a_failed_call_gives_back_its_estimate(make: Make) -> None:
    limits = make()
    caller = _caller(Limits(tpm=50))
    record = _record("word " * 20)
    admission = limits.admit(caller, record)
    assert admission is not None
    limits.settle(admission, record)  # no usage came: an upstream error, or the client left before a reply
    limits.drain()
    again = limits.admit(caller, _record(""))
    assert again is not None and again.decision.tokens is not None
    assert again.decision.tokens.remaining == 50 - again.charge.tokens


def test_calls_in_flight_are_counted_until_they_are_settled(make: Make) -> None:
    limits = make()
    caller = _caller(Limits(concurrency=2))
    first, second = limits.admit(caller), limits.admit(caller)
    refused = limits.refused(caller)
    assert refused.refusal is not None and refused.refusal.limit == "concurrency"
    limits.settle(first, _record())
    limits.drain()
    third = limits.admit(caller)
    limits.refused(caller)
    limits.settle(second, _record())
    limits.settle(third, _record())
    limits.drain()
    limits.admit(caller)
    limits.admit(caller)


def test_budgets_charge_the_estimate_with_its_output_bound_and_correct_it(make: Make) -> None:
    limits = make(LimitsSettings(unbounded_output_tokens=500))
    caller = _caller(Limits(daily_budget=1.0))  # 1000 tokens' worth
    bounded = _record("hello", max_tokens=100)
    admission = limits.admit(caller, bounded)
    assert admission is not None and admission.charge.cost is not None
    assert admission.charge.cost == pytest.approx((admission.charge.tokens + 100) * USD_PER_TOKEN)
    limits.settle(admission, _used(bounded, 10, 20))  # really 0.03 USD
    limits.drain()
    unbounded = _record("hello")  # no max tokens: charged for unbounded_output_tokens
    second = limits.admit(caller, unbounded)
    assert second is not None and second.charge.cost == pytest.approx((second.charge.tokens + 500) * USD_PER_TOKEN)
    third = limits.admit(caller, _record("hello", max_tokens=300))
    # 0.03 spent and ~0.5 + ~0.3 charged: no room for another unbounded estimate
    refused = limits.refused(caller, _record("hello"))
    assert (refused.refusal and refused.refusal.limit, refused.code) == ("daily_budget", "insufficient_quota")
    assert refused.retry_after == pytest.approx(DAY / 2)  # until the next UTC midnight
    limits.settle(second, _used(unbounded, 10, 10))
    limits.settle(third, _used(unbounded, 10, 10))
    limits.drain()
    assert limits.admit(caller, _record("hello")) is not None  # corrected: 0.07 spent, room again
    limits.refused(caller, _record("hello", max_tokens=900))
    limits.clock.now += DAY / 2  # the next UTC day starts with nothing spent
    assert limits.admit(caller, _record("hello", max_tokens=900)) is not None


def test_a_spent_budget_refuses_until_the_next_utc_month(make: Make) -> None:
    limits = make()
    caller = _caller(Limits(monthly_budget=0.05))
    admission = limits.admit(caller, _record("hello", max_tokens=10))
    record = _record("hello", max_tokens=10)
    limits.settle(admission, _used(record, 30, 30))  # 0.06: past the budget by less than one estimate
    limits.drain()
    refused = limits.refused(caller, _record("hi", max_tokens=1))
    assert refused.refusal is not None and refused.refusal.limit == "monthly_budget"
    limits.clock.now += refused.retry_after
    assert limits.admit(caller, _record("hi", max_tokens=1)) is not None


def test_an_unpriced_model_is_not_charged_and_says_so(make: Make) -> None:
    limits = make()
    record = _record(model="my-local-model")
    admission = limits.admit(_caller(Limits(daily_budget=0.0001)), record)
    assert admission is not None and admission.charge.cost is None
    assert record.attributes[names.LIMITS_UNPRICED] is True


def test_a_call_is_charged_to_its_key_and_its_tenant_and_refused_by_either(make: Make) -> None:
    limits = make(LimitsSettings(tenants={"acme": Limits(rpm=3)}, keys=Limits(rpm=2)))
    first_key = _caller(Limits(), key_id="key_00000000000a")
    second_key = _caller(Limits(), key_id="key_00000000000b")
    record = _record()
    limits.admit(first_key, record)
    assert record.attributes[names.LIMITS_SCOPES] == ("key:key_00000000000a", "tenant:acme")
    limits.admit(first_key)
    refused = limits.refused(first_key)  # the key's default limit
    assert refused.refusal is not None and refused.refusal.scope.id == "key:key_00000000000a"
    limits.admit(second_key)
    refused = limits.refused(second_key)  # the tenant's, shared by its keys
    assert refused.refusal is not None and refused.refusal.scope.id == "tenant:acme"
    # A refused call took nothing: the second key still has one request of its own.
    limits.clock.now += 20.0  # the tenant earns one back
    limits.admit(second_key)


def test_a_key_of_its_own_overrides_the_default_and_an_update_applies_at_once(make: Make) -> None:
    limits = make(LimitsSettings(keys=Limits(rpm=1)))
    caller = _caller(Limits(rpm=3))
    for _ in range(3):
        limits.admit(caller)
    limits.refused(caller)
    assert limits.admit(replace(caller, key_limits=Limits(rpm=1000))) is not None


def test_no_limits_means_no_work(make: Make) -> None:
    limits = make()
    assert limits.limiter.active is False
    assert limits.admit(_caller(Limits())) is None
    assert limits.admit(Caller(False, None, "hash")) is None
