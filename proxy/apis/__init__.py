"""One adapter per LLM API: what its requests and responses mean in GenAI semantic-convention terms.

An adapter reads a request body into a ``CallRecord``, may adjust the body sent
upstream (only where the proxy needs to, and never what the client sees), reads
a whole JSON response, and, for streams, provides a tee that sees each SSE event
and decides the bytes forwarded for it.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from proxy.errors import ApiFamily
from proxy.record import CallRecord
from proxy.sse import SseEvent


class StreamTee(Protocol):
    def on_event(self, event: SseEvent) -> bytes:
        """The bytes to forward for ``event``: its raw bytes, an adjusted copy, or b"" to hold it back."""
        ...


class Api(Protocol):
    """The adapter of one endpoint."""

    name: str  # for metrics and logs, e.g. "chat_completions"
    family: ApiFamily
    operation: str  # gen_ai.operation.name

    def describe_request(self, body: dict[str, Any], record: CallRecord) -> None:
        """Request attributes, content and prompt text into ``record``."""
        ...

    def upstream_body(self, body: dict[str, Any]) -> dict[str, Any] | None:
        """A changed body to send upstream, or None to send the client's bytes as they came."""
        ...

    def read_response(self, document: Any, record: CallRecord) -> None:
        """A whole (non-streamed) JSON response into ``record``."""
        ...

    def stream_tee(self, body: dict[str, Any], record: CallRecord) -> StreamTee:
        """The tee for a streamed response to ``body``."""
        ...

    def finish_reason_map(self) -> dict[str, str]:
        """Provider finish reasons → the conventions' FinishReason values."""
        ...


def event_json(event: SseEvent) -> dict[str, Any] | None:
    """The JSON object an SSE event carries; None for an empty event, ``[DONE]`` or anything not an object."""
    if not event.data or event.data == "[DONE]":
        return None
    try:
        document = json.loads(event.data)
    except ValueError:
        return None
    return document if isinstance(document, dict) else None


def text_part(text: str) -> dict[str, Any]:
    return {"type": "text", "content": text}


def media_part(url: str, modality: str) -> dict[str, Any]:
    """A data: URL becomes a blob part, anything else a uri part, as the conventions ask."""
    if url.startswith("data:"):
        header, _, content = url.partition(",")
        mime_type = header[len("data:") :].split(";")[0]
        return {"type": "blob", "modality": modality, "mime_type": mime_type or None, "content": content}
    return {"type": "uri", "modality": modality, "uri": url}
