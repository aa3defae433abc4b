"""LLM input messages hashed once per conversation, not once per request.

Each request of an agent carries the whole conversation so far, so hashing
every input message of every request costs the square of the conversation's
length. When a request's JSON text begins with the previous request's text of
the same trace (all but its closing bracket, followed by a comma or the
bracket), its first messages are those same messages: their hashes are reused
and only the new ones are hashed. Anything else (another client, messages
edited or dropped, spans out of order) is hashed in full.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any


class InputHistory:
    def __init__(self, capacity: int, message_hash: Callable[[Any], int]) -> None:
        self._capacity = capacity
        self._hash = message_hash
        # Per trace: the length and hash of the previous request's text without its closing bracket,
        # and the hashes of its messages.
        self._last: OrderedDict[bytes, tuple[int, int, tuple[int, ...]]] = OrderedDict()

    def hashes(self, trace_id: bytes, text: str, messages: list[Any]) -> tuple[tuple[int, ...], int]:
        """The hashes of ``messages`` (parsed from ``text``), and how many leading ones were known already."""
        known: tuple[int, ...] = ()
        previous = self._last.pop(trace_id, None)
        if previous is not None:
            length, prefix_hash, hashes = previous
            if len(messages) >= len(hashes) and _value_ends(text, length) and hash(text[:length]) == prefix_hash:
                known = hashes
        result = known + tuple(self._hash(message) for message in messages[len(known) :])
        body = text.rstrip()
        if body.endswith("]"):
            self._last[trace_id] = (len(body) - 1, hash(body[:-1]), result)
            if len(self._last) > self._capacity:
                self._last.popitem(last=False)
        return result, len(known)


def _value_ends(text: str, index: int) -> bool:
    """Whether a JSON array's element ends at ``index``: a comma or the closing bracket follows."""
    while index < len(text) and text[index] in " \t\r\n":
        index += 1
    return index < len(text) and text[index] in ",]"
