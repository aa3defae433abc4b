"""What a processor learnt about an LLM request's input messages, kept per trace for the trace's next request.

Each request of an agent carries the whole conversation so far, so reading every
input message of every request costs the square of the conversation's length.
When a request's JSON text begins with the previous request's text of the same
trace (all but its closing bracket, followed by a comma or the bracket), its
first messages are those same messages: what was learnt about them (their
hashes, for loop detection; that they hold nothing to find, for the security
scan) still holds, and only the messages after them need reading. Anything else
(another client, messages edited or dropped, spans out of order) is read in
full. Only a length and a hash of the text are kept, never the text.

The hash is Python's string hash: SipHash, keyed at random when the interpreter
starts, so nobody can craft a text that passes for another. Where the key is
fixed (``PYTHONHASHSEED`` set), ``UNGUESSABLE_HASHES`` is False, and a reader
whose result must hold against a crafted text (the security scan) reads every
message instead.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from typing import Generic, TypeVar

from collector import semconv
from processors.span_view import SpanView

Known = TypeVar("Known")
_JSON_SPACE = " \t\r\n"
# Whether str hashes are keyed at random (the interpreter's default), so that no text can be made to collide.
UNGUESSABLE_HASHES = os.environ.get("PYTHONHASHSEED", "random") == "random"


class MessageHistory(Generic[Known]):
    """Per trace (at most ``capacity``, the least recent forgotten first): the latest request's text and ``Known``."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        # Per trace: the length and hash of the latest request's text without its closing bracket, and what
        # was learnt about its messages.
        self._last: OrderedDict[bytes, tuple[int, int, Known]] = OrderedDict()

    def known_prefix(self, trace_id: bytes, view: SpanView) -> tuple[Known, int] | None:
        """What was learnt about the leading messages this span's request shares with the trace's previous one.

        With it, the length of the text they take; ``unseen_messages`` gives the JSON array of the others.
        None when the request shares no such leading text.
        """
        previous = self._last.get(trace_id)
        if previous is None:
            return None
        length, prefix_hash, known = previous
        text = view.text(semconv.INPUT_MESSAGES)
        if _value_ends(text, length) and view.prefix_hash(semconv.INPUT_MESSAGES, length) == prefix_hash:
            return known, length
        return None

    def remember(self, trace_id: bytes, view: SpanView, known: Known) -> None:
        """This span's request is the trace's latest; ``known`` is what was learnt about all its messages."""
        text = view.text(semconv.INPUT_MESSAGES)
        length = len(text.rstrip()) - 1
        if length < 0 or text[length] != "]":
            return
        self._last[trace_id] = (length, view.prefix_hash(semconv.INPUT_MESSAGES, length), known)
        self._last.move_to_end(trace_id)
        if len(self._last) > self._capacity:
            self._last.popitem(last=False)


def unseen_messages(text: str, known_length: int) -> str:
    """The JSON array of the messages of ``text`` past its first ``known_length`` characters (``known_prefix``).

    It parses (``collector.jsonvalues.parse_json``) exactly when all of ``text`` does: "" when anything but
    white space follows the closing bracket.
    """
    rest = text[known_length:].lstrip(_JSON_SPACE)
    if rest[0] == ",":
        return "[" + rest[1:]
    return "[]" if not rest[1:].strip(_JSON_SPACE) else ""


def _value_ends(text: str, index: int) -> bool:
    """Whether a JSON array's element ends at ``index``: a comma or the closing bracket follows."""
    while index < len(text) and text[index] in _JSON_SPACE:
        index += 1
    return index < len(text) and text[index] in ",]"
