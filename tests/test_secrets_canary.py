"""Secrets canary: a fake provider key and a real proxy key, sent every way a client might, never surface.

A collector runs in this process with two ``genai_proxy`` receivers (managed
keys, and pass-through) in front of the mock OpenAI/Anthropic upstream, the
OTLP/HTTP receiver, ``genai_normalize`` and ``genai_security`` (secrets masked)
and the chDB store. Both canaries go into headers, query strings and bodies, on
calls that succeed, that the proxy refuses (wrong key, malformed body), that the
upstream fails (401, 400, 500, a dropped connection) and that time out. Then
every log record (with its traceback), and every row of every table in the
store, read as text, is searched for either canary: there must be none.

Spans an application sends over OTLP with a key in a non-content attribute
(``http.request.header.authorization``, ``url.full``) are checked apart.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from collector.keys import KeyStore
from tests.conftest import RunningService, query_store, send_span
from tests.proxy.mock_upstream import SCENARIO_HEADER, MockUpstream, serve

CLIENT_TIMEOUT_SECONDS = 15.0
PROXY_READ_TIMEOUT = "1s"
OPENAI_MODEL = "gpt-4o-mini"
ANTHROPIC_MODEL = "claude-3-5-haiku-20241022"
# The test's own client logs the URLs it calls; the proxy's upstream client is aiohttp, the store chDB.
TEST_CLIENT_LOGGERS = ("httpx", "httpcore")


class Canaries:
    """The two secrets of one run; ``fragments`` also catch a key cut short or quoted in part."""

    def __init__(self, proxy_key: str) -> None:
        self.provider_key = "sk-proj-CANARY" + secrets.token_hex(20)
        self.proxy_key = proxy_key

    def fragments(self) -> list[str]:
        provider_random = self.provider_key.removeprefix("sk-proj-CANARY")
        proxy_random = self.proxy_key.removeprefix("gcx-")
        return [self.provider_key, self.proxy_key, provider_random[:16], provider_random[-16:], proxy_random[:16]]

    def hits(self, text: str) -> list[str]:
        return [fragment for fragment in self.fragments() if fragment in text]

    def where(self, text: str, context: int = 80) -> list[str]:
        """Each line of ``text`` holding a canary, cut to the part around it, to say where a leak is."""
        found = []
        for line in text.splitlines():
            for fragment in self.hits(line):
                at = line.index(fragment)
                found.append(line[: line.index(" ") + 1] + "..." + line[max(0, at - context) : at + context])
        return found


def _config(chdb_dir: Path, upstream_url: str, keys_file: Path, provider_key: str, empty_keys: Path) -> str:
    upstreams = f"""
      - name: openai
        kind: openai
        base_url: {upstream_url}/v1
        api_key: {provider_key}
        models: ["gpt-*"]
      - name: anthropic
        kind: anthropic
        base_url: {upstream_url}
        api_key: {provider_key}
        models: ["claude-*"]"""
    return f"""
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:0
  genai_proxy:
    endpoint: 127.0.0.1:0
    capture_content: true
    timeouts:
      read: {PROXY_READ_TIMEOUT}
    auth:
      mode: managed
      keys_file: {keys_file}
    upstreams:{upstreams}
  genai_proxy/passthrough:
    endpoint: 127.0.0.1:0
    capture_content: true
    timeouts:
      read: {PROXY_READ_TIMEOUT}
    auth:
      mode: passthrough
      keys_file: {empty_keys}
    upstreams:{upstreams}
processors:
  genai_normalize:
  genai_security:
    actions:
      secret: mask
exporters:
  clickhouse:
    endpoint: chdb://{chdb_dir}
    sending_queue:
      batch:
        flush_timeout: 50ms
service:
  telemetry:
    logs:
      level: debug
  pipelines:
    traces:
      receivers: [otlp, genai_proxy, genai_proxy/passthrough]
      processors: [genai_normalize, genai_security]
      exporters: [clickhouse]
"""


@pytest.fixture
def canaries(tmp_path: Path) -> Canaries:
    _, key = KeyStore(tmp_path / "proxy-keys.json").create("canary-tenant")
    return Canaries(key)


@pytest.fixture
def mock(canaries: Canaries) -> Iterator[tuple[MockUpstream, str]]:
    upstream = MockUpstream(openai_key=canaries.provider_key, anthropic_key=canaries.provider_key, stall_seconds=5.0)
    with serve(upstream) as url:
        yield upstream, url


def _proxy_port(service: RunningService, receiver: str) -> int:
    from collector.component import ComponentID

    return int(service.service.receivers[ComponentID.parse(receiver)].port)  # type: ignore[attr-defined]


def _chat(canaries: Canaries, stream: bool = False) -> dict[str, object]:
    return {
        "model": OPENAI_MODEL,
        "stream": stream,
        "messages": [
            {"role": "system", "content": f"Use the key {canaries.provider_key} for tools."},
            {"role": "user", "content": f"My OpenAI key is {canaries.provider_key}."},
        ],
        "user": canaries.provider_key,
        "metadata": {"api_key": canaries.provider_key, "proxy_key": canaries.proxy_key},
    }


def _anthropic(canaries: Canaries) -> dict[str, object]:
    return {
        "model": ANTHROPIC_MODEL,
        "max_tokens": 32,
        "system": f"Secret: {canaries.provider_key}",
        "messages": [{"role": "user", "content": f"key={canaries.provider_key}"}],
    }


def _managed_auth(canaries: Canaries) -> dict[str, str]:
    return {"authorization": f"Bearer {canaries.proxy_key}"}


def _calls(
    client: httpx.Client, managed: str, passthrough: str, canaries: Canaries, service: RunningService
) -> list[int]:
    """Every way the canaries reach the proxies; returns the status codes the client saw."""
    provider, proxy = canaries.provider_key, canaries.proxy_key
    query = {"api_key": provider, "key": proxy, "token": f"Bearer {provider}"}
    bearer_proxy = {"authorization": f"Bearer {proxy}", "x-canary": provider, "openai-organization": provider}
    statuses: list[int] = []

    def send(method: str, url: str, **kwargs: object) -> None:
        try:
            response = client.request(method, url, **kwargs)  # type: ignore[arg-type]
            statuses.append(response.status_code)
        except httpx.HTTPError:
            statuses.append(0)  # a dropped connection: what the proxy logged still counts

    chat = "/v1/chat/completions"
    # Managed: the proxy key in either header, the provider key everywhere else.
    send("POST", f"{managed}{chat}", headers=bearer_proxy, params=query, json=_chat(canaries))
    send("POST", f"{managed}{chat}", headers=bearer_proxy, params=query, json=_chat(canaries, stream=True))
    send("POST", f"{managed}/v1/messages", headers={"x-api-key": proxy}, params=query, json=_anthropic(canaries))
    send("POST", f"{managed}/v1/messages", headers={"x-api-key": proxy}, json={**_anthropic(canaries), "stream": True})
    # Refused by the proxy: the provider key where a proxy key belongs, a wrong proxy key, no key.
    send("POST", f"{managed}{chat}", headers={"authorization": f"Bearer {provider}"}, json=_chat(canaries))
    send("POST", f"{managed}{chat}", headers={"x-api-key": provider}, params=query, json=_chat(canaries))
    send("POST", f"{managed}{chat}", headers={"authorization": f"Bearer {proxy}x"}, json=_chat(canaries))
    send("POST", f"{managed}{chat}", params=query, json=_chat(canaries))
    # Malformed bodies carrying the keys.
    for body in (
        f'{{"model": "{OPENAI_MODEL}", "messages": [{{"content": "{provider}"'.encode(),
        f"{provider} {proxy}".encode(),
        json.dumps({"model": OPENAI_MODEL, "messages": proxy}).encode(),
    ):
        send("POST", f"{managed}{chat}", headers=bearer_proxy, params=query, content=body)
    # Failing upstreams: errors, a dropped connection, a stall past the proxy's read timeout.
    for scenario in ("error_400", "error_500", "error_429", "stream_error", "drop", "stall_headers", "stall"):
        for stream in (False, True):
            headers = {**bearer_proxy, SCENARIO_HEADER: scenario}
            send("POST", f"{managed}{chat}", headers=headers, params=query, json=_chat(canaries, stream))
    send("GET", f"{managed}/v1/models", headers=bearer_proxy, params=query)
    send("GET", f"{managed}/v1/files", headers=bearer_proxy, params=query)
    # Pass-through: the provider key is the client's own; a wrong one gets the upstream's 401.
    send("POST", f"{passthrough}{chat}", headers={"authorization": f"Bearer {provider}"}, json=_chat(canaries))
    send("POST", f"{passthrough}{chat}", headers={"authorization": f"Bearer {provider}x"}, json=_chat(canaries))
    send(
        "POST", f"{passthrough}{chat}", headers={"authorization": f"Bearer {proxy}"}, params=query, json=_chat(canaries)
    )
    send("POST", f"{passthrough}/v1/messages", headers={"x-api-key": provider}, json=_anthropic(canaries))
    send("POST", f"{passthrough}/v1/messages", headers={"x-api-key": f"{provider}x"}, json=_anthropic(canaries))
    send(
        "POST",
        f"{passthrough}{chat}",
        headers={"authorization": f"Bearer {provider}", SCENARIO_HEADER: "error_500"},
        params=query,
        json=_chat(canaries, stream=True),
    )
    return statuses


def _store_text(chdb_dir: Path) -> str:
    """Every row of every table in the store, as text (aggregate states, numbers only, are left out)."""
    columns = query_store(
        chdb_dir,
        "SELECT table, name FROM system.columns WHERE database = currentDatabase() "
        "AND type NOT LIKE '%AggregateFunction(%' ORDER BY table, position",
    )
    by_table: dict[str, list[str]] = {}
    for table, name in columns:
        by_table.setdefault(str(table), []).append(f"toString(`{name}`)")
    lines = []
    for table, selected in by_table.items():
        for row in query_store(chdb_dir, f"SELECT {', '.join(selected)} FROM `{table}`"):
            lines.append(f"{table}: {' '.join(str(value) for value in row)}")
    return "\n".join(lines)


def _log_text(caplog: pytest.LogCaptureFixture) -> str:
    """Every captured record but the test client's: its message, its arguments and its formatted traceback."""
    formatter = logging.Formatter()
    records = [
        f"{r.name} {r.getMessage()} {r.args!r} {formatter.formatException(r.exc_info) if r.exc_info else ''}"
        for r in caplog.records
        if not r.name.startswith(TEST_CLIENT_LOGGERS)
    ]
    return "\n".join(records)


Calls = Callable[[httpx.Client, str, str, Canaries, RunningService], list[int]]


def _leaks(
    calls: Calls,
    canaries: Canaries,
    url: str,
    tmp_path: Path,
    chdb_path: Path,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> tuple[list[int], str]:
    """Run ``calls`` against a fresh collector: the statuses seen, and where a canary was found ("" when nowhere)."""
    caplog.set_level(logging.DEBUG)
    yaml_text = _config(chdb_path, url, tmp_path / "proxy-keys.json", canaries.provider_key, tmp_path / "none.json")
    service = RunningService(yaml_text, tmp_path)
    try:
        managed = f"http://127.0.0.1:{_proxy_port(service, 'genai_proxy')}"
        passthrough = f"http://127.0.0.1:{_proxy_port(service, 'genai_proxy/passthrough')}"
        with httpx.Client(timeout=CLIENT_TIMEOUT_SECONDS) as client:
            statuses = calls(client, managed, passthrough, canaries, service)
    finally:
        service.stop()  # drains every proxy span into the store
    stored = _store_text(chdb_path)
    assert stored, "the calls must have reached the store"
    captured = capfd.readouterr()
    found = {
        "stored rows": canaries.where(stored),
        "log records": canaries.where(_log_text(caplog)),
        "stderr/stdout": canaries.where(captured.err + captured.out),
    }
    return statuses, "\n".join(f"{where}: {line}" for where, lines in found.items() for line in lines)


def test_no_canary_in_logs_spans_or_stored_rows(
    canaries: Canaries,
    mock: tuple[MockUpstream, str],
    tmp_path: Path,
    chdb_path: Path,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    upstream, url = mock
    statuses, leaks = _leaks(_calls, canaries, url, tmp_path, chdb_path, caplog, capfd)
    # The calls did what they were meant to: some succeeded, some were refused, some failed upstream.
    assert {200, 400, 401, 500} <= set(statuses), statuses
    # The upstream did receive the configured provider key (managed) and the client's (pass-through).
    assert any(r.headers.get("authorization") == f"Bearer {canaries.provider_key}" for r in upstream.requests)
    assert not leaks, leaks


def _proxy_key_in_a_prompt(
    client: httpx.Client, managed: str, passthrough: str, canaries: Canaries, service: RunningService
) -> list[int]:
    body = {"model": OPENAI_MODEL, "messages": [{"role": "user", "content": f"my proxy key: {canaries.proxy_key}"}]}
    return [client.post(f"{managed}/v1/chat/completions", headers=_managed_auth(canaries), json=body).status_code]


def test_a_proxy_key_in_a_prompt_is_masked(
    canaries: Canaries,
    mock: tuple[MockUpstream, str],
    tmp_path: Path,
    chdb_path: Path,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    _, url = mock
    statuses, leaks = _leaks(_proxy_key_in_a_prompt, canaries, url, tmp_path, chdb_path, caplog, capfd)
    assert statuses == [200]
    assert not leaks, leaks


def _keys_outside_content(
    client: httpx.Client, managed: str, passthrough: str, canaries: Canaries, service: RunningService
) -> list[int]:
    """A key where no content detector looks: a URL path, the model field, OTLP span attributes."""
    provider = canaries.provider_key
    statuses = [
        client.get(f"{managed}/v1/files/{provider}", headers=_managed_auth(canaries)).status_code,
        client.post(
            f"{passthrough}/v1/chat/completions",
            headers={"authorization": f"Bearer {provider}"},
            json={"model": [provider], "messages": [{"role": "user", "content": "hi"}]},
        ).status_code,
    ]
    send_span(
        service,
        "GET /v1/chat",
        {
            "http.request.header.authorization": [f"Bearer {provider}"],
            "http.request.header.x-api-key": [canaries.proxy_key],
            "url.full": f"https://api.openai.com/v1/models?api_key={provider}",
        },
    )
    return statuses


def test_keys_outside_content_attributes_are_masked(
    canaries: Canaries,
    mock: tuple[MockUpstream, str],
    tmp_path: Path,
    chdb_path: Path,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    _, url = mock
    _, leaks = _leaks(_keys_outside_content, canaries, url, tmp_path, chdb_path, caplog, capfd)
    assert not leaks, leaks
