"""LLM input messages hashed once per conversation, not once per request.

Each request of an agent carries the whole conversation so far, so hashing
every input message of every request costs the square of the conversation's
length. When a request's JSON text begins with the previous request's text of
the same trace (all but its closing bracket, followed by a comma or the
bracket), its first messages are those same messages: their hashes are reused
and only the new ones are parsed and hashed. Anything else (another client,
messages edited or dropped, spans out of order) is read in full.
"""

from __future__ import annotations

from collections import OrderedDict


class InputHistory:
    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        # Per trace: the length and hash of the previous request's text without its closing bracket,
        # and the hashes of its messages.
        self._last: OrderedDict[bytes, tuple[int, int, tuple[int, ...]]] = OrderedDict()

    def known_prefix(self, trace_id: bytes, text: str) -> tuple[tuple[int, ...], str]:
        """The hashes of the leading messages ``text`` shares with the trace's previous request, and the rest.

        The rest is the JSON array of the messages not seen before (all of ``text`` when none were).
        """
        previous = self._last.get(trace_id)
        if previous is not None:
            length, prefix_hash, hashes = previous
            if _value_ends(text, length) and hash(text[:length]) == prefix_hash:
                rest = text[length:].lstrip()
                return hashes, "[" + rest[1:] if rest[0] == "," else "[]"
        return (), text

    def remember(self, trace_id: bytes, text: str, hashes: tuple[int, ...]) -> None:
        """``text`` was the trace's latest request, its messages hashing to ``hashes``."""
        body = text.rstrip()
        if not body.endswith("]"):
            return
        self._last[trace_id] = (len(body) - 1, hash(body[:-1]), hashes)
        self._last.move_to_end(trace_id)
        if len(self._last) > self._capacity:
            self._last.popitem(last=False)


def _value_ends(text: str, index: int) -> bool:
    """Whether a JSON array's element ends at ``index``: a comma or the closing bracket follows."""
    while index < len(text) and text[index] in " \t\r\n":
        index += 1
    return index < len(text) and text[index] in ",]"
