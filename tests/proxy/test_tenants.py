"""Tenants without managed keys: the tenant header, believed only from trusted networks, and limited like a key's."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from collector import semconv
from collector.keys import Limits
from proxy.config import AuthSettings, ProxyConfig
from proxy.limits.settings import LimitsSettings
from tests.conftest import ManualClock
from tests.proxy.mock_upstream import MockUpstream, serve
from tests.proxy.support import RunningProxy, attributes, running_proxy, upstreams_for

KEY = "sk-client-own-key"
HEADER = "X-GenAI-Tenant"
MESSAGES: list[Any] = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def mock() -> Iterator[MockUpstream]:
    upstream = MockUpstream(openai_key=KEY)
    with serve(upstream) as url:
        upstream.url = url  # type: ignore[attr-defined]
        yield upstream


def _proxy(mock: MockUpstream, networks: tuple[str, ...], limits: LimitsSettings | None = None) -> Any:
    config = ProxyConfig(
        upstreams=upstreams_for(mock.url),  # type: ignore[attr-defined]
        auth=AuthSettings(mode="passthrough", tenant_header=HEADER, trusted_networks=networks),
        limits=limits or LimitsSettings(),
    )
    return running_proxy(config, clock=ManualClock(1_796_558_400.0))


def _call(proxy: RunningProxy, tenant: str | None) -> Any:
    headers = {HEADER: tenant} if tenant is not None else {}
    client = openai.OpenAI(base_url=f"{proxy.url}/v1", api_key=KEY, max_retries=0, default_headers=headers)
    return client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)


def test_a_trusted_client_names_its_tenant(mock: MockUpstream) -> None:
    with _proxy(mock, ("127.0.0.0/8", "::1/128")) as proxy:
        _call(proxy, "acme")
        _call(proxy, None)
        spans = proxy.sink.wait(2)
    assert [attributes(s).get(semconv.TENANT_ID) for s in spans] == ["acme", None]
    assert all(HEADER.lower() not in request.headers for request in mock.requests)  # it goes no further


def test_an_untrusted_client_is_ignored_and_counted(mock: MockUpstream) -> None:
    with _proxy(mock, ("10.0.0.0/8",)) as proxy:
        _call(proxy, "acme")
        spans = proxy.sink.wait(1)
        metrics = proxy.telemetry.render()
    assert semconv.TENANT_ID not in attributes(spans[0])
    assert 'genai_proxy_tenant_header_ignored_total{reason="untrusted"} 1' in metrics


@pytest.mark.parametrize("name", [b"x" * 129, "caf\u00e9".encode(), b"a\tb", b""])
def test_a_name_that_is_no_tenant_is_ignored_and_counted(mock: MockUpstream, name: bytes) -> None:
    with _proxy(mock, ("127.0.0.0/8",)) as proxy:
        headers = [(b"authorization", f"Bearer {KEY}".encode()), (HEADER.encode(), name)]
        body = {"model": "gpt-4o-mini", "messages": MESSAGES}
        assert httpx.post(f"{proxy.url}/v1/chat/completions", json=body, headers=headers, timeout=10).is_success
        spans = proxy.sink.wait(1)
        metrics = proxy.telemetry.render()
    assert semconv.TENANT_ID not in attributes(spans[0])
    assert 'genai_proxy_tenant_header_ignored_total{reason="invalid"} 1' in metrics


def test_a_tenant_named_by_its_header_has_its_limits(mock: MockUpstream) -> None:
    limits = LimitsSettings(tenants={"acme": Limits(rpm=1)})
    with _proxy(mock, ("127.0.0.0/8",), limits) as proxy:
        _call(proxy, "acme")
        with pytest.raises(openai.RateLimitError):
            _call(proxy, "acme")
        _call(proxy, "other")  # no limits of its own, none by default
        _call(proxy, None)


def test_trusted_networks_are_checked_in_the_config() -> None:
    problems = list(AuthSettings(tenant_header=HEADER, trusted_networks=("10.0.0.0/33",)).validate())
    assert problems == [("trusted_networks[0]", '"10.0.0.0/33" is not an IP network (e.g. 10.0.0.0/8 or 127.0.0.1/32)')]
    assert list(AuthSettings(tenant_header=HEADER).validate()) == [
        ("tenant_header", "needs trusted_networks: the header is believed only from them")
    ]
