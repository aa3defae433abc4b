"""genai_loop_detection: each stuck-agent shape raises its finding on the span that completes it, as it arrives."""

from __future__ import annotations

import asyncio
import json
import os
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from collector.component import ComponentSettings
from collector.config.decode import decode
from collector.config.problems import ConfigError
from collector.findings import FINDING_EVENT, FINDINGS_COUNT, FINDINGS_MAX_SEVERITY, findings_on
from collector.pdata import SpanAttributes
from processors.genai_loop_detection import GenAiLoopDetectionProcessor
from processors.genai_loop_detection.config import Budget, GenAiLoopDetectionConfig, LatencySettings
from processors.genai_loop_detection.run import Run
from processors.genai_loop_detection.runs import Runs
from tests.conftest import RecordingConsumer, RunningService
from tests.exporters.test_alerts import Receiver
from tests.processors.agent_spans import SECOND, Agent, batch

Found = list[tuple[str, str]]  # (detector, span name) in arrival order


class Detector:
    """The processor with a recording consumer behind it; ``send`` passes spans through as one request."""

    def __init__(self, settings: ComponentSettings, config: GenAiLoopDetectionConfig | None = None) -> None:
        self.settings = settings
        self.downstream = RecordingConsumer()
        self.now = 0.0
        self.processor = GenAiLoopDetectionProcessor(
            settings, config or GenAiLoopDetectionConfig(), self.downstream, clock=lambda: self.now
        )

    def send(self, spans: list[Span]) -> list[Span]:
        before = len(self.downstream.spans())
        asyncio.run(self.processor.consume(batch(spans)))
        return self.downstream.spans()[before:]

    def send_each(self, spans: list[Span]) -> Found:
        """Every span in its own request; the findings in the order they were raised."""
        found: Found = []
        for span in spans:
            [passed] = self.send([span])
            found.extend((finding["gen_ai.security.detector.id"], passed.name) for finding in findings_on(passed))
        return found


@pytest.fixture
def detector(make_settings: Callable[..., ComponentSettings]) -> Detector:
    return Detector(make_settings("genai_loop_detection", "processor"))


def _loop_findings(spans: list[Span]) -> list[dict[str, Any]]:
    return [finding for span in spans for finding in findings_on(span)]


def test_a_healthy_agent_raises_nothing(detector: Detector) -> None:
    agent = Agent()
    for page in range(4):
        agent.step("search", {"query": "quarterly report", "page": page}, f"results page {page}")
    agent.step("search", {"query": "quarterly report", "page": 0}, "results page 0")  # twice is not a loop
    agent.chat(text="Here is the report.")
    agent.finish()
    assert detector.send_each(agent.spans) == []


def test_the_same_tool_call_three_times_is_flagged_on_the_third_request(detector: Detector) -> None:
    agent = Agent()
    for _ in range(3):
        agent.step("search", {"query": "report", "limit": 5}, "no results")
    assert detector.send_each(agent.spans) == [("repeated_tool_call", "chat gpt-4o")]
    # Raised as the fifth span passed (LLM, tool, LLM, tool, LLM asking for the third identical call),
    # before the third call ran and before the trace ended.
    flagged = detector.downstream.spans()[4]
    assert flagged.span_id == agent.spans[4].span_id
    [finding] = findings_on(flagged)
    assert finding["gen_ai.security.loop.repetitions"] == 3
    assert finding["gen_ai.security.loop.pattern"] == 'search({"limit":5,"query":"report"}) x3'
    assert finding["gen_ai.security.loop.scope"] == "trace"
    assert finding["gen_ai.security.category"] == "agent_loop" and finding["gen_ai.security.severity"] == "high"
    assert finding["gen_ai.security.loop.tokens"] == 3 * 110 - 110  # the two LLM calls from the first call on
    assert finding["gen_ai.security.loop.first_span_id"] == agent.spans[0].span_id.hex()


def test_argument_order_and_encoding_do_not_hide_a_repeat(detector: Detector) -> None:
    agent = Agent()
    for arguments in ({"a": 1, "b": 2}, {"b": 2, "a": 1}, {"a": 1, "b": 2}):
        agent.step("lookup", arguments, "same")
    assert ("repeated_tool_call", "chat gpt-4o") in detector.send_each(agent.spans)


def test_tool_spans_without_ids_are_matched_to_the_request_not_counted_twice(detector: Detector) -> None:
    agent = Agent()
    for _ in range(2):
        [call_id] = agent.chat([("fetch", {"url": "https://example.org"})])
        agent.tool(None, "fetch", {"url": "https://example.org"}, "page")
    assert detector.send_each(agent.spans) == []


def test_a_cycle_of_two_calls_is_flagged_when_it_repeats_a_third_time(detector: Detector) -> None:
    agent = Agent()
    for _ in range(3):
        agent.step("open_file", {"path": "a.txt"}, "contents of a")
        agent.step("open_file", {"path": "b.txt"}, "contents of b")
    found = detector.send_each(agent.spans)
    assert ("call_cycle", "chat gpt-4o") in found
    [(flagged, cycle)] = [
        (span, finding)
        for span in detector.downstream.spans()
        for finding in findings_on(span)
        if finding["gen_ai.security.detector.id"] == "call_cycle"
    ]
    assert cycle["gen_ai.security.loop.pattern"] == 'open_file({"path":"a.txt"}) -> open_file({"path":"b.txt"})'
    assert cycle["gen_ai.security.loop.repetitions"] == 3
    # The third repetition completes with the eleventh span: the request for b.txt the third time.
    assert flagged.span_id == agent.spans[10].span_id


def test_an_agent_resending_the_same_request_is_flagged(detector: Detector) -> None:
    agent = Agent()
    for _ in range(3):
        start = agent.clock
        agent.chat(text="I could not find it.")
        agent.messages.pop()  # the app throws the answer away and asks again, unchanged
        assert agent.clock > start
    assert detector.send_each(agent.spans) == [("repeated_request", "chat gpt-4o")]
    [finding] = _loop_findings(detector.downstream.spans())
    assert finding["gen_ai.security.loop.repetitions"] == 3


def test_a_conversation_that_only_repeats_itself_is_flagged(detector: Detector) -> None:
    agent = Agent()
    agent.chat(text="Which report?")
    for _ in range(3):
        agent.messages.append({"role": "user", "parts": [{"type": "text", "content": "find the report"}]})
        agent.chat(text="Which report?")
    assert ("repeated_request", "chat gpt-4o") in detector.send_each(agent.spans)


def test_a_tool_call_that_never_ran_is_flagged_on_the_request_that_goes_on_without_it(detector: Detector) -> None:
    agent = Agent()
    agent.chat([("send_email", {"to": "ann@example.org"})])  # asked for, never run, no result added
    agent.chat(text="Done, the email is sent.")
    found = detector.send_each(agent.spans)
    assert found == [("unexecuted_tool_call", "chat gpt-4o")]
    flagged = detector.downstream.spans()[1]
    [finding] = findings_on(flagged)
    assert finding["gen_ai.security.analysis.related_span_id"] == agent.spans[0].span_id.hex()


def test_a_tool_call_still_missing_when_the_agent_ends_is_flagged_on_the_agent_span(detector: Detector) -> None:
    agent = Agent()
    agent.chat([("send_email", {"to": "ann@example.org"})])
    agent.finish()
    assert detector.send_each(agent.spans) == [("unexecuted_tool_call", "invoke_agent researcher")]


@pytest.mark.parametrize("operation", ["invoke_workflow", "handle_conversation_turn"])
def test_workflows_and_conversation_turns_end_a_run_as_agents_do(detector: Detector, operation: str) -> None:
    agent = Agent()
    agent.chat([("send_email", {"to": "ann@example.org"})])
    agent.finish()
    SpanAttributes(agent.spans[-1]).set("gen_ai.operation.name", operation)
    assert detector.send_each(agent.spans) == [("unexecuted_tool_call", "invoke_agent researcher")]


def test_the_second_record_of_a_call_is_no_step(detector: Detector) -> None:
    agent = Agent(conversation_id="conv-1")
    for _ in range(3):
        agent.chat(text="Which report?")
        agent.messages.append({"role": "user", "parts": [{"type": "text", "content": "find the report"}]})
    # Each call recorded twice (an app's span and the proxy's), the app's marked by genai_dedup: two requests
    # in a row are not yet a repetition, so nothing is found, as with single records.
    doubled: list[Span] = []
    for span in agent.spans[:2]:
        copy = Span()
        copy.CopyFrom(span)
        copy.span_id = bytes(8)
        SpanAttributes(copy).set("gen_ai.call.duplicate_of", span.span_id.hex())
        doubled += [span, copy]
    assert detector.send_each(doubled) == []
    assert detector.processor.traces.get(agent.trace_id).step_count == 2


def test_a_tool_error_ignored_and_repeated_is_flagged(detector: Detector) -> None:
    agent = Agent()
    agent.step("query_db", {"sql": "SELEC 1"}, "syntax error", error=True)
    agent.step("query_db", {"sql": "SELEC 1"}, "syntax error", error=True)
    assert ("ignored_tool_error", "chat gpt-4o") in detector.send_each(agent.spans)


def test_a_tool_error_handled_by_changing_the_call_is_not_flagged(detector: Detector) -> None:
    agent = Agent()
    agent.step("query_db", {"sql": "SELEC 1"}, "syntax error", error=True)
    agent.step("query_db", {"sql": "SELECT 1"}, "1")
    assert detector.send_each(agent.spans) == []


def test_budgets_are_reported_once_when_crossed(make_settings: Callable[..., ComponentSettings]) -> None:
    config = GenAiLoopDetectionConfig(trace_budget=Budget(max_steps=10, max_tokens=0, max_cost=0.004))
    detector = Detector(make_settings("genai_loop_detection", "processor"), config)
    agent = Agent()
    for page in range(8):
        agent.step("search", {"page": page}, f"page {page}")
    found = detector.send_each(agent.spans)
    assert sorted(found) == [("cost_budget", "chat gpt-4o"), ("step_budget", "chat gpt-4o")]
    budget = next(
        f for f in _loop_findings(detector.downstream.spans()) if f["gen_ai.security.detector.id"] == "step_budget"
    )
    # One LLM call asking for a tool call adds two steps: 10 becomes 12.
    assert (budget["gen_ai.security.budget.limit"], budget["gen_ai.security.budget.value"]) == (10, 12)


def test_repeats_across_the_traces_of_one_conversation(detector: Detector) -> None:
    found: list[tuple[str, str]] = []
    for turn in range(3):
        agent = Agent(conversation_id="conv-7", clock=1_700_000_000 * SECOND + turn * 600 * SECOND)
        agent.step("get_weather", {"city": "Paris"}, "sunny")
        agent.chat(text="It is sunny.")
        found.extend(detector.send_each(agent.spans))
    assert found == [("repeated_tool_call", "chat gpt-4o")]
    [finding] = _loop_findings(detector.downstream.spans())
    assert finding["gen_ai.security.loop.scope"] == "conversation"


@pytest.mark.parametrize("seed", range(6))
def test_spans_out_of_order_and_across_requests_raise_the_same_findings(
    make_settings: Callable[..., ComponentSettings], seed: int
) -> None:
    agent = Agent()
    for _ in range(4):
        agent.step("search", {"query": "report"}, "no results")
    agent.step("open_file", {"path": "a.txt"}, "a")
    agent.step("open_file", {"path": "b.txt"}, "b")
    agent.chat([("send_email", {"to": "x@example.org"})])
    agent.chat(text="done")
    root = agent.finish()
    in_order = Detector(make_settings("genai_loop_detection", "processor"))
    expected = sorted(detector for detector, _ in in_order.send_each(agent.spans))
    assert expected == ["repeated_request", "repeated_tool_call", "unexecuted_tool_call"]

    shuffled = Detector(make_settings("genai_loop_detection", "processor"))
    spans = [span for span in agent.spans if span is not root]
    random.Random(seed).shuffle(spans)
    passed: list[Span] = []
    for start in range(0, len(spans), 3):  # several requests, each with a few spans in no order
        passed.extend(shuffled.send(spans[start : start + 3]))
    passed.extend(shuffled.send([root]))  # the agent's own span ends last
    assert sorted(f["gen_ai.security.detector.id"] for f in _loop_findings(passed)) == expected


def test_a_latency_outlier_against_its_model(make_settings: Callable[..., ComponentSettings]) -> None:
    config = GenAiLoopDetectionConfig(latency=LatencySettings(min_samples=20))
    detector = Detector(make_settings("genai_loop_detection", "processor"), config)
    rng = random.Random(3)
    agent = Agent()
    for _ in range(40):
        agent.chat(text=f"answer {rng.random()}", seconds=rng.uniform(0.8, 1.6))
        agent.messages.append({"role": "user", "parts": [{"type": "text", "content": f"next {rng.random()}"}]})
    agent.chat(text="slow", seconds=40.0)
    assert detector.send_each(agent.spans) == [("latency_outlier", "chat gpt-4o")]


def test_the_summary_adds_to_an_earlier_processors_findings(detector: Detector) -> None:
    agent = Agent()
    agent.chat([("send_email", {"to": "ann@example.org"})])
    agent.chat(text="sent")
    attributes = SpanAttributes(agent.spans[1])
    attributes.set(FINDINGS_COUNT, 2)
    attributes.set(FINDINGS_MAX_SEVERITY, "critical")
    passed = detector.send(agent.spans)
    summary = SpanAttributes(passed[1])
    assert (summary.get(FINDINGS_COUNT), summary.get(FINDINGS_MAX_SEVERITY)) == (3, "critical")


def test_memory_is_bounded_and_evictions_are_counted(make_settings: Callable[..., ComponentSettings]) -> None:
    settings = make_settings("genai_loop_detection", "processor")
    detector = Detector(settings, GenAiLoopDetectionConfig(max_traces=5, max_steps=20))
    for _ in range(8):
        agent = Agent()
        for page in range(15):
            agent.step("search", {"page": page}, "x")
        detector.send(agent.spans)
    assert len(detector.processor.traces) == 5
    labels = {"processor": "genai_loop_detection", "scope": "trace"}
    assert settings.telemetry.value("genai_loop_detection_evicted_runs", reason="limit", **labels) == 3
    assert settings.telemetry.value("genai_loop_detection_dropped_steps", **labels) == 8 * (30 - 20)
    assert settings.telemetry.value("genai_loop_detection_open_runs", **labels) == 5


def test_idle_runs_expire() -> None:
    now = [0.0]
    evicted: list[tuple[str, str, int]] = []
    config = GenAiLoopDetectionConfig()
    runs = Runs(
        "trace",
        10,
        60.0,
        lambda: Run("trace", config, config.trace_budget),
        lambda *a: evicted.append(a),
        lambda: now[0],
    )
    runs.get("a")
    now[0] = 30.0
    runs.get("b")
    now[0] = 61.0
    runs.expire()
    assert len(runs) == 1 and evicted == [("trace", "idle", 1)]


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ({"repeated_tool_calls": 1}, "processors.genai_loop_detection.repeated_tool_calls: must be at least 2"),
        ({"max_steps": 5}, "processors.genai_loop_detection.max_steps: must be at least max_cycle_length"),
        ({"trace_budget": {"max_cost": -1}}, "processors.genai_loop_detection.trace_budget.max_cost: must not be"),
        ({"trace_idle_timeout": "soon"}, "processors.genai_loop_detection.trace_idle_timeout: expected a duration"),
        ({"late_span_wait": "0s"}, "processors.genai_loop_detection.late_span_wait: must be more than 0"),
    ],
)
def test_config_mistakes_are_one_line_each(raw: dict[str, Any], problem: str) -> None:
    with pytest.raises(ConfigError) as error:
        decode(GenAiLoopDetectionConfig, raw, "processors.genai_loop_detection")
    [line] = [str(p) for p in error.value.problems]
    assert line.startswith(problem)


def test_loop_findings_reach_the_alerts_webhook(tmp_path: Path) -> None:
    receiver = Receiver()
    config = f"""
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:0
processors:
  genai_loop_detection:
exporters:
  alerts:
    min_severity: high
    webhook:
      endpoint: {receiver.url}/hook
service:
  pipelines:
    traces:
      receivers: [otlp]
      processors: [genai_loop_detection]
      exporters: [alerts]
"""
    collector = RunningService(config, tmp_path)
    try:
        import httpx

        agent = Agent()
        for _ in range(3):
            agent.step("search", {"query": "report"}, "no results")
        url = f"http://127.0.0.1:{collector.port()}/v1/traces"
        for span in agent.spans:  # one request per span, as a SimpleSpanProcessor sends them
            body = batch([span]).SerializeToString()
            assert httpx.post(url, content=body, headers={"Content-Type": "application/x-protobuf"}).status_code == 200
    finally:
        collector.stop()  # drains the alerts queue
        receiver.server.shutdown()
    bodies = [body for path, body, _ in receiver.received if path == "/hook"]
    assert [body["detector"] for body in bodies] == ["repeated_tool_call"]
    assert bodies[0]["category"] == "agent_loop" and json.dumps(bodies[0])
    assert bodies[0]["trace_id"] == agent.trace_id.hex()


def test_tool_calls_without_ids_are_one_step_each(detector: Detector) -> None:
    # Some providers give tool calls no id: the request and its tool span are still one call.
    agent = Agent()
    for _ in range(2):
        agent.chat([("weather", {"city": "paris"})])
        agent.tool(None, "weather", {"city": "paris"}, "sunny")
    for span in agent.spans:  # drop the ids the helper gave the requests
        for pair in span.attributes:
            if pair.key == "gen_ai.output.messages":
                messages = json.loads(pair.value.string_value)
                for message in messages:
                    for part in message["parts"]:
                        part.pop("id", None)
                pair.value.string_value = json.dumps(messages)
    assert detector.send_each(agent.spans) == []  # two calls are not three


def test_arguments_nested_too_deep_do_not_stop_the_batch(detector: Detector) -> None:
    agent = Agent()
    deep = json.loads("[" * 400 + "]" * 400)
    for _ in range(3):
        agent.step("f", {"x": deep}, "r")
    detector.send(agent.spans)  # no exception; such calls are never taken for repeats


# ---- What frameworks' exporters do: tool spans without ids, spans without the conversation, parents first


def _without_conversation(span: Span) -> Span:
    SpanAttributes(span).remove(["gen_ai.conversation.id"])
    return span


def _skewed(span: Span, seconds: int) -> Span:
    """``span`` as a process whose clock is ``seconds`` ahead would stamp it."""
    span.start_time_unix_nano += seconds * SECOND
    span.end_time_unix_nano += seconds * SECOND
    return span


@pytest.mark.parametrize("skew", [0, 3600])
def test_a_tool_span_without_an_id_is_the_run_of_the_call_asked_for_after_its_result_went_back(
    detector: Detector, skew: int
) -> None:
    # CrewAI's tool spans carry no call id; the proxy's spans of the calls (ids in their outputs) arrive first,
    # the next request already carrying each result; the proxy's clock may run ahead of the app's.
    agent = Agent()
    [failed] = agent.chat([("get_weather", {"city": "Pariss"})])
    agent.tool(failed, "get_weather", {"city": "Pariss"}, "Did you mean 'Paris'?", error=True)
    [retried] = agent.chat([("get_weather", {"city": "Paris"})])
    agent.tool(retried, "get_weather", {"city": "Paris"}, "sunny")
    agent.chat(text="It is sunny in Paris.")
    requests = [_skewed(span, skew) for span in agent.spans if span.name.startswith("chat")]
    tools = [span for span in agent.spans if span.name.startswith("execute_tool")]
    for span in tools:
        SpanAttributes(span).remove(["gen_ai.tool.call.id"])
    assert detector.send_each(requests + tools) == []
    assert detector.processor.traces.get(agent.trace_id).call_counts == {
        ("get_weather", '{"city":"Pariss"}'): 1,
        ("get_weather", '{"city":"Paris"}'): 1,
    }


def test_a_span_naming_no_conversation_is_in_its_traces(detector: Detector) -> None:
    # Google ADK names the conversation on its model call and agent spans, not on its tool spans.
    agent = Agent(conversation_id="session-1")
    agent.step("get_weather", {"city": "Paris"}, "sunny")
    [last] = agent.chat([("get_weather", {"city": "Rome"})])
    agent.tool(last, "get_weather", {"city": "Rome"}, "cloudy")
    agent.finish()  # the run stops after the tool ran: no request carries its result
    spans = [_without_conversation(s) if s.name.startswith("execute_tool") else s for s in agent.spans]
    assert detector.send_each(spans) == []  # the conversation saw the tool run too


def test_a_marked_record_with_messages_stands_in_for_a_counted_one_without(detector: Detector) -> None:
    # Google ADK's generate_content span (messages) around the anthropic SDK's (none), which counts.
    agent = Agent()
    for _ in range(3):
        agent.step("get_weather", {"city": "Paris"}, "sunny")
    spans: list[Span] = []
    for span in agent.spans:
        if span.name.startswith("chat"):
            client = Span()
            client.CopyFrom(span)
            client.span_id, client.parent_span_id = os.urandom(8), span.span_id
            SpanAttributes(client).remove(["gen_ai.input.messages", "gen_ai.output.messages"])
            SpanAttributes(span).set("gen_ai.call.duplicate_of", client.span_id.hex())
            spans.append(client)
        spans.append(span)
    assert detector.send_each(spans) == [("repeated_tool_call", "chat gpt-4o")]
    run = detector.processor.traces.get(agent.trace_id)
    assert (run.step_count, run.tokens) == (6, 3 * 110)  # three calls and three tool runs, each call once


def test_a_marked_record_whose_counted_one_is_in_another_trace_is_a_step_of_its_own(detector: Detector) -> None:
    # The proxy's span of a call that carried no traceparent counts, in a trace of its own.
    agent = Agent()
    agent.chat([("send_email", {"to": "ann@example.org"})])
    agent.finish()
    for span in agent.spans[:1]:
        SpanAttributes(span).set("gen_ai.call.duplicate_of", "00000000000000aa")
    assert detector.send_each(agent.spans) == [("unexecuted_tool_call", "invoke_agent researcher")]


def test_a_call_pending_under_an_agent_span_that_came_first_is_judged_once_the_spans_stop(detector: Detector) -> None:
    # LangSmith sends a trace's runs parents first: the agent's span, then its steps.
    agent = Agent()
    agent.step("get_weather", {"city": "Paris"}, "sunny")
    agent.chat([("get_weather", {"city": "Paris"})])  # the limit stops the run: this call never runs
    root = agent.finish()
    assert detector.send_each([root, *agent.spans[:-1]]) == []
    detector.now += GenAiLoopDetectionConfig().late_span_wait - 1
    assert detector.send([]) == []  # spans may still come
    detector.now += 2
    [carrier] = detector.send([])
    [finding] = findings_on(carrier)
    asked = agent.spans[2]
    assert finding["gen_ai.security.detector.id"] == "unexecuted_tool_call"
    assert finding["gen_ai.security.analysis.related_span_id"] == asked.span_id.hex()
    assert (carrier.trace_id, carrier.parent_span_id, carrier.name) == (agent.trace_id, asked.span_id, FINDING_EVENT)
    assert carrier.end_time_unix_nano == asked.end_time_unix_nano
    assert detector.send([]) == []  # judged once


def test_a_call_run_before_the_spans_stop_is_not_judged_late(detector: Detector) -> None:
    agent = Agent()
    [call_id] = agent.chat([("get_weather", {"city": "Paris"})])
    agent.tool(call_id, "get_weather", {"city": "Paris"}, "sunny")
    root = agent.finish()
    detector.send_each([root, agent.spans[0]])
    detector.now += GenAiLoopDetectionConfig().late_span_wait - 1
    detector.send([agent.spans[1]])  # the tool's span, in the next export
    detector.now += GenAiLoopDetectionConfig().late_span_wait + 1
    assert detector.send([]) == []
    assert _loop_findings(detector.downstream.spans()) == []
