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

from collections.abc import Collection
from typing import Any

from collector.component import ComponentSettings, Processor, ProcessorFactory, TracesConsumer
from collector.findings import add_to_summary, worst_severity
from processors.genai_security.attributes import attribute_places, attribute_texts
from processors.genai_security.config import GenAiSecurityConfig
from processors.genai_security.content import (
    INPUT_MESSAGES,
    content_documents,
    content_places,
    content_texts,
)
from processors.genai_security.detection import Detection, Found
from processors.genai_security.logs import create_logs_processor
from processors.message_history import UNGUESSABLE_HASHES, MessageHistory
from processors.span_view import BatchView, SpanView, ViewProcessor

# Traces whose latest LLM request is remembered as holding nothing to find in its input messages.
CLEAN_INPUT_TRACES = 10_000


class GenAiSecurityProcessor(ViewProcessor):
    def __init__(self, settings: ComponentSettings, config: GenAiSecurityConfig, next_consumer: TracesConsumer) -> None:
        super().__init__(next_consumer)
        self._config = config
        self._detection = Detection(settings, config)
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
        findings, truncated = self._detection.findings(content_texts(content_places(documents)))
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
            or self._detection.scanner.may_match("\n".join(strings))
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
        if not places or not self._detection.secret_scanner.may_match("\n".join([place[2] for place in places])):
            return
        findings = self._detection.secrets(attribute_texts(view, places))
        if not findings:
            return
        self._record(view, findings)
        # Drop would take the whole attribute (or the name): a secret outside content is masked instead.
        self._detection.edit_texts(findings, drop_as_mask=True)

    def finish(self, batch: BatchView) -> None:
        self._detection.report()

    def _record(self, view: SpanView, findings: list[Found]) -> None:
        span = view.span
        time = span.end_time_unix_nano or span.start_time_unix_nano
        for text, finding in findings:
            event = span.events.add()
            event.CopyFrom(self._detection.event_template(finding))
            event.time_unix_nano = time
            self._detection.location(text, finding, event)
        add_to_summary(view, len(findings), worst_severity([finding.severity for _, finding in findings]))

    def _redact(self, view: SpanView, documents: dict[str, Any], findings: list[Found]) -> None:
        dropped = {text.attribute for text, finding in findings if self._detection.action(finding) == "drop"}
        edited = self._detection.edit_texts(
            [(text, finding) for text, finding in findings if text.attribute not in dropped]
        )
        for attribute in {text.attribute for text in edited} - dropped:
            try:
                view.replace_document(attribute, documents[attribute])
            except (RecursionError, ValueError, TypeError):
                dropped.add(attribute)  # nested too deep to write back: dropped rather than kept unmasked
        if dropped:
            view.remove(dropped)
            view.set("gen_ai.security.content_dropped", sorted(dropped))


def create_processor(
    settings: ComponentSettings, config: GenAiSecurityConfig, next_consumer: TracesConsumer
) -> Processor:
    return GenAiSecurityProcessor(settings, config, next_consumer)


factory = ProcessorFactory(
    type="genai_security",
    config_type=GenAiSecurityConfig,
    create=create_processor,
    runs_in="worker",
    create_logs=create_logs_processor,
)
