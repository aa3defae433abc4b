"""Secrets outside message content: the span's name, every other string it carries, and unreadable content.

Keys turn up where no message is: an ``Authorization`` header an instrumentation
recorded (a string, an array, a key-value list), a key in a query string
(``url.full``) or a URL path (a pass-through call's span name and ``url.path``),
a key sent as a model name and echoed back, an event's attributes. A content
attribute that is not a readable list of messages (plain text, JSON cut short
by an SDK's length limit) is read here too, as text. Only the secret detectors
look here. Each string becomes a ``ContentText`` whose holder writes an edit
straight into the span, so the processor records and masks these as it does
message parts.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, MutableMapping
from typing import Any

from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from collector.findings import FINDING_EVENT
from processors.genai_security.content import ContentText
from processors.span_view import STRING, SpanView

SPAN_NAME = "span.name"  # the location of a finding in the span's name
ROLE = "attribute"
_FIELD = "value"
_TEXT_KINDS = frozenset({"bytes_value", "int_value"})


class _OneText(MutableMapping[str, Any]):
    """A one-entry mapping (``ContentText``'s holder) whose one value is a text kept somewhere else."""

    def __delitem__(self, key: str) -> None:
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter((_FIELD,))

    def __len__(self) -> int:
        return 1


class _Slot(_OneText):
    """A one-entry mapping whose value is a string inside the span: setting it edits the span (and its view)."""

    def __init__(self, view: SpanView, value: AnyValue | None, key: str | None) -> None:
        self._view = view
        self._value = value  # None: the span's name
        self._key = key  # the span attribute the value is in, if it is in one

    def __getitem__(self, key: str) -> Any:
        return self._view.span.name if self._value is None else text_of(self._value)

    def __setitem__(self, key: str, text: Any) -> None:
        if self._value is None:
            self._view.span.name = str(text)
            return
        write_text(self._value, str(text))
        if self._key is not None:
            self._view.changed(self._key)


# One string of the span: its label (attribute key, event attribute), index in an array, text, the AnyValue
# holding it, and the span attribute it is in (None: the name or an event's). An attribute's own string
# leaves the AnyValue to be looked up only if it is edited; the span's name has neither.
Place = tuple[str, int, str, AnyValue | None, str | None]


def attribute_places(view: SpanView, read_as_content: Collection[str]) -> list[Place]:
    """Every string of the span but the content attributes read as messages (``read_as_content``)."""
    span = view.span
    places: list[Place] = [(SPAN_NAME, 0, span.name, None, None)] if span.name else []
    if view.unique_keys():  # from the view: strings are read already, only arrays and key-value lists are walked
        scalars = view.scalars
        for key, text in view.texts.items():
            if key in read_as_content:
                continue
            if text:
                places.append((key, 0, text, None, key))
            elif key not in scalars:  # an empty string, an array, a key-value list, or no value at all
                kind = view.kind(key)
                if kind == STRING:
                    places.append((key, 0, text, None, key))
                elif (kind == "array_value" or kind == "kvlist_value") and (value := view.value(key)) is not None:
                    places.extend(_strings(key, value, key))
    else:  # a key listed twice: every value is read, not only the one the index keeps
        for pair in span.attributes:
            if pair.key not in read_as_content:
                places.extend(_strings(pair.key, pair.value, pair.key))
    for number, event in enumerate(span.events):
        if event.name == FINDING_EVENT:
            continue
        for pair in event.attributes:
            places.extend(_strings(f"event[{number}].{pair.key}", pair.value, None))
    return places


def attribute_texts(view: SpanView, places: list[Place]) -> list[ContentText]:
    """The places as ``ContentText``, each writing an edit straight into the span."""
    texts = []
    for label, index, text, value, key in places:
        if value is None and key is not None:
            value = view.value(key)
        texts.append(ContentText(label, index, 0, ROLE, text, _Slot(view, value, key), _FIELD))
    return texts


def _strings(label: str, value: AnyValue, key: str | None, index: int = 0, every_kind: bool = False) -> Iterator[Place]:
    """The strings in ``value``, through arrays and key-value lists; with ``every_kind``, also the text of bytes
    (when UTF-8) and integers (a card or phone number sent as a number), which a log body may be."""
    kind = value.WhichOneof("value")
    if kind == "string_value":
        yield label, index, value.string_value, value, key
    elif kind == "array_value":
        for position, item in enumerate(value.array_value.values):
            yield from _strings(label, item, key, position, every_kind)
    elif kind == "kvlist_value":
        for pair in value.kvlist_value.values:
            yield from _strings(f"{label}.{pair.key}", pair.value, key, 0, every_kind)
    elif every_kind and kind in _TEXT_KINDS and (text := text_of(value)):
        yield label, index, text, value, key


def value_places(label: str, value: AnyValue) -> list[Place]:
    """Every text in ``value`` of any kind (see ``_strings``), labelled from ``label`` down its key-value lists."""
    return list(_strings(label, value, None, every_kind=True))


def value_texts(places: list[Place], role: str) -> list[ContentText]:
    """``value_places`` as ``ContentText`` of ``role``, each writing an edit straight into its AnyValue."""
    return [
        ContentText(label, 0, index, role, text, ValueText(value), _FIELD)
        for label, index, text, value, _ in places
        if value is not None
    ]


def text_of(value: AnyValue) -> str:
    """The text an AnyValue holds: a string, bytes read as UTF-8 ("" when they are not), an integer's digits."""
    kind = value.WhichOneof("value")
    if kind == "bytes_value":
        try:
            return value.bytes_value.decode("utf-8")
        except UnicodeDecodeError:
            return ""
    if kind == "int_value":
        return str(value.int_value)
    return value.string_value


def write_text(value: AnyValue, text: str) -> None:
    """Write an edited text back into its AnyValue: bytes stay bytes, anything else becomes a string."""
    if value.WhichOneof("value") == "bytes_value":
        value.bytes_value = text.encode("utf-8", "surrogatepass")
    else:
        value.string_value = text


class ValueText(_OneText):
    """A one-entry mapping whose value is the text of an AnyValue: setting it edits the AnyValue (``write_text``)."""

    def __init__(self, value: AnyValue) -> None:
        self._value = value

    def __getitem__(self, key: str) -> Any:
        return text_of(self._value)

    def __setitem__(self, key: str, text: Any) -> None:
        write_text(self._value, str(text))
