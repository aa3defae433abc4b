"""Two opt-in ways to carry a call's trace context through a stateless client, and back to the proxy.

- **Invisible signature**: the trace and span id, written as zero-width Unicode
  characters between two invisible separators, appended to the assistant's
  text. The client shows nothing; when it resends the history, the proxy finds
  the signature, strips it before forwarding, and joins that trace.
- **Tool-call trace context**: a ``_traceparent`` key (W3C traceparent) added to
  the arguments of each tool call the model returns (non-streamed replies), so
  the tool that runs can join the trace; the key is stripped again when the
  history comes back.

Both change bytes between the upstream and the client, which the proxy
otherwise never does, so both are off unless configured.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from proxy.record import as_dict, as_int, as_list

DIGITS = ("\u200b", "\u200c", "\u200d", "\u2060")  # zero-width space, non-joiner, joiner, word joiner
MARK = "\u2063"  # invisible separator
ID_BITS = 128 + 64
DIGIT_COUNT = ID_BITS // 2
TRACEPARENT_KEY = "_traceparent"
_SIGNATURE = re.compile(f"{MARK}([{''.join(DIGITS)}]{{{DIGIT_COUNT}}}){MARK}")
_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$")


@dataclass(frozen=True)
class TraceIds:
    trace_id: int
    span_id: int

    def traceparent(self) -> str:
        return f"00-{self.trace_id:032x}-{self.span_id:016x}-01"


def signature(ids: TraceIds) -> str:
    value = (ids.trace_id << 64) | ids.span_id
    digits = (DIGITS[(value >> (2 * (DIGIT_COUNT - 1 - i))) & 3] for i in range(DIGIT_COUNT))
    return MARK + "".join(digits) + MARK


def _decode(digits: str) -> TraceIds:
    value = 0
    for char in digits:
        value = (value << 2) | DIGITS.index(char)
    return TraceIds(value >> 64, value & ((1 << 64) - 1))


def _parse_traceparent(value: Any) -> TraceIds | None:
    match = _TRACEPARENT.match(value) if isinstance(value, str) else None
    return TraceIds(int(match.group(1), 16), int(match.group(2), 16)) if match else None


class _Finder:
    """Strips markers from a request's history, remembering the last trace they named."""

    def __init__(self) -> None:
        self.found: TraceIds | None = None
        self.changed = False

    def text(self, text: str) -> str:
        matches = list(_SIGNATURE.finditer(text))
        if not matches:
            return text
        self.found = _decode(matches[-1].group(1))
        self.changed = True
        return _SIGNATURE.sub("", text)

    def arguments(self, arguments: Any) -> Any:
        """Tool-call arguments, as a JSON string (OpenAI) or an object (Anthropic), without the key."""
        if isinstance(arguments, dict):
            if TRACEPARENT_KEY not in arguments:
                return arguments
            ids = _parse_traceparent(arguments[TRACEPARENT_KEY])
            self.found = ids or self.found
            self.changed = True
            return {k: v for k, v in arguments.items() if k != TRACEPARENT_KEY}
        if isinstance(arguments, str) and TRACEPARENT_KEY in arguments:
            try:
                parsed = json.loads(arguments)
            except ValueError:
                return arguments
            if isinstance(parsed, dict) and TRACEPARENT_KEY in parsed:
                return json.dumps(self.arguments(parsed))
        return arguments


def strip_markers(api: str, body: dict[str, Any]) -> tuple[dict[str, Any] | None, TraceIds | None]:
    """``body`` without signatures or injected trace context (None when it had none), and the trace they named."""
    finder = _Finder()
    if api == "chat_completions":
        messages = [_chat_message(m, finder) for m in as_list(body.get("messages"))]
        changed = {**body, "messages": messages}
    elif api == "messages":
        changed = {**body, "messages": [_anthropic_message(m, finder) for m in as_list(body.get("messages"))]}
    elif api == "responses" and isinstance(body.get("input"), list):
        changed = {**body, "input": [_responses_item(item, finder) for item in body["input"]]}
    else:
        return None, None
    return (changed if finder.changed else None), finder.found


def _map_text_parts(content: Any, finder: _Finder, text_types: tuple[str, ...]) -> Any:
    if isinstance(content, str):
        return finder.text(content)
    if isinstance(content, list):
        return [
            {**part, "text": finder.text(part["text"])}
            if isinstance(part, dict) and part.get("type") in text_types and isinstance(part.get("text"), str)
            else part
            for part in content
        ]
    return content


def _chat_message(message: Any, finder: _Finder) -> Any:
    if not isinstance(message, dict) or message.get("role") != "assistant":
        return message
    changed = {**message, "content": _map_text_parts(message.get("content"), finder, ("text",))}
    calls = message.get("tool_calls")
    if isinstance(calls, list):
        changed["tool_calls"] = [_chat_tool_call(call, finder) for call in calls]
    return changed


def _chat_tool_call(call: Any, finder: _Finder) -> Any:
    if not isinstance(call, dict) or not isinstance(call.get("function"), dict):
        return call
    function = call["function"]
    return {**call, "function": {**function, "arguments": finder.arguments(function.get("arguments"))}}


def _anthropic_message(message: Any, finder: _Finder) -> Any:
    if not isinstance(message, dict) or message.get("role") != "assistant":
        return message
    content = message.get("content")
    if isinstance(content, list):
        content = [
            {**block, "input": finder.arguments(block.get("input"))}
            if isinstance(block, dict) and block.get("type") == "tool_use"
            else block
            for block in content
        ]
    return {**message, "content": _map_text_parts(content, finder, ("text",))}


def _responses_item(item: Any, finder: _Finder) -> Any:
    if not isinstance(item, dict):
        return item
    if item.get("type") == "function_call":
        return {**item, "arguments": finder.arguments(item.get("arguments"))}
    if item.get("role") == "assistant":
        return {**item, "content": _map_text_parts(item.get("content"), finder, ("output_text", "text"))}
    return item


def mark_reply(api: str, document: Any, ids: TraceIds, sign: bool, tool_calls: bool) -> bool:
    """Add the signature and/or tool-call trace context to a whole JSON reply, in place; True if it changed."""
    if not isinstance(document, dict):
        return False
    marker = signature(ids)
    changed = False

    def add_to_arguments(arguments: Any) -> Any:
        """The arguments with the trace context added; arguments that are not a JSON object stay as written."""
        nonlocal changed
        if isinstance(arguments, dict):
            changed = True
            return {**arguments, TRACEPARENT_KEY: ids.traceparent()}
        try:
            parsed = json.loads(arguments) if isinstance(arguments, str) and arguments else {}
        except ValueError:
            return arguments
        if not isinstance(parsed, dict):
            return arguments
        changed = True
        return json.dumps({**parsed, TRACEPARENT_KEY: ids.traceparent()})

    if api == "chat_completions":
        for choice in as_list(document.get("choices")):
            message = choice.get("message") if isinstance(choice, dict) else None
            if not isinstance(message, dict):
                continue
            if sign and isinstance(message.get("content"), str) and message["content"]:
                message["content"] += marker
                changed = True
            if tool_calls:
                for call in as_list(message.get("tool_calls")):
                    if isinstance(call, dict) and isinstance(call.get("function"), dict):
                        call["function"]["arguments"] = add_to_arguments(call["function"].get("arguments"))
    elif api == "messages":
        blocks = [b for b in as_list(document.get("content")) if isinstance(b, dict)]
        texts = [b for b in blocks if b.get("type") == "text" and isinstance(b.get("text"), str)]
        if sign and texts:
            texts[-1]["text"] += marker
            changed = True
        if tool_calls:
            for block in blocks:
                if block.get("type") == "tool_use":
                    block["input"] = add_to_arguments(block.get("input"))
    elif api == "responses":
        items = [i for i in as_list(document.get("output")) if isinstance(i, dict)]
        parts = [
            part
            for item in items
            if item.get("type") == "message"
            for part in as_list(item.get("content"))
            if isinstance(part, dict) and part.get("type") == "output_text" and isinstance(part.get("text"), str)
        ]
        if sign and parts:
            parts[-1]["text"] += marker
            changed = True
        if tool_calls:
            for item in items:
                if item.get("type") == "function_call":
                    item["arguments"] = add_to_arguments(item.get("arguments"))
    return changed


class StreamSigner:
    """Adds the signature to a streamed reply: one extra text delta, just before the text ends.

    Chat Completions: before the chunk that finishes a choice; Anthropic: before
    the stop of the first text block. Responses streams repeat the whole text in
    later events, so they are not signed (their calls link by previous_response_id).
    """

    def __init__(self, api: str, ids: TraceIds) -> None:
        self._api = api
        self._marker = signature(ids)
        self._signed: set[int] = set()
        self._text_blocks: set[int] = set()

    def before(self, event_name: str, data: str) -> bytes:
        """Bytes to send ahead of the event with ``data``, or b""."""
        try:
            document = json.loads(data) if data and data != "[DONE]" else None
        except ValueError:
            return b""
        if not isinstance(document, dict):
            return b""
        if self._api == "chat_completions":
            return self._chat(document)
        if self._api == "messages":
            return self._anthropic(document)
        return b""

    def _chat(self, chunk: dict[str, Any]) -> bytes:
        extra: list[bytes] = []
        for choice in as_list(chunk.get("choices")):
            if not isinstance(choice, dict) or not choice.get("finish_reason"):
                continue
            index = as_int(choice.get("index", 0))
            if index is None or index in self._signed or choice.get("finish_reason") not in ("stop", "length"):
                continue
            self._signed.add(index)
            delta_chunk = {key: value for key, value in chunk.items() if key not in ("choices", "usage", "obfuscation")}
            delta_chunk["choices"] = [{"index": index, "delta": {"content": self._marker}, "finish_reason": None}]
            extra.append(_sse(None, delta_chunk))
        return b"".join(extra)

    def _anthropic(self, event: dict[str, Any]) -> bytes:
        kind = event.get("type")
        index = as_int(event.get("index"))
        if kind == "content_block_start" and as_dict(event.get("content_block")).get("type") == "text":
            if index is not None:
                self._text_blocks.add(index)
        elif kind == "content_block_stop" and index in self._text_blocks and not self._signed:
            self._signed.add(index)
            delta = {
                "type": "content_block_delta",
                "index": index,
                "delta": {"type": "text_delta", "text": self._marker},
            }
            return _sse("content_block_delta", delta)
        return b""


def _sse(event: str | None, data: dict[str, Any]) -> bytes:
    body = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {body}\n\n".encode()
