"""Pass-through and managed auth: whose key goes upstream, 401s in each provider's format, no key anywhere else."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import anthropic
import httpx
import openai
import pytest

from collector import semconv
from collector.keys import KeyStore
from proxy.config import AuthSettings, ProxyConfig
from tests.proxy.mock_upstream import MockUpstream, serve
from tests.proxy.support import RunningProxy, attributes, running_proxy, upstreams_for

OPENAI_KEY = "sk-provider-openai-0123456789"
ANTHROPIC_KEY = "sk-ant-provider-0123456789"
MESSAGES = [{"role": "user", "content": "hello"}]


@pytest.fixture(scope="module")
def mock() -> Iterator[MockUpstream]:
    upstream = MockUpstream(openai_key=OPENAI_KEY, anthropic_key=ANTHROPIC_KEY)
    with serve(upstream) as url:
        upstream.url = url  # type: ignore[attr-defined]
        yield upstream


def _config(mock: MockUpstream, keys_file: Path, mode: str = "auto") -> ProxyConfig:
    return ProxyConfig(
        upstreams=upstreams_for(mock.url, OPENAI_KEY, ANTHROPIC_KEY),  # type: ignore[attr-defined]
        auth=AuthSettings(mode=mode, keys_file=str(keys_file)),  # type: ignore[arg-type]
        capture_content=True,
    )


@pytest.fixture
def managed(mock: MockUpstream, tmp_path: Path) -> Iterator[tuple[RunningProxy, str]]:
    mock.reset()
    keys_file = tmp_path / "keys.json"
    _, key = KeyStore(keys_file).create("team-a")
    with running_proxy(_config(mock, keys_file)) as proxy:
        yield proxy, key


def test_pass_through_forwards_the_clients_own_key(mock: MockUpstream, tmp_path: Path) -> None:
    mock.reset()
    with running_proxy(_config(mock, tmp_path / "none.json")) as proxy:
        client = openai.OpenAI(base_url=f"{proxy.url}/v1", api_key=OPENAI_KEY, max_retries=0)
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)  # type: ignore[arg-type]
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=f"{proxy.url}/v1", api_key="sk-wrong", max_retries=0).chat.completions.create(
                model="gpt-4o-mini",
                messages=MESSAGES,  # type: ignore[arg-type]
            )
        spans = proxy.sink.wait(2)

    assert mock.requests[0].headers["authorization"] == f"Bearer {OPENAI_KEY}"
    assert semconv.TENANT_ID not in attributes(spans[0])
    # The upstream's 401 went back verbatim and marks the span as failed.
    assert attributes(spans[1])[semconv.ERROR_TYPE] == "401"


def test_managed_swaps_the_proxy_key_for_the_provider_key_and_stamps_the_tenant(
    mock: MockUpstream, managed: tuple[RunningProxy, str]
) -> None:
    proxy, key = managed
    openai.OpenAI(base_url=f"{proxy.url}/v1", api_key=key, max_retries=0).chat.completions.create(
        model="gpt-4o-mini",
        messages=MESSAGES,  # type: ignore[arg-type]
    )
    anthropic.Anthropic(base_url=proxy.url, api_key=key, max_retries=0).messages.create(
        model="claude-sonnet-4-6",
        max_tokens=32,
        messages=MESSAGES,  # type: ignore[list-item]
    )
    spans = proxy.sink.wait(2)

    openai_request, anthropic_request = mock.requests
    assert openai_request.headers["authorization"] == f"Bearer {OPENAI_KEY}"
    assert anthropic_request.headers["x-api-key"] == ANTHROPIC_KEY
    assert "authorization" not in anthropic_request.headers
    assert all(attributes(span)[semconv.TENANT_ID] == "team-a" for span in spans)


@pytest.mark.parametrize("key", [None, "gcx-not-a-key"], ids=["missing", "wrong"])
def test_managed_answers_401_in_each_providers_format(
    mock: MockUpstream, managed: tuple[RunningProxy, str], key: str | None
) -> None:
    proxy, _ = managed

    headers = {"Authorization": f"Bearer {key}"} if key else {}
    with httpx.Client(timeout=10) as client:
        openai_answer = client.post(
            f"{proxy.url}/v1/chat/completions", json={"model": "gpt-4o-mini", "messages": MESSAGES}, headers=headers
        )
        anthropic_answer = client.post(
            f"{proxy.url}/v1/messages",
            json={"model": "claude-sonnet-4-6", "max_tokens": 8, "messages": MESSAGES},
            headers={**({"x-api-key": key} if key else {}), "anthropic-version": "2023-06-01"},
        )

    assert openai_answer.status_code == anthropic_answer.status_code == 401
    assert openai_answer.json()["error"]["type"] == "invalid_request_error"
    assert anthropic_answer.json()["type"] == "error"
    assert anthropic_answer.json()["error"]["type"] == "authentication_error"
    assert mock.requests == []
    # The SDKs read these as their own authentication errors.
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=f"{proxy.url}/v1", api_key=key or "x", max_retries=0).models.list()
    with pytest.raises(anthropic.AuthenticationError):
        anthropic.Anthropic(base_url=proxy.url, api_key=key or "x", max_retries=0).messages.create(
            model="claude-sonnet-4-6",
            max_tokens=8,
            messages=MESSAGES,  # type: ignore[list-item]
        )


def test_no_key_appears_in_spans_or_logs(
    mock: MockUpstream, managed: tuple[RunningProxy, str], caplog: pytest.LogCaptureFixture
) -> None:
    proxy, key = managed
    caplog.set_level(logging.DEBUG)
    client = openai.OpenAI(base_url=f"{proxy.url}/v1", api_key=key, max_retries=0)
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)  # type: ignore[arg-type]
    list(client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True))  # type: ignore[arg-type]
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="no-such-model", messages=MESSAGES)  # type: ignore[arg-type]
    spans = proxy.sink.wait(2)

    secrets = (key, OPENAI_KEY, ANTHROPIC_KEY)
    everything = caplog.text + repr([dict(span.attributes or {}) for span in spans])
    everything += repr([span.resource.attributes for span in spans]) + proxy.telemetry.render()
    assert not [secret for secret in secrets if secret in everything]


# --- managed mode across restarts ----------------------------------------------------------------------------------

REFUSED_LOG = "every call is refused with 401"


def _refused_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if REFUSED_LOG in record.getMessage()]


def _assert_every_call_refused(proxy: RunningProxy, keys: tuple[str, ...]) -> None:
    """Proxy keys and provider keys alike, from both SDKs and raw requests: 401, in each provider's format."""
    for key in keys:
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=f"{proxy.url}/v1", api_key=key, max_retries=0).chat.completions.create(
                model="gpt-4o-mini",
                messages=MESSAGES,  # type: ignore[arg-type]
            )
        with pytest.raises(anthropic.AuthenticationError):
            anthropic.Anthropic(base_url=proxy.url, api_key=key, max_retries=0).messages.create(
                model="claude-sonnet-4-6",
                max_tokens=8,
                messages=MESSAGES,  # type: ignore[list-item]
            )
        answer = httpx.get(f"{proxy.url}/v1/models", headers={"Authorization": f"Bearer {key}"}, timeout=10)
        assert answer.status_code == 401 and answer.json()["error"]["type"] == "invalid_request_error"


def _lose_keys(keys_file: Path, how: str) -> None:
    if how == "deleted":
        keys_file.unlink()
    elif how == "emptied":
        keys_file.write_text('{"keys": []}\n')
    else:  # truncated to nothing, as `> keys.json` does
        keys_file.write_text("")


@pytest.mark.parametrize("how", ["deleted", "emptied", "truncated"])
def test_auto_mode_stays_managed_across_a_restart_and_fails_closed_without_keys(
    mock: MockUpstream, tmp_path: Path, caplog: pytest.LogCaptureFixture, how: str
) -> None:
    mock.reset()
    keys_file = tmp_path / "keys.json"
    _, key = KeyStore(keys_file).create("team-a")
    with running_proxy(_config(mock, keys_file)) as proxy:
        openai.OpenAI(base_url=f"{proxy.url}/v1", api_key=key, max_retries=0).models.list()
    assert (tmp_path / "keys.json.managed").exists()
    mock.reset()

    _lose_keys(keys_file, how)
    caplog.set_level(logging.INFO)
    with running_proxy(_config(mock, keys_file)) as restarted:  # a new ProxyService on the same files
        assert restarted.service.auth.is_managed()
        _assert_every_call_refused(restarted, (key, OPENAI_KEY, ANTHROPIC_KEY))

    assert mock.requests == []
    lines = _refused_lines(caplog)
    assert len(lines) == 1, lines  # at start, not per call
    assert str(keys_file) in lines[0] and "keys.json.managed" in lines[0]
    assert not [
        record for record in caplog.records if "is refused" not in record.getMessage() and record.levelno > logging.INFO
    ]


def test_explicit_managed_mode_without_a_keys_file_fails_closed_and_says_so_once(
    mock: MockUpstream, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    mock.reset()
    caplog.set_level(logging.INFO)
    with running_proxy(_config(mock, tmp_path / "never-created.json", mode="managed")) as proxy:
        _assert_every_call_refused(proxy, ("gcx-anything", OPENAI_KEY))
    assert mock.requests == []
    lines = _refused_lines(caplog)
    assert len(lines) == 1 and "auth.mode is managed" in lines[0]


def test_keys_that_come_back_are_accepted_and_each_change_is_logged_once(
    mock: MockUpstream, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    mock.reset()
    keys_file = tmp_path / "keys.json"
    store = KeyStore(keys_file)
    _, first = store.create("team-a")
    caplog.set_level(logging.INFO)
    with running_proxy(_config(mock, keys_file)) as proxy:
        client = openai.OpenAI(base_url=f"{proxy.url}/v1", api_key=first, max_retries=0)
        client.models.list()
        keys_file.unlink()  # while it runs
        for _ in range(3):
            with pytest.raises(openai.AuthenticationError):
                client.models.list()
        _, second = store.create("team-b")
        openai.OpenAI(base_url=f"{proxy.url}/v1", api_key=second, max_retries=0).models.list()
        keys_file.write_text('{"keys": []}\n')
        with pytest.raises(openai.AuthenticationError):
            client.models.list()

    assert len(mock.requests) == 2  # the two calls made while a key existed
    assert len(_refused_lines(caplog)) == 2  # the file went twice
    assert sum("holds keys again" in record.getMessage() for record in caplog.records) == 1


def test_an_operator_returns_to_pass_through_deliberately(mock: MockUpstream, tmp_path: Path) -> None:
    keys_file = tmp_path / "keys.json"
    KeyStore(keys_file).create("team-a")
    with running_proxy(_config(mock, keys_file)) as proxy:
        assert proxy.service.auth.is_managed()

    # Forcing pass-through in the config works whatever was recorded ...
    mock.reset()
    with running_proxy(_config(mock, keys_file, mode="passthrough")) as proxy:
        openai.OpenAI(base_url=f"{proxy.url}/v1", api_key=OPENAI_KEY, max_retries=0).models.list()
    assert mock.requests[0].headers["authorization"] == f"Bearer {OPENAI_KEY}"

    # ... and in auto mode, removing both the keys file and the marker (with the proxy stopped) starts over.
    keys_file.unlink()
    (tmp_path / "keys.json.managed").unlink()
    mock.reset()
    with running_proxy(_config(mock, keys_file)) as proxy:
        assert not proxy.service.auth.is_managed()
        openai.OpenAI(base_url=f"{proxy.url}/v1", api_key=OPENAI_KEY, max_retries=0).models.list()
    assert mock.requests[0].headers["authorization"] == f"Bearer {OPENAI_KEY}"
