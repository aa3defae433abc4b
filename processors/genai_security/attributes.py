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
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from collector.findings import FINDING_EVENT
from processors.genai_security.content import ContentText

SPAN_NAME = "span.name"  # the location of a finding in the span's name
ROLE = "attribute"
_FIELD = "value"


class _Slot(MutableMapping[str, Any]):
    """A one-entry mapping whose value is a string inside the span: setting it edits the span."""

    def __init__(self, value: AnyValue | None = None, span: Span | None = None) -> None:
        self._value = value
        self._span = span

    def __getitem__(self, key: str) -> Any:
        return self._span.name if self._span is not None else self._value.string_value  # type: ignore[union-attr]

    def __setitem__(self, key: str, text: Any) -> None:
        if self._span is not None:
            self._span.name = str(text)
        elif self._value is not None:
            self._value.string_value = str(text)

    def __delitem__(self, key: str) -> None:
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter((_FIELD,))

    def __len__(self) -> int:
        return 1


def attribute_texts(span: Span, read_as_content: Collection[str]) -> list[ContentText]:
    """Every string of the span but the content attributes read as messages (``read_as_content``)."""
    texts = [ContentText(SPAN_NAME, 0, 0, ROLE, span.name, _Slot(span=span), _FIELD)] if span.name else []
    for pair in span.attributes:
        if pair.key not in read_as_content:
            texts.extend(_strings(pair.key, pair.value))
    for number, event in enumerate(span.events):
        if event.name == FINDING_EVENT:
            continue
        for pair in event.attributes:
            texts.extend(_strings(f"event[{number}].{pair.key}", pair.value))
    return texts


def _strings(label: str, value: AnyValue, index: int = 0) -> Iterator[ContentText]:
    kind = value.WhichOneof("value")
    if kind == "string_value":
        yield ContentText(label, index, 0, ROLE, value.string_value, _Slot(value), _FIELD)
    elif kind == "array_value":
        for position, item in enumerate(value.array_value.values):
            yield from _strings(label, item, position)
    elif kind == "kvlist_value":
        for pair in value.kvlist_value.values:
            yield from _strings(f"{label}.{pair.key}", pair.value)
