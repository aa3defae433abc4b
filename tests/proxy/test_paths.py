"""Paths that could reach beyond the upstream's base path are refused before routing; nothing of them goes upstream."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.config.types import Secret
from collector.keys import KeyStore
from proxy.config import AuthSettings, ProxyConfig, UpstreamConfig
from proxy.errors import ProxyError
from proxy.paths import full_check, path_problem
from proxy.upstream import upstream_url
from tests.proxy.mock_upstream import MockUpstream, serve
from tests.proxy.support import RunningProxy, running_proxy, upstreams_for

OPENAI_KEY = "sk-provider-openai-0123456789"
ANTHROPIC_KEY = "sk-ant-provider-0123456789"

REFUSED = {
    "dot-dot": b"/v1/../../billing/x",
    "dot": b"/v1/./models",
    "dot-dot-last": b"/v1/chat/completions/..",
    "dots-only": b"/v1/.../x",
    "encoded-dots": b"/v1/%2e%2e/%2e%2e/billing/x",
    "mixed-case-encoded-dots": b"/v1/%2E%2e/billing",
    "half-encoded-dots": b"/v1/.%2e/billing",
    "encoded-unreserved": b"/v1/mod%65ls",
    "encoded-slash": b"/v1/models/..%2f..%2fbilling",
    "encoded-slash-upper": b"/v1/files/a%2Fb",
    "encoded-backslash": b"/v1/files/..%5c..%5cbilling",
    "backslash": b"/v1/files/..\\..\\billing",
    "double-slash": b"/v1//billing/x",
    "leading-double-slash": b"//evil.example/v1/models",
    "double-encoding": b"/v1/%252e%252e/billing",
    "overlong-utf8-dot": b"/v1/%c0%ae%c0%ae/billing",
    "overlong-utf8-slash": b"/v1/a%c0%afb",
    "invalid-utf8": b"/v1/files/%ff%fe",
    "lone-surrogate-utf8": b"/v1/files/%ed%a0%80",
    "path-parameter": b"/v1/models;jsessionid=1",
    "dot-dot-with-parameter": b"/v1/..;/billing",
    "encoded-nul": b"/v1/files/a%00b",
    "encoded-newline": b"/v1/files/a%0d%0aX-Injected:%20yes",
    "fullwidth-dots": b"/v1/%EF%BC%8E%EF%BC%8E/billing",
    "two-dot-leader": b"/v1/%E2%80%A5/billing",
    "fullwidth-solidus": b"/v1/a%EF%BC%8Fb",
    "malformed-escape": b"/v1/files/%zz",
    "truncated-escape": b"/v1/files/%4",
}
# uvicorn's HTTP parser answers these 400 itself, before the proxy sees them; the proxy would refuse them too.
REFUSED_BY_THE_HTTP_PARSER = {
    "raw-non-ascii": "/v1/files/caf\u00e9".encode(),
    "no-leading-slash": b"v1/models",
}
ACCEPTED = {
    "api": b"/v1/chat/completions",
    "fine-tuned-model": b"/v1/models/ft:gpt-4o-mini:org:custom:abc123",
    "trailing-slash": b"/v1/files/",
    "encoded-space-and-colon": b"/v1/files/a%20b%3Ac",
    "encoded-non-ascii": b"/v1/files/caf%C3%A9",
    "dot-inside-a-name": b"/v1/files/report.v2..final.jsonl",
    "dot-file": b"/v1/.well-known",
    "sub-delims": b"/v1/files/a!$&'()*+,=@b",
}


@pytest.mark.parametrize(
    "raw_path", [*REFUSED.values(), *REFUSED_BY_THE_HTTP_PARSER.values()], ids=[*REFUSED, *REFUSED_BY_THE_HTTP_PARSER]
)
def test_paths_that_could_leave_the_base_path_are_refused(raw_path: bytes) -> None:
    assert path_problem(raw_path) is not None


@pytest.mark.parametrize("raw_path", ACCEPTED.values(), ids=ACCEPTED.keys())
def test_ordinary_paths_are_accepted(raw_path: bytes) -> None:
    assert path_problem(raw_path) is None


def test_the_upstream_url_never_leaves_the_base_path() -> None:
    upstream = UpstreamConfig(name="openai", kind="openai", base_url="https://api.example/v1", api_key=Secret("k"))
    assert str(upstream_url(upstream, b"/v1/files/a%20b", b"x=1")) == "https://api.example/v1/files/a%20b?x=1"
    for raw_path in (b"/v1/../billing", b"/v1/%2e%2e/billing", b"/v2/models", b"/v1evil/x"):
        with pytest.raises(ProxyError) as refused:
            upstream_url(upstream, raw_path, b"")
        assert refused.value.status == 400


@pytest.fixture(scope="module")
def mock() -> Iterator[MockUpstream]:
    upstream = MockUpstream(openai_key=OPENAI_KEY, anthropic_key=ANTHROPIC_KEY)
    with serve(upstream) as url:
        upstream.url = url  # type: ignore[attr-defined]
        yield upstream


@pytest.fixture
def managed(mock: MockUpstream, tmp_path: Path) -> Iterator[tuple[RunningProxy, str]]:
    """A managed proxy: whatever it forwards carries the provider key, which is what makes a traversal worth trying."""
    mock.reset()
    keys_file = tmp_path / "keys.json"
    _, key = KeyStore(keys_file).create("team-a")
    config = ProxyConfig(
        upstreams=upstreams_for(mock.url, OPENAI_KEY, ANTHROPIC_KEY),  # type: ignore[attr-defined]
        auth=AuthSettings(mode="managed", keys_file=str(keys_file)),
    )
    with running_proxy(config) as proxy:
        yield proxy, key


def _send_raw(url: str, method: str, target: bytes, headers: dict[str, str], body: bytes = b"") -> tuple[int, bytes]:
    """One request with ``target`` on its request line byte for byte (HTTP clients normalise or refuse such paths)."""
    host, port = url.removeprefix("http://").split(":")
    head = [f"{method} ".encode() + target + b" HTTP/1.1", f"Host: {host}:{port}".encode(), b"Connection: close"]
    head += [f"{name}: {value}".encode() for name, value in {**headers, "Content-Length": str(len(body))}.items()]
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(b"\r\n".join(head) + b"\r\n\r\n" + body)
        reply = b""
        while chunk := connection.recv(65536):
            reply += chunk
    status_line, _, rest = reply.partition(b"\r\n")
    _, _, content = rest.partition(b"\r\n\r\n")
    return int(status_line.split()[1]), content


@pytest.mark.parametrize("raw_path", REFUSED.values(), ids=REFUSED.keys())
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_refused_path_gets_400_in_the_openai_format_and_nothing_goes_upstream(
    mock: MockUpstream, managed: tuple[RunningProxy, str], raw_path: bytes, method: str
) -> None:
    proxy, key = managed
    body = b'{"model": "gpt-4o-mini", "messages": []}' if method == "POST" else b""
    status, content = _send_raw(proxy.url, method, raw_path, {"Authorization": f"Bearer {key}"}, body)
    assert status == 400
    answer = json.loads(content)
    assert answer["error"]["type"] == "invalid_request_error"
    assert "does not forward" in answer["error"]["message"]
    assert mock.requests == []


@pytest.mark.parametrize("raw_path", REFUSED_BY_THE_HTTP_PARSER.values(), ids=REFUSED_BY_THE_HTTP_PARSER.keys())
def test_a_path_the_http_parser_refuses_goes_nowhere_either(
    mock: MockUpstream, managed: tuple[RunningProxy, str], raw_path: bytes
) -> None:
    proxy, key = managed
    status, _ = _send_raw(proxy.url, "GET", raw_path, {"Authorization": f"Bearer {key}"})
    assert status == 400
    assert mock.requests == []


def test_a_refused_path_is_answered_in_the_anthropic_format_to_an_anthropic_client(
    mock: MockUpstream, managed: tuple[RunningProxy, str]
) -> None:
    proxy, key = managed
    headers = {"x-api-key": key, "anthropic-version": "2023-06-01"}
    status, content = _send_raw(proxy.url, "POST", b"/v1/messages/..%2f..%2fbilling", headers, b"{}")
    assert status == 400
    answer = json.loads(content)
    assert answer["type"] == "error"
    assert answer["error"]["type"] == "invalid_request_error"
    assert mock.requests == []


def test_a_refused_path_is_refused_before_authentication(mock: MockUpstream, managed: tuple[RunningProxy, str]) -> None:
    proxy, _ = managed
    status, _ = _send_raw(proxy.url, "GET", b"/v1/../billing", {})
    assert status == 400  # not 401: the path is judged first, so no key is needed to learn of it
    assert mock.requests == []


def test_the_openai_sdk_cannot_reach_outside_v1_and_ordinary_calls_still_work(
    mock: MockUpstream, managed: tuple[RunningProxy, str]
) -> None:
    proxy, key = managed
    client = openai.OpenAI(base_url=f"{proxy.url}/v1", api_key=key, max_retries=0, timeout=10)

    # The SDK encodes the id's separators (..%2F..%2Fbilling%2Fx): refused, not decoded upstream.
    with pytest.raises(openai.BadRequestError):
        client.files.retrieve("../../billing/x")
    with pytest.raises(openai.BadRequestError):
        client.models.retrieve("..\\..\\billing")
    with pytest.raises(openai.BadRequestError):
        client.files.retrieve("%2e%2e")  # sent as %252e%252e
    # httpx resolves the dots itself, so this one arrives as /billing/x: outside /v1, never forwarded.
    with pytest.raises(openai.NotFoundError):
        client.get("/../../billing/x", cast_to=httpx.Response)
    assert mock.requests == []

    models = client.models.list()
    assert [m.id for m in models.data][:1] == ["gpt-4o-mini"]
    completion = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    assert completion.choices[0].message.content
    assert [(r.method, r.path) for r in mock.requests] == [("GET", "/v1/models"), ("POST", "/v1/chat/completions")]
    assert all(r.headers["authorization"] == f"Bearer {OPENAI_KEY}" for r in mock.requests)


@given(st.lists(st.from_regex(rb"[A-Za-z0-9_~-][A-Za-z0-9._~-]{0,12}", fullmatch=True), min_size=1, max_size=6))
@settings(max_examples=300, derandomize=True)
def test_the_shortcut_for_plain_paths_accepts_only_what_the_full_check_accepts(segments: list[bytes]) -> None:
    path = b"/" + b"/".join(segments)
    assert path_problem(path) is None
    assert full_check(path) is None
