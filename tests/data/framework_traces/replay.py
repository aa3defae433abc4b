"""Send a recorded run's model calls through a live proxy again, and read the usage its upstream reported.

Each call goes out as the framework sent it: same path and body, its traceparent (when it had one, so the
proxy's span joins the framework's trace) and its scenario header. The mock upstream answers a request the
same way every time, so the proxy sees what it saw while recording. The usage is read from the raw answer
(JSON or the event stream), not from any span: it is what the framework was billed for.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import httpx

from tests.data.framework_traces import Call
from tests.proxy.mock_upstream import SCENARIO_HEADER

API_KEY = "sk-test-replay"
TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True)
class Usage:
    input_tokens: int
    output_tokens: int


def replay(calls: Iterable[Call], proxy_url: str) -> list[Usage]:
    """Send ``calls`` in order to the proxy at ``proxy_url``; the usage of each answer."""
    usages = []
    with httpx.Client(base_url=proxy_url, timeout=TIMEOUT_SECONDS) as client:
        for call in calls:
            headers = {"content-type": "application/json", SCENARIO_HEADER: call.scenario}
            if call.path == "/v1/messages":
                headers |= {"x-api-key": API_KEY, "anthropic-version": "2023-06-01"}
            else:
                headers["authorization"] = f"Bearer {API_KEY}"
            if call.traceparent:
                headers["traceparent"] = call.traceparent
            response = client.post(call.path, content=json.dumps(call.body).encode(), headers=headers)
            response.raise_for_status()
            usages.append(usage_of(call.path, response.text))
    return usages


def usage_of(path: str, answer: str) -> Usage:
    """The tokens an answer reports: from its JSON body or, streamed, from the event that carries them."""
    if not answer.lstrip().startswith("{"):
        return _streamed_usage(path, answer)
    document = json.loads(answer)
    usage = document.get("usage") or {}
    if path == "/v1/chat/completions":
        return Usage(int(usage["prompt_tokens"]), int(usage["completion_tokens"]))
    if path == "/v1/messages":
        cached = int(usage.get("cache_read_input_tokens") or 0) + int(usage.get("cache_creation_input_tokens") or 0)
        return Usage(int(usage["input_tokens"]) + cached, int(usage["output_tokens"]))
    return Usage(int(usage["input_tokens"]), int(usage["output_tokens"]))


def _streamed_usage(path: str, answer: str) -> Usage:
    events = [json.loads(line[6:]) for line in answer.splitlines() if line.startswith("data: {")]
    if path == "/v1/chat/completions":
        usage = next(event["usage"] for event in reversed(events) if event.get("usage"))
        return Usage(int(usage["prompt_tokens"]), int(usage["completion_tokens"]))
    if path == "/v1/responses":
        done: Any = next(event for event in events if event.get("type") == "response.completed")
        return Usage(int(done["response"]["usage"]["input_tokens"]), int(done["response"]["usage"]["output_tokens"]))
    start = next(event for event in events if event.get("type") == "message_start")["message"]["usage"]
    delta = next(event for event in reversed(events) if event.get("type") == "message_delta")["usage"]
    cached = int(start.get("cache_read_input_tokens") or 0) + int(start.get("cache_creation_input_tokens") or 0)
    return Usage(int(start["input_tokens"]) + cached, int(delta["output_tokens"]))
