"""OpenAI legacy Completions (POST /v1/completions): ``text_completion`` spans.

Streams get the same usage treatment as Chat Completions: asked for upstream
when the client did not, and hidden from the client again.
"""

from __future__ import annotations

import json
from typing import Any

from proxy import semconv
from proxy.apis import text_part
from proxy.apis.openai_chat import DONE, NULL_USAGE, wants_usage_injected
from proxy.errors import ApiFamily
from proxy.record import (
    COMMON_FINISH_REASONS,
    CallRecord,
    as_int,
    error_kind,
    set_openai_request,
    set_openai_response,
    usage_from_openai,
)
from proxy.sse import SseEvent


class Completions:
    name = "completions"
    family: ApiFamily = "openai"
    operation = semconv.OPERATION_TEXT_COMPLETION

    def describe_request(self, body: dict[str, Any], record: CallRecord) -> None:
        set_openai_request(record, body, ("max_tokens",))
        prompt = body.get("prompt")
        prompts = [prompt] if isinstance(prompt, str) else [p for p in prompt or [] if isinstance(p, str)]
        record.prompt_texts.extend(prompts)
        if record.capture_content and prompts:
            record.input_messages = [{"role": "user", "parts": [text_part(p) for p in prompts]}]

    def upstream_body(self, body: dict[str, Any]) -> dict[str, Any] | None:
        if not wants_usage_injected(body):
            return None
        options = body.get("stream_options")
        return {**body, "stream_options": {**(options if isinstance(options, dict) else {}), "include_usage": True}}

    def read_response(self, document: Any, record: CallRecord) -> None:
        if not isinstance(document, dict):
            return
        set_openai_response(record, document)
        usage_from_openai(document.get("usage"), record)
        for choice in document.get("choices") or []:
            _add_choice(record, choice)

    def stream_tee(self, body: dict[str, Any], record: CallRecord) -> CompletionsStreamTee:
        return CompletionsStreamTee(record, hide_usage=wants_usage_injected(body))

    def finish_reason_map(self) -> dict[str, str]:
        return COMMON_FINISH_REASONS


class CompletionsStreamTee:
    def __init__(self, record: CallRecord, hide_usage: bool) -> None:
        self._record = record
        self._hide_usage = hide_usage
        self._described = False

    def on_event(self, event: SseEvent) -> bytes:
        if event.data == DONE or not event.data:
            return event.raw
        try:
            chunk = json.loads(event.data)
        except ValueError:
            return event.raw
        if not isinstance(chunk, dict):
            return event.raw
        if "error" in chunk:
            self._record.stream_error = error_kind(chunk["error"])
            return event.raw
        if not self._described:
            set_openai_response(self._record, chunk)
            self._described = bool(chunk.get("id"))
        usage = chunk.get("usage")
        if usage:
            usage_from_openai(usage, self._record)
        for choice in chunk.get("choices") or []:
            _add_choice(self._record, choice)
        if not self._hide_usage:
            return event.raw
        if usage and not chunk.get("choices"):
            return b""
        return NULL_USAGE.sub(b"", event.raw, count=1)


def _add_choice(record: CallRecord, choice: Any) -> None:
    if not isinstance(choice, dict):
        return
    out = record.choice(as_int(choice.get("index")) or 0)
    text = choice.get("text")
    if isinstance(text, str) and text:
        out.text.append(text)
    if choice.get("finish_reason"):
        out.finish_reason = choice["finish_reason"]
