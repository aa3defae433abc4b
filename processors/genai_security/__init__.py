"""The ``genai_security`` processor: secrets, personal data and prompt injection in GenAI message content.

It scans the normalised content attributes (``gen_ai.input.messages``,
``gen_ai.output.messages``, ``gen_ai.system_instructions``): text parts, tool-call
arguments and tool results, each with the role of its message (some detectors
only look at outputs, or at tool results). Each finding becomes a
``gen_ai.security.finding`` event on the span (``collector.findings``), with the detector, category,
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
from collections import Counter
from collections.abc import Collection
from typing import Any

from opentelemetry.proto.trace.v1.trace_pb2 import Span

from collector.component import ComponentSettings, Processor, ProcessorFactory, TracesConsumer
from collector.findings import add_to_summary, finding_event, worst_severity
from processors.genai_security.attributes import ROLE, attribute_places, attribute_texts
from processors.genai_security.config import Action, GenAiSecurityConfig
from processors.genai_security.content import (
    INPUT_MESSAGES,
    OUTPUT_MESSAGES,
    ContentText,
    content_documents,
    content_places,
    content_texts,
)
from processors.genai_security.generated_metrics import GenaiSecuritySelfMetrics
from processors.genai_security.rules import BUILTIN_RULES, Rule, compile_pattern
from processors.genai_security.scanner import Finding, Scanner, system_prompt_leak
from processors.message_history import UNGUESSABLE_HASHES, MessageHistory
from processors.span_view import BatchView, SpanView, ViewProcessor

HMAC_HEX_CHARS = 16
# Traces whose latest LLM request is remembered as holding nothing to find in its input messages.
CLEAN_INPUT_TRACES = 10_000
ACTION = "gen_ai.security.action"
LEAK_DETECTOR = "system_prompt_leak"


class GenAiSecurityProcessor(ViewProcessor):
    def __init__(self, settings: ComponentSettings, config: GenAiSecurityConfig, next_consumer: TracesConsumer) -> None:
        super().__init__(next_consumer)
        self._config = config
        user_rules = tuple(
            Rule(r.id, r.category, r.severity, r.confidence, compile_pattern(r.pattern)) for r in config.rules
        )
        rules = tuple(rule for rule in BUILTIN_RULES if rule.id not in config.disabled) + user_rules
        self._scanner = Scanner(rules)
        self._secret_scanner = Scanner(rule for rule in rules if rule.category == "secret")
        self._check_leaks = LEAK_DETECTOR not in config.disabled
        self._key = config.hmac_key.reveal().encode()
        self._metrics = GenaiSecuritySelfMetrics(settings.telemetry)
        self._processor = str(settings.id)
        self._found: Counter[str] = Counter()  # findings per detector in the batch being edited
        # The attributes a finding's event shares with every other finding of its detector, built once.
        self._event_templates: dict[tuple[str, str, str, float], Span.Event] = {}
        # Per trace, of the latest request whose text all held nothing to find: its input messages and their
        # characters. The trace's next request repeats them first; only the messages after them are scanned.
        self._clean_inputs: MessageHistory[tuple[int, int]] = MessageHistory(CLEAN_INPUT_TRACES)

    def edit(self, view: SpanView) -> None:
        # The input messages a request repeats from the trace's previous one, found clean then, are not read again.
        known = self._clean_inputs.known_prefix(view.span.trace_id, view) if UNGUESSABLE_HASHES else None
        documents = content_documents(view, known[1] if known is not None else 0)
        self._secrets_elsewhere(view, read_as_content=documents.keys())
        if not documents or self._clean(view, documents, known[0] if known is not None else (0, 0)):
            return
        if known is not None:
            documents = content_documents(view)  # the closer look reads every message
        texts = content_texts(content_places(documents))
        pieces, truncated = self._within_budget(texts)
        leaks = self._leaks(texts[: len(pieces)], pieces) if self._check_leaks else []
        # Most spans hold no finding: one set pass over all their text says so without running any rule.
        if leaks or self._scanner.may_match("\n".join(pieces)):
            # strict=False: once the budget runs out, texts has more entries than pieces.
            scanned = zip(texts, pieces, strict=False)
            findings = [(text, finding) for text, piece in scanned for finding in self._scanner.scan(piece, text.role)]
            findings.extend(leaks)
        else:
            findings = []
        if not (findings or truncated):
            return
        if truncated:
            view.set("gen_ai.security.scan_truncated", True)
        if findings:
            self._record(view, findings)
            self._redact(view, documents, findings)

    def _clean(self, view: SpanView, documents: dict[str, list[Any]], known: tuple[int, int]) -> bool:
        """Whether the content holds nothing to find (False: it needs the closer look), seen in the quickest way.

        Most spans hold no finding. Without system text there is no leak to look for, and with all the text
        within the budget one set pass over all of it says so, before any object is made for a part.
        ``known``: how many input messages, and characters of their text, were left out as clean already.
        """
        known_messages, known_chars = known
        places = content_places(documents)
        strings = [place[4] for place in places]
        if (
            known_chars + sum(map(len, strings)) > self._config.max_scan_chars
            or any(place[3] == "system" for place in places)
            or self._scanner.may_match("\n".join(strings))
        ):
            return False
        inputs = documents.get(INPUT_MESSAGES)
        if inputs is not None:
            chars = known_chars + sum(len(place[4]) for place in places if place[0] == INPUT_MESSAGES)
            self._clean_inputs.remember(view.span.trace_id, view, (known_messages + len(inputs), chars))
        return True

    def _secrets_elsewhere(self, view: SpanView, read_as_content: Collection[str]) -> None:
        """Secrets in the span's name and its other strings: recorded, and masked or hashed."""
        places = attribute_places(view, read_as_content)
        if not places or not self._secret_scanner.may_match("\n".join([place[2] for place in places])):
            return
        texts = attribute_texts(view, places)
        findings = [(text, finding) for text in texts for finding in self._secret_scanner.scan(text.text, ROLE)]
        if not findings:
            return
        self._record(view, findings)
        # Drop would take the whole attribute (or the name): a secret outside content is masked instead.
        self._edit_texts(findings, drop_as_mask=True)

    def finish(self, batch: BatchView) -> None:
        for detector, count in self._found.items():
            self._metrics.security_findings.add(count, processor=self._processor, detector=detector)
        self._found.clear()

    def _within_budget(self, texts: list[ContentText]) -> tuple[list[str], bool]:
        """What of each text is scanned: all of it until the span's ``max_scan_chars`` run out."""
        budget = self._config.max_scan_chars
        pieces: list[str] = []
        for text in texts:
            if len(text.text) > budget:
                if budget > 0:
                    pieces.append(text.text[:budget])
                return pieces, True
            budget -= len(text.text)
            pieces.append(text.text)
        return pieces, False

    def _leaks(self, texts: list[ContentText], pieces: list[str]) -> list[tuple[ContentText, Finding]]:
        """System-prompt sentences repeated in an output, within the scan budget (``pieces``)."""
        system = [piece for text, piece in zip(texts, pieces, strict=True) if text.role == "system"]
        if not system:
            return []
        leaks = []
        for text, piece in zip(texts, pieces, strict=True):
            if text.attribute == OUTPUT_MESSAGES and (leak := system_prompt_leak(piece, system)) is not None:
                leaks.append((text, leak))
        return leaks

    def _record(self, view: SpanView, findings: list[tuple[ContentText, Finding]]) -> None:
        span = view.span
        time = span.end_time_unix_nano or span.start_time_unix_nano
        for text, finding in findings:
            action = self._action(finding)
            event = span.events.add()
            event.CopyFrom(self._event_template(finding, action))
            event.time_unix_nano = time
            location = event.attributes
            pair = location.add()
            pair.key = "gen_ai.security.location.attribute"
            pair.value.string_value = text.attribute
            for key, number in (
                ("gen_ai.security.location.message", text.message),
                ("gen_ai.security.location.part", text.part),
                ("gen_ai.security.location.start", finding.start),
                ("gen_ai.security.location.end", finding.end),
            ):
                pair = location.add()
                pair.key = key
                pair.value.int_value = number
            if action == "hash":
                pair = location.add()
                pair.key = "gen_ai.security.value_hmac"
                pair.value.string_value = self._hmac(text.text[finding.start : finding.end])
            self._found[finding.rule_id] += 1
        add_to_summary(view, len(findings), worst_severity([finding.severity for _, finding in findings]))

    def _event_template(self, finding: Finding, action: Action) -> Span.Event:
        key = (finding.rule_id, finding.category, finding.severity, finding.confidence)
        template = self._event_templates.get(key)
        if template is None:
            template = finding_event(
                finding.rule_id, finding.category, finding.severity, finding.confidence, {ACTION: action}
            )
            self._event_templates[key] = template
        return template

    def _redact(
        self, view: SpanView, documents: dict[str, Any], findings: list[tuple[ContentText, Finding]]
    ) -> None:
        dropped = {text.attribute for text, finding in findings if self._action(finding) == "drop"}
        edited = self._edit_texts([(text, finding) for text, finding in findings if text.attribute not in dropped])
        for attribute in {text.attribute for text in edited} - dropped:
            try:
                view.replace_document(attribute, documents[attribute])
            except (RecursionError, ValueError, TypeError):
                dropped.add(attribute)  # nested too deep to write back: dropped rather than kept unmasked
        if dropped:
            view.remove(dropped)
            view.set("gen_ai.security.content_dropped", sorted(dropped))

    def _edit_texts(self, findings: list[tuple[ContentText, Finding]], drop_as_mask: bool = False) -> list[ContentText]:
        """Apply mask and hash to the texts holding ``findings`` (in their holders); the texts changed.

        Overlapping findings (a leaked sentence holding an e-mail address) are one edit over both.
        """
        edits: dict[int, list[tuple[Finding, str]]] = {}
        texts: dict[int, ContentText] = {}
        for text, finding in findings:
            action = self._action(finding)
            if action == "drop" and drop_as_mask:
                action = "mask"
            if action not in ("mask", "hash"):
                continue
            replacement = (
                f"[REDACTED:{finding.rule_id}]"
                if action == "mask"
                else f"[HMAC:{finding.rule_id}:{self._hmac(text.text[finding.start : finding.end])}]"
            )
            edits.setdefault(id(text), []).append((finding, replacement))
            texts[id(text)] = text
        for key, text in texts.items():
            # Overlapping findings merge into one edit over their union, named after the longest.
            spans: list[tuple[int, int, str, int]] = []  # start, end, replacement, length of its finding
            for finding, replacement in sorted(edits[key], key=lambda item: item[0].start):
                length = finding.end - finding.start
                if spans and finding.start < spans[-1][1]:
                    start, end, kept, kept_length = spans[-1]
                    if length > kept_length:
                        kept, kept_length = replacement, length
                    spans[-1] = (start, max(end, finding.end), kept, kept_length)
                else:
                    spans.append((finding.start, finding.end, replacement, length))
            pieces: list[str] = []
            cursor = 0
            for start, end, replacement, _ in spans:
                pieces += [text.text[cursor:start], replacement]
                cursor = end
            pieces.append(text.text[cursor:])
            text.replace("".join(pieces))
        return list(texts.values())

    def _action(self, finding: Finding) -> Action:
        actions = self._config.actions
        return actions.get(finding.rule_id) or actions.get(finding.category) or self._config.default_action

    def _hmac(self, value: str) -> str:
        return hmac.new(self._key, value.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()[:HMAC_HEX_CHARS]


def create_processor(
    settings: ComponentSettings, config: GenAiSecurityConfig, next_consumer: TracesConsumer
) -> Processor:
    return GenAiSecurityProcessor(settings, config, next_consumer)


factory = ProcessorFactory(
    type="genai_security", config_type=GenAiSecurityConfig, create=create_processor, runs_in="worker"
)
