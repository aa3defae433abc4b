"""The limiter's semantics, the same with both stores: token buckets, calls in flight, budgets, settling.

Time is a ManualClock: buckets refill only when a test moves it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from collector.keys import Limits
from proxy.auth import Caller
from proxy.limits import attributes as names
from proxy.limits.limiter import LimitExceeded, duration_text, rate_limit_headers
from proxy.limits.settings import LimitsSettings
from tests.proxy.limits.redis_server import RedisServer
from tests.proxy.limits.support import DAY, USD_PER_TOKEN, Harness, caller_with, record_of, used


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
    caller = caller_with(Limits(rpm=2))
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
    caller = caller_with(Limits(rpm=10))

    async def one() -> bool:
        try:
            await limits.limiter.admit(caller, record_of())
            return True
        except LimitExceeded:
            return False

    async def hundred() -> list[bool]:
        return await asyncio.gather(*(one() for _ in range(100)))

    assert sum(limits.run(hundred())) == 10


def test_tokens_per_minute_are_charged_up_front_and_settled_with_the_real_usage(make: Make) -> None:
    limits = make()
    caller = caller_with(Limits(tpm=100))
    record = record_of("word " * 20)
    admission = limits.admit(caller, record)
    assert admission is not None
    estimate = admission.charge.tokens
    assert estimate > 0 and record.attributes[names.LIMITS_ESTIMATED_TOKENS] == estimate
    assert admission.decision.tokens is not None and admission.decision.tokens.remaining == 100 - estimate
    # The reply used 70 tokens in all: the bucket keeps 30, not 100 - estimate.
    limits.settle(admission, used(record, estimate, 70 - estimate))
    limits.drain()
    small = record_of("hi")
    after = limits.admit(caller, small)
    assert after is not None and after.decision.tokens is not None
    assert after.decision.tokens.remaining == 30 - after.charge.tokens
    # A call that used more than the bucket held leaves it in debt: refused until refill repays it.
    limits.settle(after, used(small, after.charge.tokens, 100))
    limits.drain()
    refused = limits.refused(caller, record_of("hi"))
    assert refused.refusal is not None and refused.refusal.limit == "tpm"
    limits.clock.now += refused.retry_after
    assert limits.admit(caller, record_of("hi")) is not None


def test_a_failed_call_gives_back_its_estimate(make: Make) -> None:
    limits = make()
    caller = caller_with(Limits(tpm=50))
    record = record_of("word " * 20)
    admission = limits.admit(caller, record)
    assert admission is not None
    limits.settle(admission, record)  # no usage came: an upstream error, or the client left before a reply
    limits.drain()
    again = limits.admit(caller, record_of(""))
    assert again is not None and again.decision.tokens is not None
    assert again.decision.tokens.remaining == 50 - again.charge.tokens


def test_calls_in_flight_are_counted_until_they_are_settled(make: Make) -> None:
    limits = make()
    caller = caller_with(Limits(concurrency=2))
    first, second = limits.admit(caller), limits.admit(caller)
    refused = limits.refused(caller)
    assert refused.refusal is not None and refused.refusal.limit == "concurrency"
    limits.settle(first, record_of())
    limits.drain()
    third = limits.admit(caller)
    limits.refused(caller)
    limits.settle(second, record_of())
    limits.settle(third, record_of())
    limits.drain()
    limits.admit(caller)
    limits.admit(caller)


def test_budgets_charge_the_estimate_with_its_output_bound_and_correct_it(make: Make) -> None:
    limits = make(LimitsSettings(unbounded_output_tokens=500))
    caller = caller_with(Limits(daily_budget=1.0))  # 1000 tokens' worth
    bounded = record_of("hello", max_tokens=100)
    admission = limits.admit(caller, bounded)
    assert admission is not None and admission.charge.cost is not None
    assert admission.charge.cost == pytest.approx((admission.charge.tokens + 100) * USD_PER_TOKEN)
    limits.settle(admission, used(bounded, 10, 20))  # really 0.03 USD
    limits.drain()
    unbounded = record_of("hello")  # no max tokens: charged for unbounded_output_tokens
    second = limits.admit(caller, unbounded)
    assert second is not None and second.charge.cost == pytest.approx((second.charge.tokens + 500) * USD_PER_TOKEN)
    third = limits.admit(caller, record_of("hello", max_tokens=300))
    # 0.03 spent and ~0.5 + ~0.3 charged: no room for another unbounded estimate
    refused = limits.refused(caller, record_of("hello"))
    assert (refused.refusal and refused.refusal.limit, refused.code) == ("daily_budget", "insufficient_quota")
    assert refused.retry_after == pytest.approx(DAY / 2)  # until the next UTC midnight
    limits.settle(second, used(unbounded, 10, 10))
    limits.settle(third, used(unbounded, 10, 10))
    limits.drain()
    assert limits.admit(caller, record_of("hello")) is not None  # corrected: 0.07 spent, room again
    limits.refused(caller, record_of("hello", max_tokens=900))
    limits.clock.now += DAY / 2  # the next UTC day starts with nothing spent
    assert limits.admit(caller, record_of("hello", max_tokens=900)) is not None


def test_a_negative_output_bound_charges_no_less_than_the_input(make: Make) -> None:
    limits = make(LimitsSettings(unbounded_output_tokens=500))
    caller = caller_with(Limits(daily_budget=1.0))
    admission = limits.admit(caller, record_of("hello", max_tokens=-1_000_000_000))
    assert admission is not None and admission.charge.cost == pytest.approx(admission.charge.tokens * USD_PER_TOKEN)


def test_reset_delays_are_written_as_openai_writes_them() -> None:
    assert [duration_text(s) for s in (0.02, 1, 6, 59.4, 60, 119.7, 360)] == [
        "20ms", "1s", "6s", "59.4s", "1m0s", "2m0s", "6m0s",
    ]  # fmt: skip


def test_a_spent_budget_refuses_until_the_next_utc_month(make: Make) -> None:
    limits = make()
    caller = caller_with(Limits(monthly_budget=0.05))
    admission = limits.admit(caller, record_of("hello", max_tokens=10))
    record = record_of("hello", max_tokens=10)
    limits.settle(admission, used(record, 30, 30))  # 0.06: past the budget by less than one estimate
    limits.drain()
    refused = limits.refused(caller, record_of("hi", max_tokens=1))
    assert refused.refusal is not None and refused.refusal.limit == "monthly_budget"
    limits.clock.now += refused.retry_after
    assert limits.admit(caller, record_of("hi", max_tokens=1)) is not None


def test_an_unpriced_model_is_not_charged_and_says_so(make: Make) -> None:
    limits = make()
    record = record_of(model="my-local-model")
    admission = limits.admit(caller_with(Limits(daily_budget=0.0001)), record)
    assert admission is not None and admission.charge.cost is None
    assert record.attributes[names.LIMITS_UNPRICED] is True


def test_a_call_is_charged_to_its_key_and_its_tenant_and_refused_by_either(make: Make) -> None:
    limits = make(LimitsSettings(tenants={"acme": Limits(rpm=3)}, keys=Limits(rpm=2)))
    first_key = caller_with(Limits(), key_id="key_00000000000a")
    second_key = caller_with(Limits(), key_id="key_00000000000b")
    record = record_of()
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
    caller = caller_with(Limits(rpm=3))
    for _ in range(3):
        limits.admit(caller)
    limits.refused(caller)
    assert limits.admit(replace(caller, key_limits=Limits(rpm=1000))) is not None


def test_no_limits_means_no_work(make: Make) -> None:
    limits = make()
    assert limits.limiter.active is False
    assert limits.admit(caller_with(Limits())) is None
    assert limits.admit(Caller(False, None, "hash")) is None


def test_a_refusal_carries_the_windows_as_they_are(make: Make) -> None:
    limits = make(LimitsSettings(tenants={"acme": Limits(rpm=3)}))
    caller = caller_with(Limits(rpm=5, concurrency=1))
    limits.admit(caller)
    refused = limits.refused(caller)
    assert refused.refusal is not None and refused.refusal.limit == "concurrency"
    # Nothing was taken by the refusal: the tenant's 2 left of 3 is the tightest window.
    assert rate_limit_headers(refused.decision) == [
        (b"x-ratelimit-limit-requests", b"3"),
        (b"x-ratelimit-remaining-requests", b"2"),
        (b"x-ratelimit-reset-requests", b"20s"),
    ]
