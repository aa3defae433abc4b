"""genai_normalize over spans captured from real instrumentations (tests/data/genai_dialects, see its README)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.trace.v1.trace_pb2 import Span, TracesData

from collector.component import ComponentSettings
from collector.pdata import SpanAttributes, set_any_value
from processors.genai_normalize import GenAiNormalizeConfig, GenAiNormalizeProcessor
from tests.conftest import RecordingConsumer

FIXTURES = Path(__file__).resolve().parents[1] / "data" / "genai_dialects"
# Every key of these dialects a rule maps; keys with no current equivalent (llm.token_count.total,
# audio token details) and the invocation-parameters JSON (only partly mapped) are left as they are.
MAPPED = (
    "gen_ai.system",
    "gen_ai.openai.",
    "gen_ai.usage.reasoning_tokens",
    "gen_ai.is_streaming",
    "llm.system",
    "llm.model_name",
    "llm.finish_reason",
    "llm.input_messages.",
    "llm.output_messages.",
    "llm.tools.",
    "llm.token_count.prompt",
    "llm.token_count.completion",
    "llm.token_count.prompt_details.cache_read",
    "llm.token_count.completion_details.reasoning",
    "openinference.span.kind",
    "embedding.model_name",
)
CASES = [
    (path.stem, span) for path in sorted(FIXTURES.glob("*.json")) for span in json.loads(path.read_text())["spans"]
]


def _normalize(make_settings: Callable[..., ComponentSettings], captured: dict[str, Any]) -> dict[str, Any]:
    span = Span(name=captured["name"])
    for key, value in captured["attributes"].items():
        pair = span.attributes.add()
        pair.key = key
        set_any_value(pair.value, value)
    downstream = RecordingConsumer()
    settings = make_settings("genai_normalize", "processor")
    processor = GenAiNormalizeProcessor(settings, GenAiNormalizeConfig(), downstream)
    traces = TracesData()
    traces.resource_spans.add().scope_spans.add().spans.append(span)
    asyncio.run(processor.consume(traces))
    values = SpanAttributes(downstream.spans()[0])
    return {key: values.get(key) for key in values.by_key}


@pytest.mark.parametrize(("fixture", "captured"), CASES, ids=[f"{name}-{span['call']}" for name, span in CASES])
def test_every_captured_span_lands_in_the_current_vocabulary(
    make_settings: Callable[..., ComponentSettings], fixture: str, captured: dict[str, Any]
) -> None:
    values = _normalize(make_settings, captured)

    operation = "embeddings" if captured["call"] == "embeddings" else "chat"
    assert values["gen_ai.operation.name"] == operation
    assert values["gen_ai.provider.name"] == "openai"
    assert values["gen_ai.request.model"] in ("gpt-4o-mini", "text-embedding-3-small")
    assert values["gen_ai.usage.input_tokens"] > 0
    if operation == "chat":
        assert values["gen_ai.usage.output_tokens"] > 0
    assert not [key for key in values if key.startswith(MAPPED) and not key.endswith(".audio")]
