"""A failing shared store: on_store_error decides, the outage is counted and logged once, no password shows."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from collector.config.types import Duration, Secret
from collector.keys import Limits
from proxy.limits import attributes as names
from proxy.limits.limiter import LimitExceeded
from proxy.limits.settings import LimitsSettings
from tests.proxy.limits.redis_server import PASSWORD, redis_server
from tests.proxy.limits.support import Harness, caller_with, record_of

STORE_LOGGER = "test.limits"


def _settings(url: str, on_error: str) -> LimitsSettings:
    return LimitsSettings(
        store=Secret(url),
        on_store_error=on_error,  # type: ignore[arg-type]
        store_retry_interval=Duration(0.0),  # every call tries the store again: the test sees the recovery at once
    )


@pytest.mark.parametrize("on_error", ["allow", "deny"])
def test_a_store_stopped_mid_test_follows_on_store_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, on_error: str
) -> None:
    caplog.set_level(logging.INFO, STORE_LOGGER)
    with redis_server(tmp_path) as server:
        limits = Harness(_settings(server.url, on_error), None)
        caller = caller_with(Limits(rpm=100))
        try:
            assert limits.admit(caller) is not None
            server.stop()
            records = [record_of() for _ in range(3)]
            for record in records:
                if on_error == "allow":
                    assert limits.admit(caller, record) is None  # let through, charged nowhere
                else:
                    refused = limits.refused(caller, record)
                    assert (refused.refusal, refused.code) == (None, "rate_limit_exceeded")
                assert record.attributes[names.LIMITS_STORE_ERROR] == on_error
            server.start()
            assert limits.admit(caller) is not None
            assert limits.admit(caller) is not None
            metrics = limits.telemetry.render()
        finally:
            limits.close()
    assert f'genai_proxy_limit_store_failures_total{{decision="{on_error}"}} 3' in metrics
    lines = [r.getMessage() for r in caplog.records if r.name == STORE_LOGGER]
    assert lines[0].startswith("limits are shared through redis://127.0.0.1:")  # at start
    lines = lines[1:]
    assert len(lines) == 2, lines  # once when the outage began, once when it ended
    assert "failed" in lines[0] and "answers again" in lines[1]
    assert f"127.0.0.1:{server.port}" in lines[0]
    assert PASSWORD not in caplog.text


def test_a_wrong_password_is_an_outage_that_never_shows_a_password(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with redis_server(tmp_path) as server:
        wrong = server.url.replace(PASSWORD, "not-the-password-4711")
        limits = Harness(_settings(wrong, "deny"), None)
        try:
            with pytest.raises(LimitExceeded) as refused:
                limits.admit(caller_with(Limits(rpm=1)))
        finally:
            limits.close()
    assert "not-the-password-4711" not in caplog.text
    assert "not-the-password-4711" not in str(refused.value)
    assert "AuthenticationError" in caplog.text or "ResponseError" in caplog.text


def test_the_store_url_is_shown_without_its_password() -> None:
    settings = LimitsSettings(store=Secret(f"redis://user:{PASSWORD}@cache.internal:6380/2"))
    assert settings.store_shown() == "redis://cache.internal:6380"
    assert PASSWORD not in repr(settings)
    assert PASSWORD not in str(settings)


def test_a_settlement_the_store_cannot_take_is_counted(tmp_path: Path) -> None:
    with redis_server(tmp_path) as server:
        limits = Harness(_settings(server.url, "allow"), None)
        try:
            record = record_of()
            admission = limits.admit(caller_with(Limits(tpm=1000)), record)
            server.stop()
            limits.settle(admission, record)
            limits.drain()
            metrics = limits.telemetry.render()
        finally:
            limits.close()
    assert "genai_proxy_limit_settlements_lost_total 1" in metrics
