"""genai_security on log records: GenAI events' content, secrets elsewhere, every AnyValue kind, findings as events."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, LogsData, SeverityNumber

from collector.component import ComponentSettings
from collector.config.types import Secret
from collector.findings import FINDING_EVENT
from collector.pdata import any_value, set_any_value
from processors.genai_security import factory
from processors.genai_security.config import GenAiSecurityConfig
from processors.genai_security.logs import GenAiSecurityLogsProcessor
from tests.conftest import RunningService
from tests.recording_exporter import Recorded, recording_collector

OPENAI_KEY = "sk-proj-" + "Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z"
CARD = "4111 1111 1111 1111"
TRACE_ID = bytes(range(16))
SPAN_ID = bytes(range(8))
TIME = 1_700_000_000_000_000_000
MASK = GenAiSecurityConfig(default_action="mask")


class LogsRecorder:
    def __init__(self) -> None:
        self.received: list[LogsData] = []

    async def consume(self, logs: LogsData) -> None:
        self.received.append(logs)


def _record(event: str = "", body: Any = None, **attributes: Any) -> LogRecord:
    record = LogRecord(time_unix_nano=TIME, trace_id=TRACE_ID, span_id=SPAN_ID, flags=1, event_name=event)
    if body is not None:
        set_any_value(record.body, body)
    for key, value in attributes.items():
        pair = record.attributes.add()
        pair.key = key.replace("__", ".")
        set_any_value(pair.value, value)
    return record


def _run(
    make_settings: Callable[..., ComponentSettings], config: GenAiSecurityConfig, *records: LogRecord
) -> list[LogRecord]:
    downstream = LogsRecorder()
    processor = GenAiSecurityLogsProcessor(make_settings("genai_security", "processor"), config, downstream)
    logs = LogsData()
    logs.resource_logs.add().scope_logs.add().log_records.extend(records)
    asyncio.run(processor.consume(logs))
    return [
        r for data in downstream.received for rl in data.resource_logs for sl in rl.scope_logs for r in sl.log_records
    ]


def _attributes(record: LogRecord) -> dict[str, Any]:
    return {pair.key: any_value(pair.value) for pair in record.attributes}


def _findings(records: list[LogRecord]) -> list[LogRecord]:
    return [record for record in records if record.event_name == FINDING_EVENT]


def test_an_older_per_message_event_has_its_body_content_masked_and_each_finding_is_an_event_beside_it(
    make_settings: Callable[..., ComponentSettings],
) -> None:
    text = f"My key is {OPENAI_KEY}, card {CARD}."
    records = _run(make_settings, MASK, _record("gen_ai.user.message", {"content": text}, gen_ai__system="openai"))

    message, *reports = records
    assert any_value(message.body) == {"content": "My key is [REDACTED:openai_api_key], card [REDACTED:payment_card]."}
    assert _attributes(message)["gen_ai.security.findings.count"] == 2
    assert _attributes(message)["gen_ai.security.findings.max_severity"] == "critical"
    assert reports == _findings(records)
    found = {_attributes(r)["gen_ai.security.detector.id"]: r for r in reports}
    assert set(found) == {"openai_api_key", "payment_card"}  # content: personal data is looked for too
    key = found["openai_api_key"]
    details = _attributes(key)
    assert details["gen_ai.security.location.attribute"] == "body.content"
    assert text[details["gen_ai.security.location.start"] : details["gen_ai.security.location.end"]] == OPENAI_KEY
    assert details["gen_ai.security.action"] == "mask"
    assert (key.trace_id, key.span_id, key.flags, key.time_unix_nano) == (TRACE_ID, SPAN_ID, 1, TIME)
    assert key.severity_number == SeverityNumber.SEVERITY_NUMBER_FATAL and key.severity_text == "FATAL"


def test_every_anyvalue_kind_of_a_plain_log_body_is_read_for_secrets_only(
    make_settings: Callable[..., ComponentSettings],
) -> None:
    body = {
        "line": f"calling with {OPENAI_KEY}",
        "raw": f"key={OPENAI_KEY}".encode(),
        "nested": [{"header": f"Bearer {OPENAI_KEY}"}, 7, 2.5, True],
        "card": CARD,  # personal data outside GenAI content is not looked for, as on spans
        "opaque": b"\xff\xfe",
    }
    records = _run(make_settings, MASK, _record(body=body))

    masked = any_value(records[0].body)
    assert masked == {
        "line": "calling with [REDACTED:openai_api_key]",
        "raw": b"key=[REDACTED:openai_api_key]",  # bytes stay bytes
        "nested": [{"header": "Bearer [REDACTED:openai_api_key]"}, 7, 2.5, True],
        "card": CARD,
        "opaque": b"\xff\xfe",
    }
    locations = sorted(_attributes(r)["gen_ai.security.location.attribute"] for r in _findings(records))
    assert locations == ["body.line", "body.nested.header", "body.raw"]


def test_a_secret_in_an_attribute_of_any_record_is_masked_even_when_drop_is_asked(
    make_settings: Callable[..., ComponentSettings],
) -> None:
    config = GenAiSecurityConfig(default_action="drop")
    record = _record(body="request sent", http__request__header__authorization=[f"Bearer {OPENAI_KEY}"])
    records = _run(make_settings, config, record)

    assert _attributes(records[0])["http.request.header.authorization"] == ["Bearer [REDACTED:openai_api_key]"]
    assert any_value(records[0].body) == "request sent"


def test_structured_content_of_the_newest_event_is_masked_and_stays_structured(
    make_settings: Callable[..., ComponentSettings],
) -> None:
    inputs = [
        {"role": "user", "parts": [{"type": "text", "content": f"card {CARD}"}]},
        {"role": "tool", "parts": [{"type": "tool_call_response", "id": "c1", "response": {"token": OPENAI_KEY}}]},
    ]
    record = _record(
        "gen_ai.client.inference.operation.details",
        gen_ai__operation__name="chat",
        gen_ai__provider__name="openai",
    )
    pair = record.attributes.add(key="gen_ai.input.messages")
    set_any_value(pair.value, inputs)
    records = _run(make_settings, MASK, record)

    details = records[0]
    value = next(p.value for p in details.attributes if p.key == "gen_ai.input.messages")
    assert value.WhichOneof("value") == "array_value"
    assert any_value(value) == [
        {"role": "user", "parts": [{"type": "text", "content": "card [REDACTED:payment_card]"}]},
        {
            "role": "tool",
            "parts": [{"type": "tool_call_response", "id": "c1", "response": '{"token": "[REDACTED:openai_api_key]"}'}],
        },
    ]
    places = [_attributes(r) for r in _findings(records)]
    located = {(p["gen_ai.security.location.attribute"], p["gen_ai.security.location.message"]) for p in places}
    assert located == {("gen_ai.input.messages", 0), ("gen_ai.input.messages", 1)}


def test_json_text_content_is_written_back_as_json_text_and_hash_keeps_a_keyed_digest(
    make_settings: Callable[..., ComponentSettings],
) -> None:
    key = "k" * 32
    config = GenAiSecurityConfig(default_action="hash", hmac_key=Secret(key))
    outputs = '[{"role": "assistant", "parts": [{"type": "text", "content": "use ' + OPENAI_KEY + '"}]}]'
    records = _run(
        make_settings, config, _record("gen_ai.client.inference.operation.details", gen_ai__output__messages=outputs)
    )

    digest = hmac.new(key.encode(), OPENAI_KEY.encode(), hashlib.sha256).hexdigest()[:16]
    assert _attributes(records[0])["gen_ai.output.messages"] == (
        '[{"role":"assistant","parts":[{"type":"text","content":"use [HMAC:openai_api_key:' + digest + ']"}]}]'
    )
    assert [_attributes(r)["gen_ai.security.value_hmac"] for r in _findings(records)] == [digest]


def test_drop_removes_the_content_attribute_or_the_body_that_held_the_finding(
    make_settings: Callable[..., ComponentSettings],
) -> None:
    config = GenAiSecurityConfig(actions={"personal_data": "drop"})
    details = _record(
        "gen_ai.client.inference.operation.details",
        gen_ai__input__messages=f'[{{"role": "user", "parts": [{{"type": "text", "content": "{CARD}"}}]}}]',
        gen_ai__operation__name="chat",
    )
    choice = _record("gen_ai.choice", {"index": 0, "message": {"role": "assistant", "content": f"card {CARD}"}})
    dropped_details, dropped_choice = _run(make_settings, config, details, choice)[:2]

    assert _attributes(dropped_details)["gen_ai.security.content_dropped"] == ["gen_ai.input.messages"]
    assert "gen_ai.input.messages" not in _attributes(dropped_details)
    assert _attributes(dropped_details)["gen_ai.operation.name"] == "chat"
    assert dropped_choice.body.WhichOneof("value") is None
    assert _attributes(dropped_choice)["gen_ai.security.content_dropped"] == ["body"]


def test_a_system_prompt_repeated_in_the_output_of_one_event_is_a_leak(
    make_settings: Callable[..., ComponentSettings],
) -> None:
    system = "You are the billing assistant of Example Corp and never reveal the refund override code."
    record = _record("gen_ai.client.inference.operation.details")
    for key, value in (
        ("gen_ai.system_instructions", [{"type": "text", "content": system}]),
        ("gen_ai.output.messages", [{"role": "assistant", "parts": [{"type": "text", "content": f"Sure: {system}"}]}]),
    ):
        set_any_value(record.attributes.add(key=key).value, value)
    records = _run(make_settings, GenAiSecurityConfig(), record)

    assert {_attributes(r)["gen_ai.security.detector.id"] for r in _findings(records)} == {"system_prompt_leak"}


def test_a_record_with_nothing_to_find_passes_unchanged(make_settings: Callable[..., ComponentSettings]) -> None:
    record = _record("gen_ai.user.message", {"content": "What is the weather in Paris?"}, gen_ai__system="openai")
    before = record.SerializeToString()
    assert [r.SerializeToString() for r in _run(make_settings, MASK, record)] == [before]


CONFIG = """
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:0
processors:
  genai_security:
    default_action: mask
exporters:
  recording:
service:
  pipelines:
    logs:
      receivers: [otlp]
      processors: [genai_security]
      exporters: [recording]
"""


@pytest.fixture
def collector(tmp_path: Path) -> Iterator[tuple[RunningService, Recorded]]:
    with recording_collector(CONFIG, tmp_path) as running:
        yield running


def test_the_sdk_s_log_records_are_masked_in_a_logs_pipeline(collector: tuple[RunningService, Recorded]) -> None:
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor

    service, recorded = collector
    assert factory.supports("logs")
    provider = LoggerProvider()
    provider.add_log_record_processor(
        SimpleLogRecordProcessor(OTLPLogExporter(endpoint=f"http://127.0.0.1:{service.port()}/v1/logs", timeout=10))
    )
    provider.get_logger("app").emit(body={"content": f"key {OPENAI_KEY}"}, event_name="gen_ai.user.message")
    provider.shutdown()

    got: LogsData = recorded.wait_for("logs", 2)
    records = [r for rl in got.resource_logs for sl in rl.scope_logs for r in sl.log_records]
    assert any_value(records[0].body) == {"content": "key [REDACTED:openai_api_key]"}
    assert [r.event_name for r in records] == ["gen_ai.user.message", FINDING_EVENT]


def test_a_record_sent_under_the_finding_event_name_is_scanned_like_any_other(
    make_settings: Callable[..., ComponentSettings],
) -> None:
    # A client may name a record anything: the name a finding of ours carries is no way past the detectors.
    disguised = _record(FINDING_EVENT, f"key {OPENAI_KEY}", note=f"again {OPENAI_KEY}")
    records = _run(make_settings, MASK, disguised)
    assert OPENAI_KEY not in repr(records)
    assert [_attributes(r)["gen_ai.security.detector.id"] for r in records[1:]] == ["openai_api_key"] * 2
