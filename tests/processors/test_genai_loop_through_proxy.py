"""genai_loop_detection behind the genai_proxy receiver: an openai SDK agent's calls, as the proxy records them.

The proxy joins the calls of one conversation into one trace and gives them one
``gen_ai.conversation.id``, so every check runs in both scopes. A healthy
agent that runs its tool and sends the result back raises nothing; one that
goes on without running it gets the ``unexecuted_tool_call`` finding.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import openai

from tests.conftest import RunningService, query_store
from tests.proxy.mock_upstream import MockUpstream, serve

WEATHER_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def _config(chdb_dir: Path, upstream_url: str) -> str:
    return f"""
receivers:
  genai_proxy:
    endpoint: 127.0.0.1:0
    capture_content: true
    upstreams:
      - name: openai
        kind: openai
        base_url: {upstream_url}/v1
        models: ["gpt-*"]
processors:
  genai_normalize:
  genai_cost:
  genai_loop_detection:
exporters:
  clickhouse:
    endpoint: chdb://{chdb_dir}
    sending_queue:
      batch:
        flush_timeout: 50ms
service:
  pipelines:
    traces:
      receivers: [genai_proxy]
      processors: [genai_normalize, genai_cost, genai_loop_detection]
      exporters: [clickhouse]
"""


def _agent(client: openai.OpenAI, question: str, run_tool: bool) -> None:
    """Ask, let the model call its tool, then send the tool's result back (or, when not ``run_tool``, go on)."""
    messages: list[Any] = [{"role": "user", "content": question}]
    first = client.chat.completions.create(model="gpt-4o-mini", messages=messages, tools=[WEATHER_TOOL])
    message = first.choices[0].message
    assert message.tool_calls, "the mock calls the first offered tool"
    messages.append(message.model_dump(exclude_none=True))
    if run_tool:
        for call in message.tool_calls:
            arguments = json.loads(call.function.arguments)
            messages.append({"role": "tool", "tool_call_id": call.id, "content": f"sunny in {arguments['city']}"})
    else:
        messages.append({"role": "user", "content": "Never mind the weather; tell me a joke."})
    # Offered the tool again after its result, the mock answers in text; the agent that skipped the tool drops it.
    tools = [WEATHER_TOOL] if run_tool else openai.NOT_GIVEN
    second = client.chat.completions.create(model="gpt-4o-mini", messages=messages, tools=tools)
    assert second.choices[0].message.content


def _run(chdb_dir: Path, tmp_path: Path, run_tool: bool) -> tuple[list[list[object]], list[list[object]]]:
    """Two agent runs through the collector; the calls' conversation ids and trace ids, and the findings."""
    with serve(MockUpstream()) as url:
        service = RunningService(_config(chdb_dir, url), tmp_path)
        try:
            port = service.service.receivers[next(iter(service.service.receivers))].port  # type: ignore[attr-defined]
            client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="sk-x", max_retries=0)
            _agent(client, "What is the weather in Paris?", run_tool)
            _agent(client, "What is the weather in Oslo?", run_tool)
        finally:
            service.stop()  # drains the proxy's spans through the processors into the store
    calls = query_store(
        chdb_dir,
        "SELECT TraceId, SpanAttributes['gen_ai.conversation.id'] FROM otel_traces ORDER BY Timestamp",
    )
    findings = query_store(
        chdb_dir, "SELECT Detector, Attributes['gen_ai.security.loop.scope'] FROM genai_findings ORDER BY Detector"
    )
    return calls, findings


def test_a_healthy_tool_using_agent_raises_no_finding_in_either_scope(chdb_path: Path, tmp_path: Path) -> None:
    calls, findings = _run(chdb_path, tmp_path, run_tool=True)
    assert len(calls) == 4
    # Each agent's two calls share a trace and a conversation: both scopes saw the tool call and its result.
    assert calls[0] == calls[1] and calls[2] == calls[3] and calls[0] != calls[2]
    assert all(conversation for _, conversation in calls)
    assert findings == []


def test_an_agent_that_goes_on_without_running_its_tool_is_flagged_once(chdb_path: Path, tmp_path: Path) -> None:
    calls, findings = _run(chdb_path, tmp_path, run_tool=False)
    assert len(calls) == 4
    # Reported in the trace scope; the conversation scope does not report the same call again on the same span.
    assert findings == [["unexecuted_tool_call", "trace"], ["unexecuted_tool_call", "trace"]]
