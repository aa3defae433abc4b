"""genai_normalize on log records: GenAI events of every convention version onto the newest names and shapes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, LogsData

from collector.component import ComponentSettings
from collector.pdata import any_value, set_any_value
from processors.genai_normalize import GenAiNormalizeConfig, factory


class LogsRecorder:
    def __init__(self) -> None:
        self.received: list[LogsData] = []

    async def consume(self, logs: LogsData) -> None:
        self.received.append(logs)


def _record(event: str, body: Any = None, **attributes: Any) -> LogRecord:
    record = LogRecord(time_unix_nano=1, event_name=event)
    if body is not None:
        set_any_value(record.body, body)
    for key, value in attributes.items():
        set_any_value(record.attributes.add(key=key.replace("__", ".")).value, value)
    return record


def _run(
    make_settings: Callable[..., ComponentSettings], *records: LogRecord, keep_original: bool = False
) -> list[LogRecord]:
    downstream = LogsRecorder()
    create = factory.creator("logs")
    processor = create(make_settings("genai_normalize", "processor"), GenAiNormalizeConfig(keep_original), downstream)
    logs = LogsData()
    logs.resource_logs.add().scope_logs.add().log_records.extend(records)
    asyncio.run(processor.consume(logs))
    return [
        r for data in downstream.received for rl in data.resource_logs for sl in rl.scope_logs for r in sl.log_records
    ]


def _attributes(record: LogRecord) -> dict[str, Any]:
    return {pair.key: any_value(pair.value) for pair in record.attributes}


def _kind(record: LogRecord, key: str) -> str | None:
    return next(pair.value.WhichOneof("value") for pair in record.attributes if pair.key == key)


def test_the_per_message_events_of_openai_v2_become_the_newest_message_shapes(
    make_settings: Callable[..., ComponentSettings],
) -> None:
    # As opentelemetry-instrumentation-openai-v2 sends them in its default mode (tests/data/genai_dialects).
    call = [
        _record("gen_ai.system.message", {"content": "You are terse."}, gen_ai__system="openai"),
        _record("gen_ai.user.message", {"content": "Weather in Paris?"}, gen_ai__system="openai"),
        _record(
            "gen_ai.assistant.message",
            {
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                    }
                ]
            },
            gen_ai__system="openai",
        ),  # fmt: skip
        _record("gen_ai.tool.message", {"content": "rainy, 57F", "id": "call_1"}, gen_ai__system="openai"),
        _record(
            "gen_ai.choice",
            {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "It is rainy."}},
            gen_ai__system="openai",
        ),
    ]
    system, user, assistant, tool, choice = _run(make_settings, *call)

    assert _attributes(system) == {
        "gen_ai.provider.name": "openai",
        "gen_ai.input.messages": [{"role": "system", "parts": [{"type": "text", "content": "You are terse."}]}],
    }
    assert _attributes(user)["gen_ai.input.messages"] == [
        {"role": "user", "parts": [{"type": "text", "content": "Weather in Paris?"}]}
    ]
    assert _attributes(assistant)["gen_ai.input.messages"] == [
        {
            "role": "assistant",
            "parts": [{"type": "tool_call", "id": "call_1", "name": "get_weather", "arguments": {"city": "Paris"}}],
        }
    ]
    assert _attributes(tool)["gen_ai.input.messages"] == [
        {"role": "tool", "parts": [{"type": "tool_call_response", "id": "call_1", "response": "rainy, 57F"}]}
    ]
    assert _attributes(choice)["gen_ai.output.messages"] == [
        {"role": "assistant", "parts": [{"type": "text", "content": "It is rainy."}], "finish_reason": "stop"}
    ]
    # Structured, as the conventions want content on events; the consumed body keys are gone, the others stay.
    assert _kind(user, "gen_ai.input.messages") == "array_value"
    assert [r.body.WhichOneof("value") for r in (system, user, assistant, tool)] == [None] * 4
    assert any_value(choice.body) == {"index": 0}
    assert [r.event_name for r in (system, user, assistant, tool, choice)] == [r.event_name for r in call]
    assert all("gen_ai.system" not in _attributes(r) for r in (system, user, assistant, tool, choice))


def test_a_choice_that_calls_tools_and_a_content_array_are_mapped_as_the_span_rules_map_them(
    make_settings: Callable[..., ComponentSettings],
) -> None:
    choice = _record(
        "gen_ai.choice",
        {"index": 1, "finish_reason": "tool_calls",
         "message": {"tool_calls": [{"id": "c2", "function": {"name": "lookup", "arguments": "not json"}}]}},
    )  # fmt: skip
    user = _record(
        "gen_ai.user.message",
        {"role": "user", "content": [{"type": "text", "text": "look"},
                                     {"type": "image_url", "image_url": {"url": "https://x/y.png"}}]},
        gen_ai__system="az.ai.openai",
    )  # fmt: skip
    mapped_choice, mapped_user = _run(make_settings, choice, user)

    assert _attributes(mapped_choice)["gen_ai.output.messages"] == [
        {
            "role": "assistant",
            "parts": [{"type": "tool_call", "id": "c2", "name": "lookup", "arguments": "not json"}],
            "finish_reason": "tool_call",
        }
    ]
    assert _attributes(mapped_user)["gen_ai.input.messages"] == [
        {
            "role": "user",
            "parts": [
                {"type": "text", "content": "look"},
                {"type": "uri", "modality": "image", "uri": "https://x/y.png"},
            ],
        }
    ]
    assert _attributes(mapped_user)["gen_ai.provider.name"] == "azure.ai.openai"


def test_keep_original_keeps_the_body_and_the_old_names_beside_the_new(
    make_settings: Callable[..., ComponentSettings],
) -> None:
    record = _record("gen_ai.user.message", {"content": "hi"}, gen_ai__system="openai")
    (kept,) = _run(make_settings, record, keep_original=True)

    assert any_value(kept.body) == {"content": "hi"}
    assert _attributes(kept) == {
        "gen_ai.system": "openai",
        "gen_ai.provider.name": "openai",
        "gen_ai.input.messages": [{"role": "user", "parts": [{"type": "text", "content": "hi"}]}],
    }


def test_the_event_name_attribute_of_older_sdks_becomes_the_event_name_field(
    make_settings: Callable[..., ComponentSettings],
) -> None:
    record = _record("", {"content": "hi"}, event__name="gen_ai.user.message")
    (mapped,) = _run(make_settings, record)
    assert mapped.event_name == "gen_ai.user.message"
    assert "event.name" not in _attributes(mapped)
    assert "gen_ai.input.messages" in _attributes(mapped)


def test_the_newest_event_gets_renamed_attributes_and_structured_content(
    make_settings: Callable[..., ComponentSettings],
) -> None:
    record = _record(
        "gen_ai.client.inference.operation.details",
        gen_ai__input__messages='[{"role": "user", "parts": [{"type": "text", "content": "hi"}]}]',
        gen_ai__usage__cache_creation__input_tokens=5,
        gen_ai__usage__prompt_tokens=9,
        gen_ai__provider__name="openai",
    )
    (mapped,) = _run(make_settings, record)
    assert _attributes(mapped) == {
        "gen_ai.input.messages": [{"role": "user", "parts": [{"type": "text", "content": "hi"}]}],
        "gen_ai.usage.cache_write.input_tokens": 5,
        "gen_ai.usage.input_tokens": 9,
        "gen_ai.provider.name": "openai",
    }
    assert _kind(mapped, "gen_ai.input.messages") == "array_value"


def test_records_that_are_no_genai_event_pass_unchanged(make_settings: Callable[..., ComponentSettings]) -> None:
    records = [
        _record("", "GET /health 200", http__response__status_code=200),
        _record("app.started", {"content": "x"}, gen_ai__input__messages="[]"),
    ]
    before = [r.SerializeToString() for r in records]
    assert [r.SerializeToString() for r in _run(make_settings, *records)] == before


def test_an_event_that_already_carries_the_newest_form_keeps_its_body(
    make_settings: Callable[..., ComponentSettings],
) -> None:
    newest = [{"role": "user", "parts": [{"type": "text", "content": "hi"}]}]
    record = _record("gen_ai.user.message", {"content": "hi there"})
    set_any_value(record.attributes.add(key="gen_ai.input.messages").value, newest)
    (mapped,) = _run(make_settings, record)
    assert _attributes(mapped)["gen_ai.input.messages"] == newest
    assert any_value(mapped.body) == {"content": "hi there"}
