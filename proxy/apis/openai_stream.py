"""What OpenAI's chunked streams share (Chat Completions and legacy Completions).

For streams the proxy needs usage, so when the client did not ask for it the
upstream request gets ``stream_options.include_usage``; the extra usage chunk
and the ``"usage":null`` OpenAI then adds to every chunk are removed from what
the client receives, so it sees exactly the stream it asked for.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from proxy.apis import event_json
from proxy.record import CallRecord, as_list, error_kind, set_openai_response, usage_from_openai
from proxy.sse import SseEvent

NULL_USAGE = re.compile(rb',\s*"usage"\s*:\s*null|"usage"\s*:\s*null\s*,')


def wants_usage_injected(body: dict[str, Any]) -> bool:
    """A stream whose client did not ask for usage: the proxy asks for it and hides it again."""
    if body.get("stream") is not True:
        return False
    options = body.get("stream_options")
    return not (isinstance(options, dict) and options.get("include_usage") is True)


def with_usage_requested(body: dict[str, Any]) -> dict[str, Any] | None:
    """The body to send upstream when usage must be asked for, else None (send the client's bytes)."""
    if not wants_usage_injected(body):
        return None
    options = body.get("stream_options")
    return {**body, "stream_options": {**(options if isinstance(options, dict) else {}), "include_usage": True}}


class ChunkStreamTee:
    """Reads each chunk into the record with ``add_choice``; hides the usage the proxy asked for itself."""

    def __init__(self, record: CallRecord, hide_usage: bool, add_choice: Callable[[CallRecord, Any], None]) -> None:
        self._record = record
        self._hide_usage = hide_usage
        self._add_choice = add_choice
        self._described = False

    def on_event(self, event: SseEvent) -> bytes:
        chunk = event_json(event)
        if chunk is None:
            return event.raw
        record = self._record
        if "error" in chunk:
            record.stream_error = error_kind(chunk["error"])
            return event.raw
        if not self._described:
            # Some servers (Azure's first chunk) send an empty id and model; the next chunk has them.
            set_openai_response(record, chunk)
            self._described = bool(chunk.get("id"))
        usage = chunk.get("usage")
        if usage:
            usage_from_openai(usage, record)
        for choice in as_list(chunk.get("choices")):
            self._add_choice(record, choice)
        if not self._hide_usage:
            return event.raw
        if usage and not chunk.get("choices"):
            return b""  # the usage chunk the client did not ask for
        return NULL_USAGE.sub(b"", event.raw, count=1)
