"""Limits through the proxy, with the official SDKs as clients: refusals each SDK reads as its rate-limit error.

The proxy's limits clock is a ManualClock: buckets never refill behind a test's back.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest
from google import genai
from google.genai import errors, types

from collector import semconv
from collector.config.types import Secret
from collector.keys import KeyStore, Limits
from collector.receivers.genai_proxy import call_price
from processors.genai_cost.prices import PriceBook
from processors.genai_cost.prices import Usage as PricedUsage
from proxy.config import AuthSettings, ProxyConfig, UpstreamConfig
from proxy.limits import attributes as names
from proxy.limits.settings import LimitsSettings
from tests.conftest import ManualClock
from tests.proxy.mock_upstream import SCENARIO_HEADER, MockUpstream, serve
from tests.proxy.support import RunningProxy, attributes, running_proxy, upstreams_for

OPENAI_KEY, ANTHROPIC_KEY, GEMINI_KEY = "sk-upstream-openai", "sk-ant-upstream", "AIzaSy-upstream-gemini"
MODEL = "gpt-4o-mini"
NOW = 1_796_558_400.0  # 2026-12-06 12:00 UTC
MESSAGES: list[Any] = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture(scope="module")
def mock() -> Iterator[MockUpstream]:
    upstream = MockUpstream(
        openai_key=OPENAI_KEY, anthropic_key=ANTHROPIC_KEY, gemini_key=GEMINI_KEY, unique_ids=True, stall_seconds=20
    )
    with serve(upstream) as url:
        upstream.url = url  # type: ignore[attr-defined]
        yield upstream


class Limited:
    """A managed proxy in front of the mock, its limits on a manual clock; keys made with limits."""

    def __init__(self, mock: MockUpstream, tmp_path: Path, settings: LimitsSettings) -> None:
        self.keys = KeyStore(tmp_path / "keys.json")
        url: str = mock.url  # type: ignore[attr-defined]
        gemini = UpstreamConfig(name="gemini", kind="gemini", base_url=url, api_key=Secret(GEMINI_KEY))
        self.config = ProxyConfig(
            upstreams=(*upstreams_for(url, OPENAI_KEY, ANTHROPIC_KEY), gemini),
            auth=AuthSettings(mode="managed", keys_file=str(self.keys.path)),
            limits=settings,
        )
        self.clock = ManualClock(NOW)

    def key(self, **limits: Any) -> str:
        return self.keys.create("acme", limits=Limits(**limits))[1]


@pytest.fixture
def limited(mock: MockUpstream, tmp_path: Path) -> Iterator[Any]:
    mock.reset()

    def start(settings: LimitsSettings | None = None) -> tuple[Limited, RunningProxy]:
        made = Limited(mock, tmp_path, settings or LimitsSettings())
        proxy = stack.enter_context(running_proxy(made.config, price=call_price(), clock=made.clock))
        return made, proxy

    with ExitStack() as stack:
        yield start


def _openai(proxy: RunningProxy, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{proxy.url}/v1", api_key=key, max_retries=0)


def _chat(client: openai.OpenAI, **extra: Any) -> Any:
    return client.chat.completions.create(model=MODEL, messages=MESSAGES, **extra)


def test_a_hundred_concurrent_calls_against_ten_per_minute_let_exactly_ten_through(limited: Any) -> None:
    made, proxy = limited()
    key = made.key(rpm=10)

    async def calls() -> list[Any]:
        client = openai.AsyncOpenAI(base_url=f"{proxy.url}/v1", api_key=key, max_retries=0)
        async with client:
            return await asyncio.gather(
                *(client.chat.completions.create(model=MODEL, messages=MESSAGES) for _ in range(100)),
                return_exceptions=True,
            )

    results = asyncio.run(calls())
    refused = [r for r in results if isinstance(r, openai.RateLimitError)]
    assert len([r for r in results if not isinstance(r, Exception)]) == 10
    assert len(refused) == 90
    assert {(r.status_code, r.code) for r in refused} == {(429, "rate_limit_exceeded")}
    assert refused[0].response.headers["retry-after"] == "6"  # one request back every 6 s
    assert refused[0].response.headers["x-ratelimit-remaining-requests"] == "0"
    spans = proxy.sink.wait(100)
    assert sum(attributes(s).get(names.LIMITS_REFUSED) == "rpm" for s in spans) == 90
    assert sum(attributes(s).get(semconv.ERROR_TYPE) == "rate_limit_exceeded" for s in spans) == 90
    assert 'genai_proxy_limit_refusals_total{limit="rpm",scope="key"} 90' in proxy.telemetry.render()


def test_each_sdk_raises_its_own_rate_limit_error(limited: Any) -> None:
    made, proxy = limited()
    openai_client = _openai(proxy, made.key(rpm=1))
    _chat(openai_client)
    with pytest.raises(openai.RateLimitError) as refused_openai:
        _chat(openai_client)
    assert refused_openai.value.code == "rate_limit_exceeded"
    assert refused_openai.value.type == "requests"

    claude = anthropic.Anthropic(base_url=proxy.url, api_key=made.key(rpm=1), max_retries=0)
    claude.messages.create(model="claude-sonnet-4-5", max_tokens=64, messages=MESSAGES)
    with pytest.raises(anthropic.RateLimitError) as refused_anthropic:
        claude.messages.create(model="claude-sonnet-4-5", max_tokens=64, messages=MESSAGES)
    assert refused_anthropic.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]

    options = types.HttpOptions(base_url=proxy.url, timeout=10_000, retry_options=types.HttpRetryOptions(attempts=1))
    gemini = genai.Client(api_key=made.key(rpm=1), http_options=options)
    gemini.models.generate_content(model="gemini-2.5-flash", contents="What is the capital of France?")
    with pytest.raises(errors.ClientError) as refused_gemini:
        gemini.models.generate_content(model="gemini-2.5-flash", contents="What is the capital of France?")
    assert (refused_gemini.value.code, refused_gemini.value.status) == (429, "RESOURCE_EXHAUSTED")
    assert refused_gemini.value.details["error"]["details"][0]["retryDelay"] == "60s"


def test_a_spent_budget_is_openais_insufficient_quota_and_not_retried(limited: Any) -> None:
    made, proxy = limited()
    key = made.key(daily_budget=0)
    client = openai.OpenAI(base_url=f"{proxy.url}/v1", api_key=key, max_retries=2)
    with pytest.raises(openai.RateLimitError) as refused:
        _chat(client)
    assert (refused.value.code, refused.value.type) == ("insufficient_quota", "insufficient_quota")
    assert int(refused.value.response.headers["retry-after"]) == 12 * 3600  # until the next UTC midnight
    claude = anthropic.Anthropic(base_url=proxy.url, api_key=key, max_retries=2)
    with pytest.raises(anthropic.RateLimitError):
        claude.messages.create(model="claude-sonnet-4-5", max_tokens=64, messages=MESSAGES)
    # One call each, counted before it was answered: neither SDK retried a spent budget.
    assert 'genai_proxy_limit_refusals_total{limit="daily_budget",scope="key"} 2' in proxy.telemetry.render()


def test_every_answer_carries_the_rate_limit_headers(limited: Any) -> None:
    made, proxy = limited()
    key = made.key(rpm=5, tpm=10_000)
    response = httpx.post(
        f"{proxy.url}/v1/chat/completions",
        json={"model": MODEL, "messages": MESSAGES},
        headers={"authorization": f"Bearer {key}"},
        timeout=10,
    )
    assert response.status_code == 200
    estimate = attributes(proxy.sink.wait(1)[0])[names.LIMITS_ESTIMATED_TOKENS]
    assert isinstance(estimate, int)
    assert response.headers["x-ratelimit-limit-requests"] == "5"
    assert response.headers["x-ratelimit-remaining-requests"] == "4"
    assert response.headers["x-ratelimit-reset-requests"] == "12s"
    assert response.headers["x-ratelimit-limit-tokens"] == "10000"
    assert response.headers["x-ratelimit-remaining-tokens"] == str(10_000 - estimate)
    # An upstream error is an answer too.
    failed = httpx.post(
        f"{proxy.url}/v1/chat/completions",
        json={"model": MODEL, "messages": MESSAGES},
        headers={"authorization": f"Bearer {key}", SCENARIO_HEADER: "error_500"},
        timeout=10,
    )
    assert failed.status_code == 500
    assert failed.headers["x-ratelimit-remaining-requests"] == "3"


@pytest.mark.parametrize("stream", [False, True])
def test_tokens_per_minute_are_settled_with_the_real_usage(limited: Any, stream: bool) -> None:
    made, proxy = limited()
    client = _openai(proxy, made.key(tpm=10_000))
    extra: dict[str, Any] = {"stream": True, "stream_options": {"include_usage": True}} if stream else {}
    first = _chat(client, **extra)
    if stream:
        list(first)
    used = attributes(proxy.sink.wait(1)[0])
    real = used[semconv.USAGE_INPUT_TOKENS] + used[semconv.USAGE_OUTPUT_TOKENS]
    raw = client.chat.completions.with_raw_response.create(model=MODEL, messages=MESSAGES)
    second = attributes(proxy.sink.wait(2)[1])
    remaining = int(raw.headers["x-ratelimit-remaining-tokens"])
    assert remaining == 10_000 - real - second[names.LIMITS_ESTIMATED_TOKENS]


def test_a_call_in_flight_holds_its_place_until_its_stream_ends_however_it_ends(limited: Any) -> None:
    made, proxy = limited()
    key = made.key(concurrency=1)
    client = _openai(proxy, key)
    for _ in _chat(client, stream=True):  # read to its end: the place is free again
        pass
    proxy.sink.wait(1)
    _chat(client)
    proxy.sink.wait(2)
    headers = {"authorization": f"Bearer {key}", SCENARIO_HEADER: "stall"}
    body = {"model": MODEL, "messages": MESSAGES, "stream": True}
    url = f"{proxy.url}/v1/chat/completions"
    with httpx.Client(timeout=30) as raw, raw.stream("POST", url, json=body, headers=headers) as stalled:
        assert stalled.status_code == 200
        pieces = stalled.iter_raw()
        next(pieces)  # the first piece: the stream is under way, and stalls
        with pytest.raises(openai.RateLimitError) as refused:
            _chat(client)
        assert "calls in flight" in refused.value.message
    # The client left mid-stream: once the proxy finished that call (its span), its place is free.
    spans = proxy.sink.wait(4)
    assert sorted(str(attributes(s).get(semconv.ERROR_TYPE)) for s in spans[2:]) == ["cancelled", "rate_limit_exceeded"]
    _chat(client)


def test_a_budget_is_never_exceeded_by_more_than_one_estimate(limited: Any) -> None:
    budget = 0.0005  # USD: some tens of gpt-4o-mini calls
    made, proxy = limited()
    key = made.key(daily_budget=budget)

    async def wave() -> list[Any]:
        client = openai.AsyncOpenAI(base_url=f"{proxy.url}/v1", api_key=key, max_retries=0)
        async with client:
            return await asyncio.gather(
                *(client.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=40) for _ in range(40)),
                return_exceptions=True,
            )

    results = asyncio.run(wave()) + asyncio.run(wave())
    passed = [r for r in results if not isinstance(r, Exception)]
    refused = [r for r in results if isinstance(r, openai.RateLimitError)]
    assert passed and refused and len(passed) + len(refused) == 80
    assert {r.code for r in refused} == {"insufficient_quota"}
    spans = proxy.sink.wait(80)
    book = PriceBook()
    spent = 0.0
    estimates = []
    for span in spans:
        values = attributes(span)
        if names.LIMITS_REFUSED in values:
            continue
        usage = PricedUsage(values[semconv.USAGE_INPUT_TOKENS], values[semconv.USAGE_OUTPUT_TOKENS])
        cost = book.cost("openai", MODEL, usage, span.start_time or 0)
        assert cost is not None
        spent += cost.total
        estimates.append(values[names.LIMITS_ESTIMATED_COST])
    assert spent <= budget + max(estimates)


def test_a_keys_new_limits_apply_to_the_running_proxy_at_once(limited: Any) -> None:
    made, proxy = limited()
    key = made.key(rpm=1)
    client = _openai(proxy, key)
    _chat(client)
    with pytest.raises(openai.RateLimitError):
        _chat(client)
    (entry,) = made.keys.entries()
    made.keys.update_limits(entry.id, Limits(rpm=3))  # as `genai-collector keys update` does, from another process
    _chat(client)
    _chat(client)
    with pytest.raises(openai.RateLimitError):
        _chat(client)
