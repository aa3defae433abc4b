"""Which spans of a batch the connector takes: the calls each dimension selects, and the spans agent runs hold.

This is all the connector does per span, so it runs where the span passes: in a worker process as the
connector's worker part (``SelectionPart``, as ``ConnectorFactory.create_worker_part`` runs it), whose
note of a batch is its ``Selected``; or, for a batch that did not pass through workers, in the connector.
Most spans leave after two cheap looks: the trace's sample (one hash per trace and dimension) and the
span's operation; only a span some dimension may take is made into a subject.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from opentelemetry.proto.trace.v1.trace_pb2 import Span, TracesData

from collector import semconv
from collector.pdata import iter_spans
from connectors.genai_evaluation.config import GenAiEvaluationConfig
from connectors.genai_evaluation.evaluator import Dimension
from connectors.genai_evaluation.subject import Subject

# Operations whose spans an agent run holds: its invocation and its steps.
RUN_OPERATIONS = semconv.INVOCATION_OPERATIONS | semconv.MODEL_CALL_OPERATIONS | {semconv.EXECUTE_TOOL}


@dataclass
class Selected:
    """What one batch gave: (dimension name, call) pairs to evaluate now, and spans for the agent runs."""

    calls: list[tuple[str, Subject]] = field(default_factory=list)
    run_spans: list[Subject] = field(default_factory=list)


class Selector:
    def __init__(self, config: GenAiEvaluationConfig) -> None:
        dimensions = [Dimension.build(d, config.judge.model) for d in config.dimensions]
        self._calls = [d for d in dimensions if d.applies_to == "calls"]
        self._runs = [d for d in dimensions if d.applies_to == "agent_runs"]

    def select(self, traces: TracesData) -> Selected:
        selected = Selected()
        # Per trace: the call dimensions whose sample takes it, and whether an agent-run dimension's does.
        sampled: dict[bytes, tuple[list[Dimension], bool]] = {}
        for resource, _scope, span in iter_spans([traces]):
            trace = span.trace_id
            samples = sampled.get(trace)
            if samples is None:
                samples = sampled[trace] = (
                    [d for d in self._calls if d.sampled(trace)],
                    any(d.sampled(trace) for d in self._runs),
                )
            dimensions, track_run = samples
            if not dimensions and not track_run:
                continue
            operation = _operation(span)
            if operation is None:
                continue
            subject: Subject | None = None
            if dimensions and semconv.is_model_call(operation):
                subject = Subject.from_span(resource, span)
                selected.calls.extend((d.name, subject) for d in dimensions if d.selects(subject))
            if track_run and operation in RUN_OPERATIONS:
                subject = subject or Subject.from_span(resource, span)
                if not subject.is_evaluator_call:
                    selected.run_spans.append(subject)
        return selected


def _operation(span: Span) -> str | None:
    """The span's gen_ai.operation.name, None when it has none (not a GenAI span)."""
    for pair in span.attributes:
        if pair.key == semconv.OPERATION_NAME:
            return pair.value.string_value
    return None


class SelectionPart:
    """The connector's part in a worker process: its note of a batch is what the batch gave (``Selected``)."""

    def __init__(self, config: GenAiEvaluationConfig) -> None:
        self._selector = Selector(config)

    def observe(self, traces: TracesData) -> Selected:
        return self._selector.select(traces)
