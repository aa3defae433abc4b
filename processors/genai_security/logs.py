"""The ``genai_security`` processor in a logs pipeline: the same detectors and actions on log records.

Where a log record holds text, and which detectors read it, follows what the processor does on a span:

- A GenAI event's content (every ``gen_ai.*`` event but a finding) is read by every detector, as
  message content is on a span: the content attributes (``gen_ai.input.messages``,
  ``gen_ai.output.messages``, ``gen_ai.system_instructions``; structured, as events carry them, or
  JSON text) part by part with each message's role, and the body (the per-message events of the
  older conventions keep their message there) with the role its event names.
- Everything else, the body of any other record and every other attribute, is read by the secret
  detectors only, as a span's other strings are.

A body or attribute of any AnyValue kind is walked through its arrays and key-value lists; strings,
bytes holding UTF-8 and integers are read as text, and masked or hashed in place (bytes stay bytes,
an integer holding a finding becomes the masked string). ``drop`` removes the content attribute, or
the body, that held the finding (and names it in ``gen_ai.security.content_dropped``); a secret
outside content is masked instead, as on spans.

Findings: a log record has no events of its own, so each finding becomes a log-based event, a
``gen_ai.security.finding`` record beside the one it was found in (the same trace context and
time), with the attributes a span's finding event has; its severity number follows the finding's
severity. The record found in gets ``gen_ai.security.findings.count`` and
``gen_ai.security.findings.max_severity``, and ``gen_ai.security.scan_truncated`` when its content
went beyond ``max_scan_chars``. The system-prompt leak check needs the system text and the output
in one record: it runs on ``operation.details`` events, not across per-message events.
"""

from __future__ import annotations

from typing import Any

from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, LogsData, SeverityNumber
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from collector.component import ComponentSettings, Host, LogsConsumer, Processor
from collector.findings import FINDING_EVENT, add_to_summary, worst_severity
from collector.jsonvalues import dump_json, parse_json
from collector.pdata import SpanAttributes, any_value, set_any_value
from processors.genai_normalize.events import MESSAGE_EVENT_ROLES, event_name, record_attributes
from processors.genai_security.attributes import ROLE, value_places, value_texts
from processors.genai_security.config import GenAiSecurityConfig
from processors.genai_security.content import CONTENT_ATTRIBUTES, ContentText, content_places, content_texts
from processors.genai_security.detection import Detection, Found
from processors.genai_security.scanner import Finding

BODY = "body"  # the location of a finding in a record's body (and the name of a dropped body)
GENAI_EVENT_PREFIX = "gen_ai."
CONTENT_ROLE = "user"  # the role of body content whose event names none
# A finding's severity as the severity of the log record that reports it.
FINDING_SEVERITY_NUMBERS: dict[str, SeverityNumber.ValueType] = {
    "low": SeverityNumber.SEVERITY_NUMBER_INFO,
    "medium": SeverityNumber.SEVERITY_NUMBER_WARN,
    "high": SeverityNumber.SEVERITY_NUMBER_ERROR,
    "critical": SeverityNumber.SEVERITY_NUMBER_FATAL,
}
_SEVERITY_TEXTS: dict[SeverityNumber.ValueType, str] = {
    number: name.removeprefix("SEVERITY_NUMBER_") for name, number in SeverityNumber.items()
}


class GenAiSecurityLogsProcessor:
    """genai_security for one logs pipeline (in the main process, as every logs processor runs)."""

    def __init__(self, settings: ComponentSettings, config: GenAiSecurityConfig, next_consumer: LogsConsumer) -> None:
        self._detection = Detection(settings, config)
        self._next = next_consumer

    async def start(self, host: Host) -> None:
        pass

    async def consume(self, logs: LogsData) -> None:
        try:
            for resource_logs in logs.resource_logs:
                for scope_logs in resource_logs.scope_logs:
                    # Every record the batch came with is scanned, one that calls itself a finding too (a client
                    # may send any name); the finding records made here are added after, unscanned.
                    reports: list[LogRecord] = []
                    for record in scope_logs.log_records:
                        reports.extend(self._edit(record))
                    scope_logs.log_records.extend(reports)
        finally:
            self._detection.report()
        await self._next.consume(logs)

    async def shutdown(self) -> None:
        pass

    def _edit(self, record: LogRecord) -> list[LogRecord]:
        """Scan, record and act on one record; the finding records to add beside it."""
        attributes = record_attributes(record)
        name = event_name(record)
        content_event = name.startswith(GENAI_EVENT_PREFIX)
        documents = _content_documents(attributes) if content_event else {}
        findings: list[Found] = []
        truncated = False
        if content_event:
            texts = content_texts(content_places({key: document for key, (document, _) in documents.items()}))
            body_role = MESSAGE_EVENT_ROLES.get(name, CONTENT_ROLE)
            body_texts = value_texts(value_places(BODY, record.body), _body_role(record.body, body_role))
            findings, truncated = self._detection.findings(texts + body_texts)
        elsewhere = [] if content_event else value_texts(value_places(BODY, record.body), ROLE)
        for pair in record.attributes:
            if pair.key not in documents:
                elsewhere += value_texts(value_places(pair.key, pair.value), ROLE)
        secrets = self._detection.secrets(elsewhere)
        if truncated:
            attributes.set("gen_ai.security.scan_truncated", True)
        if not (findings or secrets):
            return []
        reports = [self._report(record, text, finding) for text, finding in findings + secrets]
        severities = [finding.severity for _, finding in findings + secrets]
        add_to_summary(attributes, len(reports), worst_severity(severities))
        self._redact(record, attributes, documents, findings)
        self._detection.edit_texts(secrets, drop_as_mask=True)
        return reports

    def _report(self, record: LogRecord, text: ContentText, finding: Finding) -> LogRecord:
        """The finding as a log-based event beside ``record``."""
        event = Span.Event()
        event.CopyFrom(self._detection.event_template(finding))
        self._detection.location(text, finding, event)
        report = LogRecord(
            time_unix_nano=record.time_unix_nano or record.observed_time_unix_nano,
            observed_time_unix_nano=record.observed_time_unix_nano or record.time_unix_nano,
            trace_id=record.trace_id,
            span_id=record.span_id,
            flags=record.flags,
            event_name=FINDING_EVENT,
        )
        severity = FINDING_SEVERITY_NUMBERS.get(finding.severity, SeverityNumber.SEVERITY_NUMBER_WARN)
        report.severity_number = severity
        report.severity_text = _SEVERITY_TEXTS[severity]
        report.attributes.extend(event.attributes)
        return report

    def _redact(
        self,
        record: LogRecord,
        attributes: SpanAttributes,
        documents: dict[str, tuple[list[Any], bool]],
        findings: list[Found],
    ) -> None:
        """Apply each content finding's action: mask or hash in place, drop the attribute or body it was in."""
        dropped = {_holder(text) for text, finding in findings if self._detection.action(finding) == "drop"}
        kept = [(text, finding) for text, finding in findings if _holder(text) not in dropped]
        edited = self._detection.edit_texts(kept)
        for key in {text.attribute for text in edited} & documents.keys() - dropped:
            document, structured = documents[key]
            pair = attributes.pair(key)
            if pair is None:
                continue
            try:
                value = AnyValue()
                if structured:
                    set_any_value(value, document)
                else:
                    value.string_value = dump_json(document)
            except (RecursionError, ValueError, TypeError):
                dropped.add(key)  # nested too deep to write back: dropped rather than kept unmasked
                continue
            pair.value.CopyFrom(value)
        if dropped:
            if BODY in dropped:
                record.ClearField("body")
            attributes.remove(dropped - {BODY})
            attributes.set("gen_ai.security.content_dropped", sorted(dropped))


def _holder(text: ContentText) -> str:
    """What a drop removes for a finding in ``text``: its content attribute, or the whole body."""
    return BODY if text.attribute == BODY or text.attribute.startswith(BODY + ".") else text.attribute


def _content_documents(attributes: SpanAttributes) -> dict[str, tuple[list[Any], bool]]:
    """The content attributes that hold a list of messages or parts, read; and whether each was structured."""
    documents: dict[str, tuple[list[Any], bool]] = {}
    for key in CONTENT_ATTRIBUTES:
        pair = attributes.pair(key)
        if pair is None:
            continue
        kind = pair.value.WhichOneof("value")
        if kind == "array_value":
            documents[key] = (any_value(pair.value), True)
        elif kind == "string_value" and isinstance(document := parse_json(pair.value.string_value), list):
            documents[key] = (document, False)
    return documents


def _body_role(body: AnyValue, role: str) -> str:
    """The role of the message in an event's body: its own ``role`` (or its ``message``'s), else ``role``."""
    value = any_value(body)
    if isinstance(value, dict):
        message = value.get("message")
        own = value.get("role") or (message.get("role") if isinstance(message, dict) else None)
        if isinstance(own, str) and own:
            return own
    return role


def create_logs_processor(
    settings: ComponentSettings, config: GenAiSecurityConfig, next_consumer: LogsConsumer
) -> Processor:
    return GenAiSecurityLogsProcessor(settings, config, next_consumer)
