"""The genai_proxy settings: defaults, upstream checks, routing by model glob."""

from __future__ import annotations

import pytest

from collector.config.decode import decode
from collector.config.problems import ConfigError
from proxy.config import ProxyConfig, UpstreamConfig
from proxy.errors import ProxyError
from proxy.routing import Router

PATH = "receivers.genai_proxy"


def _problems(raw: dict[str, object]) -> list[str]:
    with pytest.raises(ConfigError) as error:
        decode(ProxyConfig, raw, PATH)
    return [str(p) for p in error.value.problems]


def test_upstreams_are_required_and_checked() -> None:
    assert _problems({}) == [f"{PATH}.upstreams: define at least one upstream"]
    assert _problems({"upstreams": [{"name": "a", "kind": "azure", "base_url": "ftp://x"}]}) == [
        f"{PATH}.upstreams[0].kind: expected one of openai, anthropic, openai_compatible, gemini, azure_openai,"
        ' got "azure"'
    ]
    deployments = {"name": "a", "base_url": "http://x", "deployments": {"chat": "gpt-4o"}}
    assert _problems({"upstreams": [deployments]}) == [
        f"{PATH}.upstreams[0].deployments: is for azure_openai upstreams only"
    ]
    assert _problems({"upstreams": [{"name": "a", "base_url": "ftp://x"}]}) == [
        f'{PATH}.upstreams[0].base_url: expected http(s)://host[:port][/path], got "ftp://x"',
    ]
    assert _problems({"upstreams": [{"name": "a", "base_url": "http://x"}, {"name": "a", "base_url": "http://y"}]}) == [
        f'{PATH}.upstreams[1].name: "a" is used by another upstream',
    ]


def test_the_api_key_never_shows() -> None:
    config = decode(ProxyConfig, {"upstreams": [{"name": "a", "base_url": "http://x", "api_key": "sk-1"}]}, PATH)
    assert "sk-1" not in repr(config)


def test_routing_by_model_within_the_api_family() -> None:
    router = Router(
        (
            UpstreamConfig(name="oai", kind="openai", base_url="http://a/v1", models=("gpt-*",)),
            UpstreamConfig(name="local", kind="openai_compatible", base_url="http://b/v1", models=()),
            UpstreamConfig(name="claude", kind="anthropic", base_url="http://c", models=("claude-*",)),
        )
    )
    assert router.for_model("openai", "gpt-4o").name == "oai"
    assert router.for_model("openai", "llama3").name == "local"  # no models: serves any
    assert router.for_model("anthropic", "claude-opus-4-7").name == "claude"
    assert router.for_model("openai", None).name == "oai"
    with pytest.raises(ProxyError) as refused:
        router.for_model("anthropic", "gpt-4o")
    assert refused.value.status == 404
    assert "configured upstreams: oai (openai: gpt-*), local (openai_compatible: any model)" in refused.value.message


UPSTREAM = {"name": "a", "base_url": "http://x"}


def test_limits_are_read_from_the_config() -> None:
    raw = {
        "upstreams": [UPSTREAM],
        "limits": {
            "keys": {"rpm": 60},
            "tenant": {"daily_budget": 5},
            "tenants": {"acme": {"tpm": 1000, "monthly_budget": 20.5}},
            "store": "redis://:pw@127.0.0.1:6379/0",
            "on_store_error": "deny",
            "store_timeout": "250ms",
        },
        "auth": {"tenant_header": "X-GenAI-Tenant", "trusted_networks": ["10.0.0.0/8"]},
    }
    config = decode(ProxyConfig, raw, PATH)
    limits = config.limits
    assert (limits.keys.rpm, limits.tenant.daily_budget, limits.tenants["acme"].tpm) == (60, 5.0, 1000)
    assert (limits.on_store_error, limits.store_timeout, limits.shared) == ("deny", 0.25, True)
    assert limits.store_shown() == "redis://127.0.0.1:6379"
    assert "pw" not in repr(config)
    assert config.auth.trusted_networks == ("10.0.0.0/8",)


def test_limit_mistakes_are_one_line_each() -> None:
    raw = {
        "upstreams": [UPSTREAM],
        "limits": {
            "keys": {"rpm": -1, "budget": 3},
            "tenants": {"acme": {}},
            "store": "http://:secret@cache:80",
            "on_store_error": "maybe",
        },
    }
    problems = _problems(raw)
    assert (
        f"{PATH}.limits.keys.budget: unknown key; expected one of concurrency, daily_budget, monthly_budget, rpm, tpm"
        in problems
    )
    assert f'{PATH}.limits.on_store_error: expected one of allow, deny, got "maybe"' in problems
    assert all("secret" not in problem for problem in problems)
    assert _problems({"upstreams": [UPSTREAM], "limits": {"keys": {"rpm": -1}}}) == [
        f"{PATH}.limits.keys.rpm: must be 0 or more"
    ]
    assert _problems({"upstreams": [UPSTREAM], "limits": {"tenants": {"acme": {}}, "store": "http://:secret@x"}}) == [
        f"{PATH}.limits.store: expected memory or a redis://, rediss:// or unix:// URL (the value is not shown)",
        f"{PATH}.limits.tenants.acme: sets no limit",
    ]
    # A Redis URL redis-py cannot use fails here, in one line, not as a traceback when the store connects.
    assert _problems({"upstreams": [UPSTREAM], "limits": {"store": "redis://:secret@cache:port/0"}}) == [
        f"{PATH}.limits.store: is not a Redis URL redis-py can use: check its port, database and options (not shown)"
    ]
