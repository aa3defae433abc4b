"""The ``genai_evaluation`` connector: scores GenAI calls and agent runs, and emits the results as logs.

As an OpenTelemetry Collector connector it is listed as an exporter of a traces pipeline and as a
receiver of a logs pipeline (the ``traces -> logs`` pair): each selected call or agent run is scored
on its configured dimensions, by a judge model or a rule, and every result goes into the logs
pipeline as one ``gen_ai.evaluation.result`` record (``connectors.genai_evaluation.records``).
Listed also as a receiver of a traces pipeline (the ``traces -> traces`` pair), it sends each judge
call's own span there; that pair consumes nothing itself. Both pairs share one engine per connector
id: one judge, one queue, one budget. See docs/evaluations.md.
"""

from __future__ import annotations

from typing import Any

from opentelemetry.proto.trace.v1.trace_pb2 import TracesData

from collector.component import ComponentSettings, Connector, ConnectorFactory, Consumer, Host, WorkerPart
from connectors.genai_evaluation.config import GenAiEvaluationConfig
from connectors.genai_evaluation.engine import EvaluationEngine
from connectors.genai_evaluation.selection import SelectionPart


def _engine(settings: ComponentSettings, config: GenAiEvaluationConfig) -> EvaluationEngine:
    return settings.shared.get_or_make("connector", settings.id, lambda: EvaluationEngine(settings, config))


class EvaluationResults:
    """The traces -> logs pair: selects spans and emits their evaluation results into the logs pipelines."""

    def __init__(self, engine: EvaluationEngine, results: Consumer[Any]) -> None:
        self.engine = engine
        engine.results = results

    async def start(self, host: Host) -> None:
        await self.engine.start()

    async def shutdown(self) -> None:
        await self.engine.shutdown()

    async def consume(self, traces: TracesData, /) -> None:
        self.engine.observe(traces)


class JudgeSpans:
    """The traces -> traces pair: emits the judge calls' spans; the spans it is given are the other pair's work."""

    def __init__(self, engine: EvaluationEngine, spans: Consumer[Any]) -> None:
        self.engine = engine
        engine.judge_spans = spans

    async def start(self, host: Host) -> None:
        await self.engine.start()

    async def shutdown(self) -> None:
        await self.engine.shutdown()

    async def consume(self, traces: TracesData, /) -> None:
        return None


def create_results(settings: ComponentSettings, config: GenAiEvaluationConfig, results: Consumer[Any]) -> Connector:
    return EvaluationResults(_engine(settings, config), results)


def create_judge_spans(settings: ComponentSettings, config: GenAiEvaluationConfig, spans: Consumer[Any]) -> Connector:
    return JudgeSpans(_engine(settings, config), spans)


def create_selection_part(settings: ComponentSettings, config: GenAiEvaluationConfig) -> WorkerPart:
    return SelectionPart(config)


factory = ConnectorFactory(
    type="genai_evaluation",
    config_type=GenAiEvaluationConfig,
    creators={("traces", "logs"): create_results, ("traces", "traces"): create_judge_spans},
    create_worker_part=create_selection_part,
    # Handed a batch once the pipeline's other exporters took it: a batch a client must send again (the store
    # refused it) is judged when it is taken, once, not once per attempt.
    accepted_only=True,
)
