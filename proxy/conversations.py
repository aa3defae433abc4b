"""Grouping stateless multi-call conversations: which earlier call does this history continue?

Clients of chat APIs resend the whole history on every call. After a call the
proxy remembers a digest of the history it saw plus the reply it returned; a
later call whose history begins with exactly that continues the conversation,
so it gets the same ``gen_ai.conversation.id`` and joins the same trace as a
child of the call it continues.

Digests are scoped by the caller's credential and the upstream, so two users
sending the same first prompt are never merged. Messages are compared in a
canonical form (role, text, tool calls), because SDKs resend an assistant
message with fields the API never returned. A call's history is put in that
form and hashed once (``History``): looking for the call it continues and,
once it is answered, remembering it under its history and reply both use those
digests. Memory is bounded by entry count and age; only digests are kept,
never content.
"""

from __future__ import annotations

import collections
import hashlib
import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

DIGEST_BYTES = 16


@dataclass(frozen=True)
class ConversationLink:
    """Where a conversation's latest call lives: its trace, its span and the conversation id."""

    trace_id: int
    span_id: int
    conversation_id: str


def canonical(message: dict[str, Any]) -> bytes:
    """A message in the conventions' shape reduced to what every resend keeps: role, text, tool calls."""
    text: list[str] = []
    calls: list[list[Any]] = []
    responses: list[list[Any]] = []
    for part in message.get("parts") or []:
        kind = part.get("type")
        if kind == "text":
            text.append(str(part.get("content", "")))
        elif kind == "tool_call":
            calls.append([part.get("id"), part.get("name"), part.get("arguments")])
        elif kind == "tool_call_response":
            responses.append([part.get("id"), part.get("response")])
    form = [message.get("role"), "".join(text), calls, responses]
    try:
        return b"o" + orjson.dumps(form, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # what orjson refuses (lone surrogates, integers past 64 bits): tagged apart, never equal
        # ASCII escapes: any text, lone surrogates included, encodes.
        return b"j" + json.dumps(form, sort_keys=True, separators=(",", ":")).encode("ascii")


class History:
    """A call's history (its messages) in ``scope``, as chained digests: digest i covers messages 0 to i."""

    __slots__ = ("messages", "digests", "_last")

    def __init__(self, scope: str, messages: Sequence[dict[str, Any]]) -> None:
        self.messages = messages
        self.digests: list[bytes] = []
        state = hashlib.blake2b(scope.encode("utf-8", "surrogatepass"), digest_size=DIGEST_BYTES).digest()
        for message in messages:
            state = _chained(state, message)
            self.digests.append(state)
        self._last = state

    def then(self, message: dict[str, Any]) -> bytes:
        """The digest of this history followed by ``message`` (a reply)."""
        return _chained(self._last, message)


def _chained(state: bytes, message: dict[str, Any]) -> bytes:
    return hashlib.blake2b(state + canonical(message), digest_size=DIGEST_BYTES).digest()


class ConversationTracker:
    """A bounded, expiring map from history digests to the call that produced them."""

    def __init__(self, ttl_seconds: float, max_entries: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl_seconds
        self._clock = clock
        self._max_entries = max_entries
        self._entries: collections.OrderedDict[bytes, tuple[float, ConversationLink]] = collections.OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def find(self, history: History) -> ConversationLink | None:
        """The call whose history and reply the longest possible prefix of ``history`` repeats."""
        messages, digests = history.messages, history.digests
        for index in range(len(messages) - 1, -1, -1):
            if messages[index].get("role") == "assistant" and (link := self._get(digests[index])) is not None:
                return link
        return None

    def remember(self, history: History, reply: dict[str, Any], link: ConversationLink) -> None:
        """Record that ``history`` followed by ``reply`` is where ``link`` left the conversation."""
        self._put(history.then(reply), link)

    def remember_trace(self, scope: str, link: ConversationLink) -> None:
        """Record that ``scope``'s calls made trace ``link.trace_id``, in conversation ``link.conversation_id``."""
        self._put(_scoped(scope, b"trace:" + link.trace_id.to_bytes(16, "big")), link)

    def conversation_of(self, scope: str, trace_id: int) -> str | None:
        """The conversation of trace ``trace_id``, if ``scope``'s calls made that trace."""
        link = self._get(_scoped(scope, b"trace:" + trace_id.to_bytes(16, "big")))
        return link.conversation_id if link else None

    def remember_response(self, scope: str, response_id: str, link: ConversationLink) -> None:
        """A stored response (Responses API) that ``scope``'s later calls may name as previous_response_id."""
        self._put(_scoped(scope, b"response:" + response_id.encode("utf-8", "surrogatepass")), link)

    def find_response(self, scope: str, response_id: str) -> ConversationLink | None:
        return self._get(_scoped(scope, b"response:" + response_id.encode("utf-8", "surrogatepass")))

    def _get(self, key: bytes) -> ConversationLink | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            stored_at, link = entry
            if self._clock() - stored_at > self._ttl:
                del self._entries[key]
                return None
            return link

    def _put(self, key: bytes, link: ConversationLink) -> None:
        now = self._clock()
        with self._lock:
            self._entries[key] = (now, link)
            self._entries.move_to_end(key)
            while len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)
            # Expired entries at the old end go too, so memory follows traffic.
            while self._entries:
                oldest_key, (stored_at, _) = next(iter(self._entries.items()))
                if now - stored_at <= self._ttl:
                    break
                del self._entries[oldest_key]


def _scoped(scope: str, key: bytes) -> bytes:
    return hashlib.blake2b(scope.encode("utf-8", "surrogatepass") + b"\0" + key, digest_size=DIGEST_BYTES).digest()
