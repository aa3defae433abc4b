"""Where the scannable strings are in the normalised GenAI content attributes, and how to write an edit back.

The content attributes hold JSON: ``gen_ai.input.messages`` and
``gen_ai.output.messages`` are lists of messages with a role and parts,
``gen_ai.system_instructions`` a list of parts. Text and reasoning parts carry
``content``, tool calls ``arguments``, tool results ``response``; an object
(tool arguments, results) is scanned as its JSON and written back as text when
edited.
"""

from __future__ import annotations

import json
from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Any

from collector.jsonvalues import parse_json
from processors.message_history import unseen_messages
from processors.span_view import SpanView

INPUT_MESSAGES = "gen_ai.input.messages"
OUTPUT_MESSAGES = "gen_ai.output.messages"
SYSTEM_INSTRUCTIONS = "gen_ai.system_instructions"
CONTENT_ATTRIBUTES = (INPUT_MESSAGES, OUTPUT_MESSAGES, SYSTEM_INSTRUCTIONS)

# An object (tool arguments, a result) as the text that is scanned: json.dumps(value, ensure_ascii=False), without
# making an encoder for each.
_ENCODER = json.JSONEncoder(ensure_ascii=False)
# The field of each part type that holds what a person or a model wrote.
_TEXT_FIELDS = {"text": "content", "reasoning": "content", "tool_call": "arguments", "tool_call_response": "response"}


@dataclass(slots=True)
class ContentText:
    """One scannable string inside a content attribute, with its location and the object that holds it."""

    attribute: str
    message: int
    part: int
    role: str
    text: str
    holder: MutableMapping[str, Any]
    field: str

    def replace(self, edited: str) -> None:
        self.holder[self.field] = edited


def content_documents(view: SpanView, known_inputs: int = 0) -> dict[str, list[Any]]:
    """The span's content attributes that hold a JSON list, decoded, by attribute key in the span's order.

    With ``known_inputs`` (a length of the input messages' text, from a ``MessageHistory``), the input
    messages are only those past that many characters.
    """
    documents: dict[str, list[Any]] = {}
    texts = view.texts
    if not any(key in texts for key in CONTENT_ATTRIBUTES):
        return documents
    for key in texts:
        if key in CONTENT_ATTRIBUTES:
            if key == INPUT_MESSAGES and known_inputs:
                document = parse_json(unseen_messages(texts[key], known_inputs))
            else:
                document = view.document(key)  # None when the value is not a string of JSON
            if isinstance(document, list):
                documents[key] = document
    return documents


# One scannable string: attribute, message index, part index, role, text, the object holding it, its field.
Place = tuple[str, int, int, str, str, MutableMapping[str, Any], str]


def content_places(documents: dict[str, list[Any]]) -> list[Place]:
    """Every string worth scanning, in attribute, message and part order (``content_texts``, without objects)."""
    places: list[Place] = []
    add = places.append
    for attribute, document in documents.items():
        if attribute == SYSTEM_INSTRUCTIONS:
            for index, part in enumerate(document):
                if isinstance(part, dict) and isinstance(part.get("content"), str):
                    add((attribute, 0, index, "system", part["content"], part, "content"))
            continue
        default_role = "assistant" if attribute == OUTPUT_MESSAGES else "user"
        for message_index, message in enumerate(document):
            if not isinstance(message, dict):
                continue
            parts = message.get("parts")
            if not isinstance(parts, list):
                continue
            role = str(message.get("role") or default_role)
            for part_index, part in enumerate(parts):
                if not isinstance(part, dict):
                    continue
                kind = part.get("type")
                field = _TEXT_FIELDS.get(kind) if isinstance(kind, str) else None
                if field is None:
                    continue
                value = part.get(field)
                if value is None:
                    continue
                if not isinstance(value, str):
                    try:
                        value = _ENCODER.encode(value)
                    except (RecursionError, ValueError, TypeError):
                        continue  # nested deeper than JSON can be written: not scanned, never written back
                add((attribute, message_index, part_index, "tool" if field == "response" else role, value, part, field))
    return places


def content_texts(places: list[Place]) -> list[ContentText]:
    """The places as ``ContentText``: for the spans whose text needs a closer look."""
    return [ContentText(*place) for place in places]
