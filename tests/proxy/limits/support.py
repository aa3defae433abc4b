"""A limiter on a manual clock, driven from synchronous tests, on the store a test names."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from dataclasses import replace
from typing import Any

import pytest

from collector.config.types import Secret
from collector.keys import Limits
from collector.semconv import LATEST
from collector.telemetry import Telemetry
from proxy.auth import Caller
from proxy.limits.limiter import Admission, Limiter, LimitExceeded
from proxy.limits.settings import LimitsSettings
from proxy.record import CallRecord, Usage
from proxy.semconv import dialect_for
from tests.conftest import ManualClock

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


def record_of(prompt: str = "one two three", max_tokens: int | None = None, model: str = MODEL) -> CallRecord:
    record = CallRecord("chat", "openai", dialect_for(LATEST), False, request_model=model)
    record.prompt_texts.append(prompt)
    if max_tokens is not None:
        record.set("gen_ai.request.max_tokens", max_tokens)
    return record


def caller_with(limits: Limits, tenant: str = "acme", key_id: str = "key_000000000001") -> Caller:
    return Caller(True, tenant, "hash", key_id, limits)


def used(record: CallRecord, input_tokens: int, output_tokens: int) -> CallRecord:
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
        admission: Admission | None = self.run(self.limiter.admit(caller, record or record_of()))
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
