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

from opentelemetry.proto.trace.v1.trace_pb2 import Span

from collector.jsonvalues import parse_json

INPUT_MESSAGES = "gen_ai.input.messages"
OUTPUT_MESSAGES = "gen_ai.output.messages"
SYSTEM_INSTRUCTIONS = "gen_ai.system_instructions"
CONTENT_ATTRIBUTES = (INPUT_MESSAGES, OUTPUT_MESSAGES, SYSTEM_INSTRUCTIONS)

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


def content_documents(span: Span) -> dict[str, list[Any]]:
    """The span's content attributes that hold a JSON list, decoded, by attribute key."""
    documents: dict[str, list[Any]] = {}
    for pair in span.attributes:
        if pair.key in CONTENT_ATTRIBUTES:
            document = parse_json(pair.value.string_value)  # "" when the value is not a string: not JSON
            if isinstance(document, list):
                documents[pair.key] = document
    return documents


def content_texts(documents: dict[str, list[Any]]) -> list[ContentText]:
    """Every string worth scanning, in attribute, message and part order."""
    texts: list[ContentText] = []
    for attribute, document in documents.items():
        if attribute == SYSTEM_INSTRUCTIONS:
            for index, part in enumerate(document):
                if isinstance(part, dict) and isinstance(part.get("content"), str):
                    texts.append(ContentText(attribute, 0, index, "system", part["content"], part, "content"))
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
                        value = json.dumps(value, ensure_ascii=False)
                    except (RecursionError, ValueError, TypeError):
                        continue  # nested deeper than JSON can be written: not scanned, never written back
                part_role = "tool" if field == "response" else role
                texts.append(ContentText(attribute, message_index, part_index, part_role, value, part, field))
    return texts
