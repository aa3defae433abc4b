"""The ``genai_loop_detection`` processor: agents stuck in loops, flagged while the trace is still open.

Each GenAI span (LLM call, tool call, agent run) is reduced to a few facts and
added to the run of its trace and, when it has ``gen_ai.conversation.id`` (or
names none in a trace whose spans so far named one conversation), of its
conversation. The run checks the span against the shapes of a stuck agent
(the same tool call again and again, a cycle of steps, requests that add
nothing new, a budget of steps, tokens or cost overrun) and against trace
analysis checks (tool calls asked for that never ran, tool errors ignored and
repeated); a running latency distribution per model flags outliers. A finding
is a ``gen_ai.security.finding`` event (``collector.findings``) on the span that
completed the pattern, raised as that span passes, so the alerts exporter can
page while the agent still loops. A tool call asked for inside an agent whose
span already passed (exporters that send parents first) is judged once the
trace's spans stop arriving, its finding on a span of its own (``late``). What
is held is bounded (runs, steps per run, idle time); what is evicted is counted.

Run it after ``genai_normalize`` (it reads the current GenAI conventions) and
``genai_cost`` (cost budgets read ``gen_ai.usage.cost.amount``). Per-trace checks need
every span of a trace on one collector: behind several collectors, route by
trace id with the ``loadbalancing`` exporter.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable

from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from collector.component import ComponentSettings, Processor, ProcessorFactory, TracesConsumer
from collector.expiring import ExpiringMap
from collector.findings import add_to_summary, finding_event, worst_severity
from processors.genai_loop_detection.config import GenAiLoopDetectionConfig
from processors.genai_loop_detection.facts import InputHistory, SpanFacts, span_facts
from processors.genai_loop_detection.generated_metrics import GenaiLoopDetectionSelfMetrics
from processors.genai_loop_detection.late import LateRun, finding_span
from processors.genai_loop_detection.latency import LatencyWatch
from processors.genai_loop_detection.run import ANALYSIS, LoopFinding, Run
from processors.genai_loop_detection.runs import Runs
from processors.span_view import BatchView, SpanView, ViewProcessor


class GenAiLoopDetectionProcessor(ViewProcessor):
    def __init__(
        self,
        settings: ComponentSettings,
        config: GenAiLoopDetectionConfig,
        next_consumer: TracesConsumer,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(next_consumer)
        self._metrics = GenaiLoopDetectionSelfMetrics(settings.telemetry)
        self._processor = str(settings.id)
        self.traces = Runs(
            "trace",
            config.max_traces,
            config.trace_idle_timeout,
            lambda: Run("trace", config, config.trace_budget),
            self._evicted,
            clock,
        )
        self.conversations = Runs(
            "conversation",
            config.max_conversations,
            config.conversation_idle_timeout,
            lambda: Run("conversation", config, config.conversation_budget),
            self._evicted,
            clock,
        )
        # Traces with calls to judge once their spans stop arriving for late_span_wait (see ``late``).
        self._late: ExpiringMap[bytes, LateRun] = ExpiringMap(
            config.max_traces,
            config.late_span_wait,
            lambda reason, count: self._evicted("late", reason, count),
            clock,
        )
        self._latency = LatencyWatch(config.latency) if config.latency.enabled else None
        self._history = InputHistory(config.max_traces)
        self._found: Counter[str] = Counter()
        self._dropped: Counter[str] = Counter()
        for runs in (self.traces, self.conversations):
            self._metrics.loop_detection_open_runs.watch(runs.__len__, processor=self._processor, scope=runs.scope)

    def edit(self, view: SpanView) -> None:
        facts = span_facts(view, self._history)
        if facts is None:
            return
        span = view.span
        trace = self.traces.get(span.trace_id)
        late = self._late.get(span.trace_id)
        if late is not None:  # its spans still arrive: its judgement waits
            self._late.put(span.trace_id, late)
        # A span naming no conversation (some frameworks' tool spans) belongs to its trace's, when that is one.
        conversation = trace.conversation_of(facts.conversation_id)
        stands_in = facts.duplicate_of is not None
        if stands_in and not self._stand_in(trace, conversation, facts):
            return
        findings = self._observe(trace, facts)
        if conversation:
            # A pattern seen in the trace is not reported again for its conversation on the same span.
            raised = {finding.detector for finding in findings}
            in_conversation = self._observe(self.conversations.get(conversation), facts)
            findings.extend(finding for finding in in_conversation if finding.detector not in raised)
        # Every scope has now recorded the tool results this call carried; the facts it leaves in the runs'
        # step lists need not hold them (a long conversation repeats every earlier result id in each request).
        facts.release_responded_ids()
        if facts.kind == "llm" and self._latency is not None and not stands_in:
            outlier = self._latency.observe((facts.provider, facts.model, facts.operation), facts.duration_seconds)
            if outlier is not None:
                detail = (
                    f"{outlier.seconds:.2f}s, {outlier.deviations:.1f} deviations above the usual "
                    f"{outlier.usual_seconds:.2f}s of {facts.model or 'this model'}"
                )
                details = {"gen_ai.security.analysis.detail": detail}
                findings.append(LoopFinding("latency_outlier", ANALYSIS, "low", 0.7, details))
        if findings:
            self._record(view, findings)
        if trace.late and span.trace_id not in self._late:
            resource = Resource()
            if view.resource is not None:
                resource.CopyFrom(view.resource)
            self._late.put(span.trace_id, LateRun(trace, resource))

    def finish(self, batch: BatchView) -> None:
        # Judge the traces whose spans stopped arriving; their findings ride on spans added to the batch.
        for trace_id, late in self._late.take_expired():
            for requester, findings in late.run.judge_late():
                span = finding_span(batch.traces, late.resource, trace_id, requester.span_id, requester.end)
                self._record(SpanView(span, late.resource), findings)
        self.traces.expire()
        self.conversations.expire()
        for detector, count in self._found.items():
            self._metrics.loop_detection_findings.add(count, processor=self._processor, detector=detector)
        for scope, count in self._dropped.items():
            self._metrics.loop_detection_dropped_steps.add(count, processor=self._processor, scope=scope)
        self._found.clear()
        self._dropped.clear()

    def _stand_in(self, trace: Run, conversation: str | None, facts: SpanFacts) -> bool:
        """Whether a marked record of an LLM call is a step of its trace (False: the one counted already is).

        It is when the record that counts is in another trace (the proxy's span of a call that carried no
        traceparent), and when the record that counts carried no messages but this one does (a framework's model
        call span around its client library's): then it takes that one's place.
        """
        assert facts.duplicate_of is not None
        counted = trace.llm_call(facts.duplicate_of)
        if counted is None:
            return True
        if counted.has_messages or not facts.has_messages:
            return False
        facts.tokens, facts.cost = facts.tokens or counted.tokens, facts.cost or counted.cost
        trace.forget(counted)
        if conversation:
            self.conversations.get(conversation).forget(counted)
        return True

    def _observe(self, run: Run, facts: SpanFacts) -> list[LoopFinding]:
        findings = run.observe(facts)
        if run.dropped_steps:
            self._dropped[run.scope] += run.dropped_steps
            run.dropped_steps = 0
        return findings

    def _record(self, view: SpanView, findings: list[LoopFinding]) -> None:
        span = view.span
        time = span.end_time_unix_nano or span.start_time_unix_nano
        for finding in findings:
            event = finding_event(
                finding.detector, finding.category, finding.severity, finding.confidence, finding.details
            )
            event.time_unix_nano = time
            span.events.append(event)
            self._found[finding.detector] += 1
        add_to_summary(view, len(findings), worst_severity([f.severity for f in findings]))

    def _evicted(self, scope: str, reason: str, count: int) -> None:
        self._metrics.loop_detection_evicted_runs.add(count, processor=self._processor, scope=scope, reason=reason)


def create_processor(
    settings: ComponentSettings, config: GenAiLoopDetectionConfig, next_consumer: TracesConsumer
) -> Processor:
    return GenAiLoopDetectionProcessor(settings, config, next_consumer)


factory = ProcessorFactory(
    type="genai_loop_detection", config_type=GenAiLoopDetectionConfig, create=create_processor, runs_in="worker"
)
