"""Secrets outside message content: every other string attribute of a span, and the span's name.

Keys turn up where no message is: an ``Authorization`` header an instrumentation
recorded, a key in a query string (``url.full``) or a URL path (a pass-through
call's span name and ``url.path``), a key sent as a model name and echoed back.
Only the secret detectors look here (personal data and injections in a URL or
a header are not the content this processor reasons about). Each string is one
``ContentText`` whose holder is a one-entry dict, so the processor's recording
and redaction work on it as on message parts; ``write_back`` then puts edited
values into the span.
"""

from __future__ import annotations

from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from processors.genai_security.content import CONTENT_ATTRIBUTES, ContentText

SPAN_NAME = "span.name"  # the location of a finding in the span's name
ROLE = "attribute"
_VALUE = "value"


def attribute_texts(span: Span) -> list[ContentText]:
    """The span's name and every string (or string in an array) of its non-content attributes."""
    texts = [ContentText(SPAN_NAME, 0, 0, ROLE, span.name, {_VALUE: span.name}, _VALUE)] if span.name else []
    for pair in span.attributes:
        if pair.key in CONTENT_ATTRIBUTES:
            continue
        value = pair.value
        kind = value.WhichOneof("value")
        if kind == "string_value":
            text = value.string_value
            texts.append(ContentText(pair.key, 0, 0, ROLE, text, {_VALUE: text}, _VALUE))
        elif kind == "array_value":
            for index, item in enumerate(value.array_value.values):
                if item.WhichOneof("value") == "string_value":
                    text = item.string_value
                    texts.append(ContentText(pair.key, index, 0, ROLE, text, {_VALUE: text}, _VALUE))
    return texts


def write_back(span: Span, edited: list[ContentText]) -> None:
    """Put the edited values of ``edited`` (from ``attribute_texts``) back into the span."""
    for text in edited:
        new = str(text.holder[_VALUE])
        if text.attribute == SPAN_NAME:
            span.name = new
            continue
        for pair in span.attributes:
            if pair.key == text.attribute:
                _set(pair.value, text.message, new)


def _set(value: AnyValue, index: int, new: str) -> None:
    if value.WhichOneof("value") == "array_value":
        value.array_value.values[index].string_value = new
    else:
        value.string_value = new
