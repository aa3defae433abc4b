"""The ``genai_security`` processor: secrets, personal data and prompt injection in GenAI message content.

It scans the normalised content attributes (``gen_ai.input.messages``,
``gen_ai.output.messages``, ``gen_ai.system_instructions``): text parts, tool-call
arguments and tool results, each with the role of its message (some detectors
only look at outputs, or at tool results). Each finding becomes a
``gen_ai.security.finding`` event on the span, with the detector, category,
severity, confidence and location (attribute, message, part, character
offsets); the span gets ``gen_ai.security.findings.count`` and
``gen_ai.security.findings.max_severity``.

Then the configured action runs on the content, before any exporter sees it:
keep, mask (``[REDACTED:<detector>]``), hash (a keyed HMAC, never a plain hash)
or drop the attribute. Run it after ``genai_normalize``, which puts every
dialect's content into these attributes.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any

from opentelemetry.proto.trace.v1.trace_pb2 import Span

from collector.component import ComponentSettings, Processor, ProcessorFactory, TracesConsumer
from collector.jsonvalues import parse_json
from collector.pdata import SpanAttributes, set_any_value
from processors.genai_security.config import Action, GenAiSecurityConfig
from processors.genai_security.rules import BUILTIN_RULES, SEVERITY_RANK, Rule, compile_pattern
from processors.genai_security.scanner import Finding, Scanner, system_prompt_leak
from processors.span_editor import SpanEditor

INPUT_MESSAGES = "gen_ai.input.messages"
OUTPUT_MESSAGES = "gen_ai.output.messages"
SYSTEM_INSTRUCTIONS = "gen_ai.system_instructions"
CONTENT_ATTRIBUTES = (INPUT_MESSAGES, OUTPUT_MESSAGES, SYSTEM_INSTRUCTIONS)
EVENT_NAME = "gen_ai.security.finding"
HMAC_HEX_CHARS = 16


@dataclass
class _Text:
    """One scannable string inside a content attribute, and how to put an edited version back."""

    attribute: str
    message: int
    part: int
    role: str
    text: str
    holder: dict[str, Any]
    field: str  # an object (tool arguments, results) is scanned as its JSON, and written back as text if edited


class GenAiSecurityProcessor(SpanEditor):
    def __init__(self, settings: ComponentSettings, config: GenAiSecurityConfig, next_consumer: TracesConsumer) -> None:
        super().__init__(next_consumer)
        self._config = config
        user_rules = tuple(
            Rule(r.id, r.category, r.severity, r.confidence, compile_pattern(r.pattern)) for r in config.rules
        )
        self._scanner = Scanner(tuple(rule for rule in BUILTIN_RULES if rule.id not in config.disabled) + user_rules)
        self._key = config.hmac_key.reveal().encode()
        self._telemetry = settings.telemetry
        self._labels = {"processor": str(settings.id)}

    def edit(self, span: Span) -> None:
        if not any(pair.key in CONTENT_ATTRIBUTES for pair in span.attributes):
            return
        attributes = SpanAttributes(span)
        documents = {key: parse_json(attributes.get(key)) for key in CONTENT_ATTRIBUTES if key in attributes}
        texts = list(_texts(documents))
        findings: list[tuple[_Text, Finding]] = []
        budget = self._config.max_scan_chars
        for text in texts:
            if budget <= 0:
                attributes.set("gen_ai.security.scan_truncated", True)
                break
            scanned = text.text[:budget]
            budget -= len(scanned)
            findings.extend((text, finding) for finding in self._scanner.scan(scanned, text.role))
        system = [t.text for t in texts if t.attribute == SYSTEM_INSTRUCTIONS or t.role == "system"]
        for text in texts:
            if text.attribute == OUTPUT_MESSAGES and system and "system_prompt_leak" not in self._config.disabled:
                leak = system_prompt_leak(text.text, system)
                if leak is not None:
                    findings.append((text, leak))
        if not findings:
            return
        self._record(span, attributes, findings)
        self._redact(attributes, documents, findings)

    def _record(self, span: Span, attributes: SpanAttributes, findings: list[tuple[_Text, Finding]]) -> None:
        for text, finding in findings:
            event = span.events.add()
            event.name = EVENT_NAME
            event.time_unix_nano = span.end_time_unix_nano or span.start_time_unix_nano
            values: dict[str, Any] = {
                "gen_ai.security.detector.id": finding.rule_id,
                "gen_ai.security.category": finding.category,
                "gen_ai.security.severity": finding.severity,
                "gen_ai.security.confidence": finding.confidence,
                "gen_ai.security.action": self._action(finding),
                "gen_ai.security.location.attribute": text.attribute,
                "gen_ai.security.location.message": text.message,
                "gen_ai.security.location.part": text.part,
                "gen_ai.security.location.start": finding.start,
                "gen_ai.security.location.end": finding.end,
            }
            if values["gen_ai.security.action"] == "hash":
                values["gen_ai.security.value_hmac"] = self._hmac(text.text[finding.start : finding.end])
            for key, value in values.items():
                pair = event.attributes.add()
                pair.key = key
                set_any_value(pair.value, value)
            self._telemetry.add("genai_security_findings", 1, detector=finding.rule_id, **self._labels)
        attributes.set("gen_ai.security.findings.count", len(findings))
        worst = max(findings, key=lambda item: SEVERITY_RANK[item[1].severity])[1].severity
        attributes.set("gen_ai.security.findings.max_severity", worst)

    def _redact(
        self, attributes: SpanAttributes, documents: dict[str, Any], findings: list[tuple[_Text, Finding]]
    ) -> None:
        dropped: set[str] = set()
        edits: dict[int, list[tuple[Finding, str]]] = {}
        texts: dict[int, _Text] = {}
        for text, finding in findings:
            action = self._action(finding)
            if action == "drop":
                dropped.add(text.attribute)
            elif action in ("mask", "hash"):
                replacement = (
                    f"[REDACTED:{finding.rule_id}]"
                    if action == "mask"
                    else f"[HMAC:{finding.rule_id}:{self._hmac(text.text[finding.start : finding.end])}]"
                )
                edits.setdefault(id(text), []).append((finding, replacement))
                texts[id(text)] = text
        for key, text in texts.items():
            edited = text.text
            for finding, replacement in sorted(edits[key], key=lambda item: item[0].start, reverse=True):
                edited = edited[: finding.start] + replacement + edited[finding.end :]
            text.holder[text.field] = edited
        changed = {text.attribute for text in texts.values()} - dropped
        for attribute in changed:
            attributes.set(attribute, json.dumps(documents[attribute], ensure_ascii=False))
        if dropped:
            attributes.remove(dropped)
            attributes.set("gen_ai.security.content_dropped", sorted(dropped))

    def _action(self, finding: Finding) -> Action:
        actions = self._config.actions
        return actions.get(finding.rule_id) or actions.get(finding.category) or self._config.default_action

    def _hmac(self, value: str) -> str:
        return hmac.new(self._key, value.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()[:HMAC_HEX_CHARS]


def _texts(documents: dict[str, Any]) -> Any:
    """Every string worth scanning, with where it lives (so an edit can be written back)."""
    for attribute, document in documents.items():
        if not isinstance(document, list):
            continue
        if attribute == SYSTEM_INSTRUCTIONS:
            for index, part in enumerate(document):
                if isinstance(part, dict) and isinstance(part.get("content"), str):
                    yield _Text(attribute, 0, index, "system", part["content"], part, "content")
            continue
        for message_index, message in enumerate(document):
            if not isinstance(message, dict):
                continue
            role = str(message.get("role") or ("assistant" if attribute == OUTPUT_MESSAGES else "user"))
            for part_index, part in enumerate(message.get("parts") or []):
                if not isinstance(part, dict):
                    continue
                kind = part.get("type")
                field = {"text": "content", "reasoning": "content", "tool_call": "arguments"}.get(str(kind))
                if kind == "tool_call_response":
                    field, role = "response", "tool"
                if field is None or field not in part:
                    continue
                value = part[field]
                if isinstance(value, str):
                    yield _Text(attribute, message_index, part_index, role, value, part, field)
                elif value is not None:
                    as_text = json.dumps(value, ensure_ascii=False)
                    yield _Text(attribute, message_index, part_index, role, as_text, part, field)


def create_processor(
    settings: ComponentSettings, config: GenAiSecurityConfig, next_consumer: TracesConsumer
) -> Processor:
    return GenAiSecurityProcessor(settings, config, next_consumer)


factory = ProcessorFactory(type="genai_security", config_type=GenAiSecurityConfig, create=create_processor)
