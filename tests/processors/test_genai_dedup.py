"""genai_dedup: an app's span and the proxy's span of the same call, in either order, counted once.

Spans here are shaped as the two producers make them: the app's inference span
(an instrumentation's ``chat`` span), optionally an HTTP client span under it,
and the proxy's span (``gen_ai.proxy.upstream``) under that through
``traceparent``, or in a trace of its own with the same response id; and an app
inference span around another (a framework's around its client library's).
End to end, with the real SDKs: test_genai_dedup_end_to_end.py; with the
recorded agent frameworks: test_genai_frameworks_end_to_end.py.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from typing import Any

import pytest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from collector.component import ComponentSettings
from collector.config.decode import decode
from collector.config.problems import ConfigError
from collector.pdata import SpanAttributes, set_any_value
from processors.genai_dedup import GenAiDedupProcessor
from processors.genai_dedup.config import GenAiDedupConfig
from tests.conftest import RecordingConsumer
from tests.processors.agent_spans import batch

DUPLICATE_OF = "gen_ai.call.duplicate_of"
LABELS = {"processor": "genai_dedup"}
CALL = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o", "gen_ai.usage.input_tokens": 10}


class Dedup:
    """The processor, a clock it reads, and what it passed on."""

    def __init__(self, settings: ComponentSettings, config: GenAiDedupConfig | None = None) -> None:
        self.now = 0.0
        self.settings = settings
        self.downstream = RecordingConsumer()
        self.processor = GenAiDedupProcessor(
            settings, config or GenAiDedupConfig(), self.downstream, clock=lambda: self.now
        )

    def send(self, *spans: Span) -> None:
        asyncio.run(self.processor.consume(batch(list(spans))))

    def marks(self) -> dict[bytes, str]:
        """The marked spans passed on, by span id: the span id they name as counted."""
        return {
            span.span_id: str(SpanAttributes(span).get(DUPLICATE_OF))
            for span in self.downstream.spans()
            if DUPLICATE_OF in SpanAttributes(span)
        }

    def count(self, name: str, **labels: str) -> float:
        return self.settings.telemetry.value(name, **LABELS, **labels)


@pytest.fixture
def dedup(make_settings: Callable[..., ComponentSettings]) -> Dedup:
    return Dedup(make_settings("genai_dedup", "processor"))


def _span(trace: bytes, attributes: dict[str, Any], parent: bytes = b"", kind: int = Span.SPAN_KIND_CLIENT) -> Span:
    span = Span(trace_id=trace, span_id=os.urandom(8), parent_span_id=parent, kind=kind, name="span")
    for key, value in attributes.items():
        set_any_value(span.attributes.add(key=key).value, value)
    return span


def _app_call(trace: bytes, parent: bytes = b"", **extra: Any) -> Span:
    return _span(trace, {**CALL, **extra}, parent)


def _proxy_call(trace: bytes, parent: bytes, **extra: Any) -> Span:
    return _span(trace, {**CALL, "gen_ai.proxy.upstream": "openai", **extra}, parent)


def _id(response_id: str) -> dict[str, Any]:
    return {"gen_ai.response.id": response_id}


def _http(trace: bytes, parent: bytes) -> Span:
    return _span(trace, {"http.request.method": "POST"}, parent)


def test_the_proxy_span_first_marks_the_apps(dedup: Dedup) -> None:
    trace = os.urandom(16)
    app = _app_call(trace)
    proxy = _proxy_call(trace, app.span_id)
    dedup.send(proxy)
    dedup.send(app)
    assert dedup.marks() == {app.span_id: proxy.span_id.hex()}
    assert dedup.count("genai_dedup_marked_spans", marked="app") == 1


def test_the_app_span_first_gets_the_proxy_span_marked(dedup: Dedup) -> None:
    trace = os.urandom(16)
    app = _app_call(trace)
    proxy = _proxy_call(trace, app.span_id)
    dedup.send(app)
    dedup.send(proxy)
    assert dedup.marks() == {proxy.span_id: app.span_id.hex()}
    assert dedup.count("genai_dedup_marked_spans", marked="proxy") == 1


def test_in_one_batch_the_proxy_record_counts_whatever_the_order(dedup: Dedup) -> None:
    trace = os.urandom(16)
    app = _app_call(trace)
    proxy = _proxy_call(trace, app.span_id)
    dedup.send(app, proxy)
    assert dedup.marks() == {app.span_id: proxy.span_id.hex()}


@pytest.mark.parametrize(
    "order", ["proxy, then http and app", "http, then proxy, then app", "app and http, then proxy"]
)
def test_an_http_client_span_between_them_is_climbed(dedup: Dedup, order: str) -> None:
    trace = os.urandom(16)
    app = _app_call(trace)
    http = _http(trace, app.span_id)
    proxy = _proxy_call(trace, http.span_id)
    if order == "proxy, then http and app":
        dedup.send(proxy)
        dedup.send(http, app)
        expected = {app.span_id: proxy.span_id.hex()}
    elif order == "http, then proxy, then app":
        dedup.send(http)
        dedup.send(proxy)
        dedup.send(app)
        expected = {app.span_id: proxy.span_id.hex()}
    else:
        dedup.send(app, http)
        dedup.send(proxy)
        expected = {proxy.span_id: app.span_id.hex()}
    assert dedup.marks() == expected


def test_a_link_arriving_after_both_records_is_counted_as_unmatched(dedup: Dedup) -> None:
    trace = os.urandom(16)
    app = _app_call(trace)
    http = _http(trace, app.span_id)
    proxy = _proxy_call(trace, http.span_id)
    dedup.send(proxy)
    dedup.send(app)
    dedup.send(http)
    assert dedup.marks() == {}
    assert dedup.count("genai_dedup_unmatched_proxy_calls", reason="both_passed") == 1


def test_spans_that_are_not_calls_are_never_marked(dedup: Dedup) -> None:
    trace = os.urandom(16)
    agent = _span(trace, {"gen_ai.operation.name": "invoke_agent"}, kind=Span.SPAN_KIND_INTERNAL)
    first = _proxy_call(trace, agent.span_id)
    # A call the proxy joined to the trace of the conversation's previous call: its parent is a proxy span.
    second = _proxy_call(trace, first.span_id)
    # A call with no traceparent at all.
    alone = _proxy_call(os.urandom(16), b"")
    dedup.send(agent, first)
    dedup.send(second, alone)
    assert dedup.marks() == {}
    assert dedup.count("genai_dedup_marked_spans", marked="app") == 0


def test_an_app_span_after_the_window_is_not_marked_and_the_wait_is_counted(
    make_settings: Callable[..., ComponentSettings],
) -> None:
    dedup = Dedup(make_settings("genai_dedup", "processor"), GenAiDedupConfig(window=60.0))
    trace = os.urandom(16)
    app = _app_call(trace)
    proxy = _proxy_call(trace, app.span_id)
    dedup.send(proxy)
    dedup.now = 61.0
    dedup.send(_span(os.urandom(16), {}))  # any batch forgets what waited too long
    dedup.send(app)
    assert dedup.marks() == {}
    assert dedup.count("genai_dedup_unmatched_proxy_calls", reason="idle") == 1


def test_what_is_held_is_bounded_and_evictions_are_counted(make_settings: Callable[..., ComponentSettings]) -> None:
    dedup = Dedup(make_settings("genai_dedup", "processor"), GenAiDedupConfig(max_entries=3))
    traces = [os.urandom(16) for _ in range(5)]
    apps = [_app_call(trace) for trace in traces]
    dedup.send(*[_proxy_call(trace, app.span_id) for trace, app in zip(traces, apps, strict=True)])
    dedup.send(*apps)
    assert len(dedup.marks()) == 3  # the two oldest proxy calls were forgotten, and counted
    assert dedup.count("genai_dedup_unmatched_proxy_calls", reason="limit") == 2
    assert dedup.count("genai_dedup_waiting_proxy_calls") == 0


def test_a_marked_span_is_left_as_it_is(dedup: Dedup) -> None:
    trace = os.urandom(16)
    app = _app_call(trace)
    SpanAttributes(app).set(DUPLICATE_OF, "00000000000000aa")  # marked by a collector earlier on the way
    proxy = _proxy_call(trace, app.span_id)
    dedup.send(proxy, app)
    assert dedup.marks() == {app.span_id: "00000000000000aa"}


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ({"window": 0}, "processors.genai_dedup.window: must be more than 0"),
        ({"max_entries": 0}, "processors.genai_dedup.max_entries: must be at least 1"),
        ({"max_hops": -1}, "processors.genai_dedup.max_hops: must not be negative"),
        ({"ttl": "5m"}, "processors.genai_dedup.ttl: unknown key"),
    ],
)
def test_config_mistakes_are_one_line_each(raw: dict[str, Any], problem: str) -> None:
    with pytest.raises(ConfigError) as error:
        decode(GenAiDedupConfig, raw, "processors.genai_dedup")
    [line] = [str(p) for p in error.value.problems]
    assert line.startswith(problem)


# ---- The provider's response id: no traceparent reached the proxy


@pytest.mark.parametrize("proxy_first", [True, False])
def test_the_same_response_id_pairs_records_in_different_traces(dedup: Dedup, proxy_first: bool) -> None:
    agent = _span(os.urandom(16), {"gen_ai.operation.name": "invoke_agent"}, kind=Span.SPAN_KIND_INTERNAL)
    app = _app_call(agent.trace_id, agent.span_id, **_id("chatcmpl-A1"))
    proxy = _proxy_call(os.urandom(16), b"", **_id("chatcmpl-A1"))  # a trace of its own
    other = _proxy_call(os.urandom(16), b"", **_id("chatcmpl-B2"))
    if proxy_first:
        dedup.send(proxy, other)
        dedup.send(app, agent)
        assert dedup.marks() == {app.span_id: proxy.span_id.hex()}
    else:
        dedup.send(app, agent)
        dedup.send(proxy, other)
        assert dedup.marks() == {proxy.span_id: app.span_id.hex()}


def test_a_proxy_span_under_another_span_of_the_app_is_paired_by_response_id(dedup: Dedup) -> None:
    # The app's server span was current, its model call span was not: traceparent names the server span.
    trace = os.urandom(16)
    server = _span(trace, {"http.route": "/ask"}, kind=Span.SPAN_KIND_SERVER)
    app = _app_call(trace, server.span_id, **_id("msg_01X"))
    proxy = _proxy_call(trace, server.span_id, **_id("msg_01X"))
    dedup.send(proxy)
    dedup.send(app)
    dedup.send(server)
    assert dedup.marks() == {app.span_id: proxy.span_id.hex()}
    assert dedup.count("genai_dedup_waiting_proxy_calls") == 0  # matched by id, forgotten under its parent too


def test_records_of_different_models_are_not_paired_by_response_id(dedup: Dedup) -> None:
    app = _app_call(os.urandom(16), **_id("chatcmpl-7"))
    proxy = _proxy_call(os.urandom(16), b"", **{**_id("chatcmpl-7"), "gen_ai.request.model": "llama3"})
    dedup.send(proxy)
    dedup.send(app)
    assert dedup.marks() == {}


def test_a_server_that_repeats_ids_still_gets_each_record_paired_once(dedup: Dedup) -> None:
    # Some OpenAI-compatible servers number ids from a small range: records pair first come, first served.
    apps = [_app_call(os.urandom(16), **_id("chatcmpl-123")) for _ in range(3)]
    proxies = [_proxy_call(os.urandom(16), b"", **_id("chatcmpl-123")) for _ in range(3)]
    dedup.send(*proxies)
    dedup.send(*apps)
    marks = dedup.marks()
    assert set(marks) == {app.span_id for app in apps}
    assert sorted(marks.values()) == sorted(proxy.span_id.hex() for proxy in proxies)


def test_a_proxy_span_paired_through_its_parent_is_not_paired_again_by_id(dedup: Dedup) -> None:
    trace = os.urandom(16)
    app = _app_call(trace, **_id("chatcmpl-9"))
    proxy = _proxy_call(trace, app.span_id, **_id("chatcmpl-9"))
    late_copy = _app_call(os.urandom(16), **_id("chatcmpl-9"))  # a record of nothing the proxy saw twice
    dedup.send(proxy)
    dedup.send(app)
    dedup.send(late_copy)
    assert dedup.marks() == {app.span_id: proxy.span_id.hex()}


# ---- One app recording a call twice: a framework's model call span around its client library's


def test_the_innermost_app_record_counts_and_the_one_around_it_is_marked(dedup: Dedup) -> None:
    trace = os.urandom(16)
    framework = _app_call(trace)
    client = _app_call(trace, framework.span_id)
    dedup.send(client)  # the inner span ends, and is exported, first
    dedup.send(framework)
    assert dedup.marks() == {framework.span_id: client.span_id.hex()}


def test_an_enclosing_record_that_came_first_counts_and_the_inner_one_is_marked(dedup: Dedup) -> None:
    # Exporters that send parents first (LangSmith's): the outer record went on, the inner one is the duplicate.
    trace = os.urandom(16)
    framework = _app_call(trace)
    client = _app_call(trace, framework.span_id)
    dedup.send(framework)
    dedup.send(client)
    assert dedup.marks() == {client.span_id: framework.span_id.hex()}


@pytest.mark.parametrize("order", ["proxy, client, framework", "client, framework, proxy", "all in one batch"])
def test_with_the_proxy_below_both_app_records_one_record_counts(dedup: Dedup, order: str) -> None:
    # Google ADK's generate_content span, the anthropic SDK's span inside it, the proxy's under that.
    trace = os.urandom(16)
    agent = _span(trace, {"gen_ai.operation.name": "invoke_agent"}, kind=Span.SPAN_KIND_INTERNAL)
    framework = _app_call(trace, agent.span_id)
    client = _app_call(trace, framework.span_id, **_id("msg_01A"))
    proxy = _proxy_call(trace, client.span_id, **_id("msg_01A"))
    if order == "proxy, client, framework":
        for span in (proxy, client, framework, agent):
            dedup.send(span)
        counted = proxy
    elif order == "client, framework, proxy":
        for span in (client, framework, agent, proxy):
            dedup.send(span)
        counted = client
    else:
        dedup.send(client, framework, agent, proxy)
        counted = proxy
    others = {span.span_id for span in (framework, client, proxy)} - {counted.span_id}
    assert dedup.marks() == dict.fromkeys(others, counted.span_id.hex())


def test_two_calls_inside_one_app_span_both_count(dedup: Dedup) -> None:
    # A framework's model call that retried inside (a failed attempt, then another): two calls upstream.
    trace = os.urandom(16)
    framework = _app_call(trace)
    first, second = _app_call(trace, framework.span_id), _app_call(trace, framework.span_id)
    dedup.send(first)
    dedup.send(second)
    dedup.send(framework)
    assert set(dedup.marks()) == {framework.span_id}
