"""What the genai_evaluation tests share: GenAI spans to evaluate, a judge config, a connector built by hand."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord
from opentelemetry.proto.trace.v1.trace_pb2 import Span, TracesData

from collector import semconv
from collector.component import ComponentID, ComponentSettings, Connector, SharedComponents
from collector.config.decode import decode
from collector.pdata import any_value, set_any_value
from collector.telemetry import Telemetry
from connectors.genai_evaluation import factory
from connectors.genai_evaluation.config import GenAiEvaluationConfig

JUDGE_MODEL = "gpt-4o-mini"
JUDGE_KEY = "sk-judge-test"
ANTHROPIC_JUDGE = "claude-3-5-haiku-20241022"


class RecordingSink:
    """A pipeline's consumer that keeps every batch it is given (logs or traces)."""

    def __init__(self) -> None:
        self.batches: list[Any] = []
        self.arrived = asyncio.Event()

    async def consume(self, data: Any, /) -> None:
        self.batches.append(data)
        self.arrived.set()

    def records(self) -> list[LogRecord]:
        return [r for logs in self.batches for rl in logs.resource_logs for sl in rl.scope_logs for r in sl.log_records]

    def spans(self) -> list[Span]:
        return [s for t in self.batches for rs in t.resource_spans for ss in rs.scope_spans for s in ss.spans]


def attributes(record: LogRecord | Span) -> dict[str, Any]:
    return {pair.key: any_value(pair.value) for pair in record.attributes}


def by_dimension(records: list[LogRecord]) -> dict[tuple[bytes, str], dict[str, Any]]:
    """Each record's attributes keyed by (evaluated span id, dimension)."""
    return {(r.span_id, attributes(r)[semconv.EVALUATION_NAME]): attributes(r) for r in records}


def _set(span: Span, values: dict[str, Any]) -> None:
    for key, value in values.items():
        pair = span.attributes.add()
        pair.key = key
        set_any_value(pair.value, value)


@dataclass
class Calls:
    """A batch of GenAI spans under one service, built call by call."""

    service: str = "shop"
    traces: TracesData = field(default_factory=TracesData)
    start_ns: int = 1_700_000_000_000_000_000

    def __post_init__(self) -> None:
        resource_spans = self.traces.resource_spans.add()
        pair = resource_spans.resource.attributes.add()
        pair.key, pair.value.string_value = semconv.SERVICE_NAME, self.service
        self._spans = resource_spans.scope_spans.add().spans

    def span(self, trace_id: bytes, span_id: bytes, name: str, start: int, end: int, values: dict[str, Any]) -> Span:
        span = self._spans.add()
        span.trace_id, span.span_id, span.name = trace_id, span_id, name
        span.start_time_unix_nano, span.end_time_unix_nano = start, end
        _set(span, values)
        return span

    def chat(
        self,
        number: int,
        question: str = "What is the capital of France?",
        answer: str = "Paris.",
        model: str = "gpt-4o",
        trace: int | None = None,
        seconds: float = 1.0,
        extra: dict[str, Any] | None = None,
    ) -> Span:
        """A chat call with its messages; trace and span ids from ``number`` (trace: ``trace`` when given)."""
        start = self.start_ns + number * 1_000_000
        values: dict[str, Any] = {
            semconv.OPERATION_NAME: semconv.CHAT,
            semconv.PROVIDER_NAME: "openai",
            semconv.REQUEST_MODEL: model,
            semconv.RESPONSE_MODEL: f"{model}-2024-08-06",
            semconv.RESPONSE_ID: f"chatcmpl-{number}",
            semconv.USAGE_INPUT_TOKENS: 12,
            semconv.USAGE_OUTPUT_TOKENS: 3,
            semconv.INPUT_MESSAGES: json.dumps([{"role": "user", "parts": [{"type": "text", "content": question}]}]),
            semconv.OUTPUT_MESSAGES: json.dumps(
                [{"role": "assistant", "parts": [{"type": "text", "content": answer}], "finish_reason": "stop"}]
            ),
            **(extra or {}),
        }
        trace_id = (trace if trace is not None else number).to_bytes(16, "big")
        return self.span(
            trace_id, number.to_bytes(8, "big"), f"chat {model}", start, start + int(seconds * 1e9), values
        )


def upstreams(url: str, anthropic_url: str | None = None) -> list[dict[str, Any]]:
    listed: list[dict[str, Any]] = [
        {"name": "openai", "kind": "openai", "base_url": f"{url}/v1", "api_key": JUDGE_KEY, "models": ["gpt-*"]}
    ]
    if anthropic_url:
        listed.append(
            {
                "name": "anthropic",
                "kind": "anthropic",
                "base_url": anthropic_url,
                "api_key": JUDGE_KEY,
                "models": ["claude-*"],
            }
        )
    return listed


def config(raw: dict[str, Any]) -> GenAiEvaluationConfig:
    return decode(GenAiEvaluationConfig, raw, "connectors.genai_evaluation")


@dataclass
class Running:
    """A connector's traces->logs pair (and traces->traces pair) built by hand, and what it emitted."""

    results: Connector
    judge_spans: Connector
    logs: RecordingSink
    spans: RecordingSink
    telemetry: Telemetry


def settings_for(connector_id: str, telemetry: Telemetry | None = None) -> ComponentSettings:
    return ComponentSettings(
        ComponentID.parse(connector_id),
        "connector",
        logging.getLogger("test.evaluation"),
        telemetry or Telemetry(),
        shared=SharedComponents(),
    )


def build(settings_config: GenAiEvaluationConfig, connector_id: str = "genai_evaluation") -> Running:
    telemetry = Telemetry()
    settings = settings_for(connector_id, telemetry)
    logs, spans = RecordingSink(), RecordingSink()
    results = factory.creators[("traces", "logs")](settings, settings_config, logs)
    judge_spans = factory.creators[("traces", "traces")](settings, settings_config, spans)
    return Running(results, judge_spans, logs, spans, telemetry)


async def evaluate(running: Running, *batches: TracesData) -> None:
    """Start both pairs, hand them the batches, and shut down: shutdown drains every queued evaluation."""
    await running.judge_spans.start(None)  # type: ignore[arg-type]
    await running.results.start(None)  # type: ignore[arg-type]
    for batch in batches:
        await running.results.consume(batch)
        await running.judge_spans.consume(batch)
    await running.results.shutdown()
    await running.judge_spans.shutdown()


def run(coroutine: Any, timeout: float = 60.0) -> Any:
    return asyncio.run(asyncio.wait_for(coroutine, timeout))


def metric(telemetry: Telemetry, name: str, **labels: str) -> float:
    """A self-metric's value, from the Prometheus text the telemetry renders."""
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    total = 0.0
    for line in telemetry.render().splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            series, _, value = line.rpartition(" ")
            present = series[series.find("{") + 1 : -1].split(",") if "{" in series else []
            if all(part in present for part in wanted.split(",") if part):
                total += float(value)
    return total


def lines(records: list[LogRecord]) -> Iterator[str]:
    for record in records:
        yield json.dumps(attributes(record), sort_keys=True)
