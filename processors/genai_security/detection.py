"""What the ``genai_security`` processor does whatever signal it reads: find, decide the action, edit the text.

A span (``processors.genai_security``) and a log record (``processors.genai_security.logs``) hold
their text in different places; once each has turned its text into ``ContentText`` (a string, its
location and the holder to write an edit into), the rules, the scan budget, the system-prompt leak
check, the actions (mask, hash, drop) and the findings counter are the same, and live here once.
"""

from __future__ import annotations

import hashlib
import hmac
from collections import Counter

from opentelemetry.proto.trace.v1.trace_pb2 import Span

from collector.component import ComponentSettings
from collector.findings import finding_event
from processors.genai_security.config import Action, GenAiSecurityConfig
from processors.genai_security.content import OUTPUT_MESSAGES, ContentText
from processors.genai_security.generated_metrics import GenaiSecuritySelfMetrics
from processors.genai_security.rules import BUILTIN_RULES, Rule, compile_pattern
from processors.genai_security.scanner import Finding, Scanner, system_prompt_leak

HMAC_HEX_CHARS = 16
ACTION = "gen_ai.security.action"
LEAK_DETECTOR = "system_prompt_leak"
# The key of each finding's location: the attribute (or body path) it is in, and where in that.
LOCATION_ATTRIBUTE = "gen_ai.security.location.attribute"
LOCATION_NUMBERS = (
    "gen_ai.security.location.message",
    "gen_ai.security.location.part",
    "gen_ai.security.location.start",
    "gen_ai.security.location.end",
)
VALUE_HMAC = "gen_ai.security.value_hmac"

# One finding and the text it was found in.
Found = tuple[ContentText, Finding]


class Detection:
    """The rules, actions and key of one ``genai_security`` processor, and the findings it counts per batch."""

    def __init__(self, settings: ComponentSettings, config: GenAiSecurityConfig) -> None:
        self.config = config
        user_rules = tuple(
            Rule(r.id, r.category, r.severity, r.confidence, compile_pattern(r.pattern)) for r in config.rules
        )
        rules = tuple(rule for rule in BUILTIN_RULES if rule.id not in config.disabled) + user_rules
        self.scanner = Scanner(rules)
        self.secret_scanner = Scanner(rule for rule in rules if rule.category == "secret")
        self.check_leaks = LEAK_DETECTOR not in config.disabled
        self._key = config.hmac_key.reveal().encode()
        self._metrics = GenaiSecuritySelfMetrics(settings.telemetry)
        self._processor = str(settings.id)
        self.found: Counter[str] = Counter()  # findings per detector in the batch being edited
        # The attributes a finding's event shares with every other finding of its detector, built once.
        self._event_templates: dict[tuple[str, str, str, float], Span.Event] = {}

    def findings(self, texts: list[ContentText]) -> tuple[list[Found], bool]:
        """What every detector finds in ``texts`` (content, with roles), within the scan budget; and whether
        the budget ran out before the last text."""
        pieces, truncated = self.within_budget(texts)
        leaks = self.leaks(texts[: len(pieces)], pieces) if self.check_leaks else []
        # Most content holds no finding: one set pass over all its text says so without running any rule.
        if not leaks and not self.scanner.may_match("\n".join(pieces)):
            return [], truncated
        # strict=False: once the budget runs out, texts has more entries than pieces.
        scanned = zip(texts, pieces, strict=False)
        found = [(text, finding) for text, piece in scanned for finding in self.scanner.scan(piece, text.role)]
        found.extend(leaks)
        return found, truncated

    def secrets(self, texts: list[ContentText]) -> list[Found]:
        """What the secret detectors find in ``texts`` (strings outside message content)."""
        if not texts or not self.secret_scanner.may_match("\n".join(text.text for text in texts)):
            return []
        return [(text, finding) for text in texts for finding in self.secret_scanner.scan(text.text, text.role)]

    def within_budget(self, texts: list[ContentText]) -> tuple[list[str], bool]:
        """What of each text is scanned: all of it until ``max_scan_chars`` run out."""
        budget = self.config.max_scan_chars
        pieces: list[str] = []
        for text in texts:
            if len(text.text) > budget:
                if budget > 0:
                    pieces.append(text.text[:budget])
                return pieces, True
            budget -= len(text.text)
            pieces.append(text.text)
        return pieces, False

    def leaks(self, texts: list[ContentText], pieces: list[str]) -> list[Found]:
        """System-prompt sentences repeated in an output, within the scan budget (``pieces``)."""
        system = [piece for text, piece in zip(texts, pieces, strict=True) if text.role == "system"]
        if not system:
            return []
        leaks = []
        for text, piece in zip(texts, pieces, strict=True):
            if text.attribute == OUTPUT_MESSAGES and (leak := system_prompt_leak(piece, system)) is not None:
                leaks.append((text, leak))
        return leaks

    def event_template(self, finding: Finding) -> Span.Event:
        """The attributes every finding of this detector shares (detector, category, severity, confidence, action)."""
        key = (finding.rule_id, finding.category, finding.severity, finding.confidence)
        template = self._event_templates.get(key)
        if template is None:
            details = {ACTION: self.action(finding)}
            template = finding_event(finding.rule_id, finding.category, finding.severity, finding.confidence, details)
            self._event_templates[key] = template
        return template

    def location(self, text: ContentText, finding: Finding, into: Span.Event) -> None:
        """Add where ``finding`` is (and its keyed hash, when hashed) to ``into``'s attributes; count it."""
        attributes = into.attributes
        pair = attributes.add()
        pair.key = LOCATION_ATTRIBUTE
        pair.value.string_value = text.attribute
        for key, number in zip(LOCATION_NUMBERS, (text.message, text.part, finding.start, finding.end), strict=True):
            pair = attributes.add()
            pair.key = key
            pair.value.int_value = number
        if self.action(finding) == "hash":
            pair = attributes.add()
            pair.key = VALUE_HMAC
            pair.value.string_value = self.hmac(text.text[finding.start : finding.end])
        self.found[finding.rule_id] += 1

    def report(self) -> None:
        """Add the batch's findings to the self-metrics."""
        for detector, count in self.found.items():
            self._metrics.security_findings.add(count, processor=self._processor, detector=detector)
        self.found.clear()

    def edit_texts(self, findings: list[Found], drop_as_mask: bool = False) -> list[ContentText]:
        """Apply mask and hash to the texts holding ``findings`` (in their holders); the texts changed.

        Overlapping findings (a leaked sentence holding an e-mail address) are one edit over both.
        """
        edits: dict[int, list[tuple[Finding, str]]] = {}
        texts: dict[int, ContentText] = {}
        for text, finding in findings:
            action = self.action(finding)
            if action == "drop" and drop_as_mask:
                action = "mask"
            if action not in ("mask", "hash"):
                continue
            replacement = (
                f"[REDACTED:{finding.rule_id}]"
                if action == "mask"
                else f"[HMAC:{finding.rule_id}:{self.hmac(text.text[finding.start : finding.end])}]"
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

    def action(self, finding: Finding) -> Action:
        actions = self.config.actions
        return actions.get(finding.rule_id) or actions.get(finding.category) or self.config.default_action

    def hmac(self, value: str) -> str:
        return hmac.new(self._key, value.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()[:HMAC_HEX_CHARS]
