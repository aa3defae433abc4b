"""OpenAI legacy Completions (POST /v1/completions): ``text_completion`` spans (streams: see openai_stream)."""

from __future__ import annotations

from typing import Any

from collector import semconv
from proxy.apis import text_part
from proxy.apis.openai_stream import ChunkStreamTee, wants_usage_injected, with_usage_requested
from proxy.errors import ApiFamily
from proxy.record import (
    COMMON_FINISH_REASONS,
    CallRecord,
    as_int,
    as_list,
    set_openai_request,
    set_openai_response,
    usage_from_openai,
)


class Completions:
    name = "completions"
    family: ApiFamily = "openai"
    operation = semconv.TEXT_COMPLETION

    def describe_request(self, body: dict[str, Any], record: CallRecord) -> None:
        set_openai_request(record, body, ("max_tokens",))
        prompt = body.get("prompt")
        prompts = [prompt] if isinstance(prompt, str) else [p for p in as_list(prompt) if isinstance(p, str)]
        record.prompt_texts.extend(prompts)
        if record.capture_content and prompts:
            record.input_messages = [{"role": "user", "parts": [text_part(p) for p in prompts]}]

    def upstream_body(self, body: dict[str, Any]) -> dict[str, Any] | None:
        return with_usage_requested(body)

    def read_response(self, document: Any, record: CallRecord) -> None:
        if not isinstance(document, dict):
            return
        set_openai_response(record, document)
        usage_from_openai(document.get("usage"), record)
        for choice in as_list(document.get("choices")):
            _add_choice(record, choice)

    def stream_tee(self, body: dict[str, Any], record: CallRecord) -> ChunkStreamTee:
        return ChunkStreamTee(record, wants_usage_injected(body), _add_choice)

    def finish_reason_map(self) -> dict[str, str]:
        return COMMON_FINISH_REASONS


def _add_choice(record: CallRecord, choice: Any) -> None:
    if not isinstance(choice, dict):
        return
    out = record.choice(as_int(choice.get("index")) or 0)
    text = choice.get("text")
    if isinstance(text, str) and text:
        out.text.append(text)
    if choice.get("finish_reason"):
        out.finish_reason = choice["finish_reason"]
