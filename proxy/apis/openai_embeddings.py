"""OpenAI Embeddings (POST /v1/embeddings): ``embeddings`` spans, never streamed."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from collector import semconv
from proxy.errors import ApiFamily
from proxy.record import CallRecord, as_int, as_list, set_openai_response
from proxy.sse import SseEvent

FLOAT32_BYTES = 4


class Embeddings:
    name = "embeddings"
    family: ApiFamily = "openai"
    operation = semconv.EMBEDDINGS

    def describe_request(self, body: dict[str, Any], record: CallRecord) -> None:
        encoding = body.get("encoding_format")
        if isinstance(encoding, str):
            record.set(semconv.REQUEST_ENCODING_FORMATS, [encoding])
        text = body.get("input")
        inputs = [text] if isinstance(text, str) else [t for t in as_list(text) if isinstance(t, str)]
        record.prompt_texts.extend(inputs)

    def upstream_body(self, body: dict[str, Any]) -> dict[str, Any] | None:
        return None

    def read_response(self, document: Any, record: CallRecord) -> None:
        if not isinstance(document, dict):
            return
        set_openai_response(record, document)
        usage = document.get("usage")
        if isinstance(usage, dict):
            record.usage.input_tokens = as_int(usage.get("prompt_tokens"))
        data = document.get("data")
        if isinstance(data, list) and data and isinstance(data[0], dict):
            dimensions = _dimensions(data[0].get("embedding"))
            record.set(semconv.EMBEDDINGS_DIMENSION_COUNT, dimensions)

    def stream_tee(self, body: dict[str, Any], record: CallRecord) -> PassEvents:
        return PassEvents()

    def finish_reason_map(self) -> dict[str, str]:
        return {}


class PassEvents:
    """For APIs that do not stream: anything event-shaped is forwarded as is."""

    def on_event(self, event: SseEvent) -> bytes:
        return event.raw


def _dimensions(embedding: Any) -> int | None:
    if isinstance(embedding, list):
        return len(embedding)
    if isinstance(embedding, str):  # encoding_format=base64: packed float32
        try:
            return len(base64.b64decode(embedding, validate=True)) // FLOAT32_BYTES
        except (binascii.Error, ValueError):
            return None
    return None
