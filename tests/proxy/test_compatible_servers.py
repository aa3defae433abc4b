"""OpenAI-compatible servers' quirks, one row each: what the client gets is untouched, what the span says is right.

The mock answers as each server does (see ``COMPATIBLE_SERVERS`` in mock_upstream): usage in streams on request,
always or never; reasoning text in ``reasoning_content`` or ``reasoning``; ids missing, empty or odd; no
``created`` or ``model``; finish reasons of their own.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from collector import semconv
from proxy.config import ProxyConfig, UpstreamConfig
from tests.proxy.mock_upstream import (
    COMPATIBLE_SERVERS,
    REASONING_TEXT,
    SCENARIO_HEADER,
    SERVER_HEADER,
    MockUpstream,
    pieces,
    reply_text,
    serve,
)
from tests.proxy.support import RunningProxy, attributes, running_proxy

MODEL = "qwen3-8b"
PROMPT = "Hello there"


@dataclass(frozen=True)
class Row:
    server: str
    stream: bool
    usage_asked: bool  # stream_options.include_usage in the client's request
    source: str  # gen_ai.usage.source the span must show
    response_id: str | None  # None: no gen_ai.response.id on the span
    finish_reason: str
    response_model: bool = True

    @property
    def id(self) -> str:
        mode = ("stream+usage" if self.usage_asked else "stream") if self.stream else "whole"
        return f"{self.server}-{mode}"


VLLM_ID = COMPATIBLE_SERVERS["vllm"].completion_id
OLLAMA_ID = COMPATIBLE_SERVERS["ollama"].completion_id
LLAMACPP_ID = COMPATIBLE_SERVERS["llamacpp"].completion_id
LMSTUDIO_ID = COMPATIBLE_SERVERS["lmstudio"].completion_id
ROWS = [
    # vLLM and Ollama honour include_usage: the proxy asks for it and hides it again when the client did not.
    Row("vllm", False, False, "provider", VLLM_ID, "stop"),
    Row("vllm", True, False, "provider", VLLM_ID, "stop"),
    Row("vllm", True, True, "provider", VLLM_ID, "stop"),
    Row("ollama", False, False, "provider", OLLAMA_ID, "stop"),
    Row("ollama", True, False, "provider", OLLAMA_ID, "stop"),
    Row("ollama", True, True, "provider", OLLAMA_ID, "stop"),
    # llama.cpp's server puts usage in the finishing chunk whatever was asked.
    Row("llamacpp", False, False, "provider", LLAMACPP_ID, "stop"),
    Row("llamacpp", True, False, "provider", LLAMACPP_ID, "stop"),
    Row("llamacpp", True, True, "provider", LLAMACPP_ID, "stop"),
    # LM Studio ignores stream_options: a stream's usage is counted by the proxy.
    Row("lmstudio", False, False, "provider", LMSTUDIO_ID, "stop"),
    Row("lmstudio", True, False, "estimated", LMSTUDIO_ID, "stop"),
    Row("lmstudio", True, True, "estimated", LMSTUDIO_ID, "stop"),
    # TGI: an empty id is no id, and its own finish reason is kept as sent.
    Row("tgi", False, False, "provider", None, "eos_token"),
    Row("tgi", True, False, "provider", None, "eos_token"),
    # No id, created or model at all.
    Row("minimal", False, False, "provider", None, "stop", response_model=False),
    Row("minimal", True, False, "estimated", None, "stop", response_model=False),
]


@pytest.fixture(scope="module")
def mock() -> Iterator[MockUpstream]:
    upstream = MockUpstream()
    with serve(upstream) as url:
        upstream.url = url  # type: ignore[attr-defined]
        yield upstream


@pytest.fixture(scope="module")
def proxy(mock: MockUpstream) -> Iterator[RunningProxy]:
    local = UpstreamConfig(name="local", kind="openai_compatible", base_url=f"{mock.url}/v1", provider="local")  # type: ignore[attr-defined]
    with running_proxy(ProxyConfig(upstreams=(local,), capture_content=True)) as running:
        yield running


def _call(base: str, row: Row) -> httpx.Response:
    body: dict[str, Any] = {"model": MODEL, "messages": [{"role": "user", "content": PROMPT}]}
    if row.stream:
        body["stream"] = True
    if row.usage_asked:
        body["stream_options"] = {"include_usage": True}
    headers = {SERVER_HEADER: row.server, SCENARIO_HEADER: "reasoning"}
    with httpx.Client(timeout=10) as client:
        response = client.post(f"{base}/v1/chat/completions", json=body, headers=headers)
        response.read()
        return response


@pytest.mark.parametrize("row", ROWS, ids=[row.id for row in ROWS])
def test_each_servers_answers_reach_the_client_untouched_and_are_recorded_right(
    mock: MockUpstream, proxy: RunningProxy, row: Row
) -> None:
    already = len(proxy.sink.spans)
    direct = _call(mock.url, row)  # type: ignore[attr-defined]
    proxied = _call(proxy.url, row)

    assert proxied.status_code == direct.status_code == 200
    assert proxied.content == direct.content
    attrs = attributes(proxy.sink.wait(already + 1)[already])
    assert attrs[semconv.USAGE_SOURCE] == row.source
    assert attrs[semconv.USAGE_INPUT_TOKENS] > 0
    if row.source == "provider":
        # Reasoning tokens are output tokens; these servers count them in completion_tokens and report no split.
        assert attrs[semconv.USAGE_OUTPUT_TOKENS] == len(pieces(reply_text(PROMPT))) + len(pieces(REASONING_TEXT))
    assert semconv.USAGE_REASONING_OUTPUT_TOKENS not in attrs
    assert attrs.get(semconv.RESPONSE_ID) == row.response_id
    assert attrs.get(semconv.RESPONSE_MODEL) == (MODEL if row.response_model else None)
    assert attrs[semconv.RESPONSE_FINISH_REASONS] == (row.finish_reason,)
    output = json.loads(attrs[semconv.OUTPUT_MESSAGES])
    assert output == [
        {
            "role": "assistant",
            "parts": [
                {"type": "reasoning", "content": REASONING_TEXT},
                {"type": "text", "content": reply_text(PROMPT)},
            ],
        }
    ]
