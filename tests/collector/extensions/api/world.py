"""A running collector with the api extension and a known store: the ground truth the API tests compare against.

Spans come the two ways users send them: the OpenTelemetry SDK's OTLP/HTTP
exporter (traces with fixed times in one hour, ``HOUR``, so every filter has
an exact answer) and the official openai SDK through the genai_proxy receiver
in managed mode, whose proxy keys stamp the tenant (those spans carry the
time they were made, in ``live``).

Tenants: ``acme`` (the span attribute tenant.id), ``globex`` (the resource
attribute: the fallback), and spans of no tenant. API keys: one per role,
and viewers bound to acme and to globex.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import openai
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags, set_span_in_context

from collector import findings, semconv
from collector.component import ComponentID
from collector.extensions.api.extension import ApiExtension
from collector.keys import KeyStore
from tests.conftest import RunningService
from tests.proxy.mock_upstream import MockUpstream, serve

SECOND = 1_000_000_000
MINUTE = 60 * SECOND
# A whole hour in the past (so the rollup can answer for it): 2025-06-02T10:00:00Z.
HOUR = 1_748_858_400 * SECOND
HOUR_END = HOUR + 60 * MINUTE
WAIT_SECONDS = 60.0
POLL_SECONDS = 0.05
UPSTREAM_KEY = "sk-upstream"
# Root span name → the short name tests use for its trace.
ROOTS = {
    "invoke_agent support": "acme-support",
    "chat claude-3-5-sonnet": "acme-batch",
    "chat gpt-4o globex": "globex-support",
    "chat gpt-4o-mini": "cron",
}


def rfc3339(nanos: int) -> str:
    from collector.extensions.api.params import format_timestamp

    return format_timestamp(nanos)


@dataclass
class World:
    """The running collector, its API's base URL, the keys, and what was sent (trace ids by name)."""

    service: RunningService
    base_url: str
    keys: dict[str, str]
    traces: dict[str, str] = field(default_factory=dict)  # name → trace id (hex)
    spans: dict[str, str] = field(default_factory=dict)  # name → span id (hex)
    live: dict[str, str] = field(default_factory=dict)  # tenant → trace id of its call through the proxy
    live_window: tuple[int, int] = (0, 0)
    sent_spans: int = 0
    sdk_spans: list[Any] = field(default_factory=list)  # the SDK's own records of the fixed-time spans
    proxy_port: int = 0  # the genai_proxy receiver's
    proxy_keys: dict[str, str] = field(default_factory=dict)  # tenant → its proxy key

    def root_of(self, trace_id: str) -> str:
        """The name given to the trace ``trace_id`` (its root span's)."""
        return ROOTS[next(name for name, tid in self.traces.items() if tid == trace_id and name in ROOTS)]

    def window(self, start: int = HOUR, end: int = HOUR_END) -> dict[str, str]:
        return {"start": rfc3339(start), "end": rfc3339(end)}

    @property
    def api(self) -> ApiExtension:
        extension = self.service.service.extensions[ComponentID.parse("api")]
        assert isinstance(extension, ApiExtension)
        return extension

    def get(self, path: str, key: str | None = "admin", **params: Any) -> httpx.Response:
        """GET ``path`` with the key named ``key`` (None: no key)."""
        headers = {"Authorization": f"Bearer {self.keys[key]}"} if key else {}
        return httpx.get(self.base_url + path, params=params, headers=headers, timeout=WAIT_SECONDS)

    def json(self, path: str, key: str | None = "admin", **params: Any) -> Any:
        answer = self.get(path, key, **params)
        assert answer.status_code == 200, answer.text
        return answer.json()


@dataclass(frozen=True)
class Pipeline:
    """What the traces pipeline runs besides the receivers and the store: none of it by default."""

    # Processor type and its settings as a YAML flow mapping ("{}": the defaults), in pipeline order.
    processors: tuple[tuple[str, str], ...] = ()
    capture_content: bool = False  # the proxy records prompts and replies on its spans
    workers: int | None = None  # service.workers; None: the default


def config(
    chdb_dir: Path,
    keys_file: Path,
    proxy_keys: Path,
    upstream: str,
    extra_api: str = "",
    pipeline: Pipeline = Pipeline(),
) -> str:
    processors = "".join(f"  {name}: {settings}\n" for name, settings in pipeline.processors)
    service_extra = "" if pipeline.workers is None else f"  workers: {pipeline.workers}\n"
    return f"""
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:0
  genai_proxy:
    endpoint: 127.0.0.1:0
    upstreams:
      - name: openai
        kind: openai
        base_url: {upstream}/v1
        api_key: {UPSTREAM_KEY}
        models: ["gpt-*"]
    auth:
      mode: managed
      keys_file: {proxy_keys}
    capture_content: {str(pipeline.capture_content).lower()}
processors:
{processors or "  {}"}
exporters:
  clickhouse:
    endpoint: chdb://{chdb_dir}
    sending_queue:
      batch:
        flush_timeout: 50ms
extensions:
  api:
    endpoint: 127.0.0.1:0
    grpc_endpoint: 127.0.0.1:0
    keys_file: {keys_file}
{extra_api}
service:
  extensions: [api]
{service_extra}  pipelines:
    traces:
      receivers: [otlp, genai_proxy]
      processors: [{", ".join(name for name, _ in pipeline.processors)}]
      exporters: [clickhouse]
"""


def make_keys(keys_file: Path) -> dict[str, str]:
    store = KeyStore(keys_file)
    made = {
        "admin": store.create(role="admin"),
        "operator": store.create(role="operator"),
        "viewer": store.create(role="viewer"),
        "acme": store.create(tenant="acme", role="viewer"),
        "globex": store.create(tenant="globex", role="viewer"),
        "proxy": store.create(tenant="acme"),
    }
    return {name: key for name, (_, key) in made.items()}


def _finding(detector: str, category: str, severity: str, confidence: float) -> dict[str, Any]:
    return {
        findings.DETECTOR: detector,
        findings.CATEGORY: category,
        findings.SEVERITY: severity,
        findings.CONFIDENCE: confidence,
    }


class _Sender:
    """Spans with fixed times over OTLP/HTTP, one TracerProvider per resource."""

    def __init__(self, url: str, world: World) -> None:
        self._url = url
        self._world = world
        self._providers: list[TracerProvider] = []
        self._memory = InMemorySpanExporter()

    def tracer(self, service: str, **resource: str) -> Any:
        provider = TracerProvider(resource=Resource.create({"service.name": service, **resource}))
        provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=self._url, timeout=30)))
        provider.add_span_processor(SimpleSpanProcessor(self._memory))
        self._providers.append(provider)
        return provider.get_tracer("tests.api", "1.2.3")

    def span(
        self,
        tracer: Any,
        name: str,
        start: int,
        seconds: float,
        parent: Any = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: dict[str, Any] | None = None,
        events: tuple[tuple[str, int, dict[str, Any]], ...] = (),
        links: tuple[Link, ...] = (),
        error: str | None = None,
    ) -> Any:
        context = set_span_in_context(parent) if parent is not None else None
        span = tracer.start_span(
            name, context=context, kind=kind, attributes=attributes or {}, start_time=start, links=list(links)
        )
        for event_name, at, event_attributes in events:
            span.add_event(event_name, event_attributes, timestamp=at)
        if error is not None:
            span.set_status(Status(StatusCode.ERROR, error))
        span.end(end_time=start + int(seconds * SECOND))
        context_of = span.get_span_context()
        self._world.traces.setdefault(name, format(context_of.trace_id, "032x"))
        self._world.spans[name] = format(context_of.span_id, "016x")
        self._world.sent_spans += 1
        return span

    def shutdown(self) -> None:
        for provider in self._providers:
            provider.shutdown()
        self._world.sdk_spans = list(self._memory.get_finished_spans())


def send_known_spans(world: World, url: str) -> None:
    """The fixed-time traces: see the module docstring and the expectations in the tests."""
    sender = _Sender(url, world)
    support = sender.tracer("support-bot")
    acme = {semconv.TENANT_ID: "acme"}

    # acme-support: an agent turn with a chat call (a finding on it), a failed tool call and a linked span.
    root = sender.span(
        support, "invoke_agent support", HOUR + 1 * MINUTE, 10,
        attributes={**acme, semconv.OPERATION_NAME: "invoke_agent", semconv.CONVERSATION_ID: "c-acme-1"},
        events=(("note", HOUR + 1 * MINUTE + 5 * SECOND, {"detail": "started", "attempt": 2}),),
    )  # fmt: skip
    sender.span(
        support, "chat gpt-4o", HOUR + 1 * MINUTE + 1 * SECOND, 2, parent=root, kind=SpanKind.CLIENT,
        attributes={
            **acme,
            semconv.OPERATION_NAME: "chat",
            semconv.PROVIDER_NAME: "openai",
            semconv.REQUEST_MODEL: "gpt-4o",
            semconv.RESPONSE_MODEL: "gpt-4o-2024-08-06",
            semconv.USAGE_INPUT_TOKENS: 100,
            semconv.USAGE_OUTPUT_TOKENS: 20,
            semconv.USAGE_CACHE_READ_INPUT_TOKENS: 10,
            semconv.USAGE_COST_AMOUNT: 0.0125,
            semconv.RESPONSE_TIME_TO_FIRST_CHUNK: 0.25,
            semconv.RESPONSE_FINISH_REASONS: ("stop",),
            semconv.REQUEST_TEMPERATURE: 0.5,
            semconv.REQUEST_STREAM: True,
            semconv.CONVERSATION_ID: "c-acme-1",
            findings.FINDINGS_COUNT: 1,
            findings.FINDINGS_MAX_SEVERITY: "high",
            "app.retry.count": 3,
        },
        events=((findings.FINDING_EVENT, HOUR + 1 * MINUTE + 2 * SECOND,
                 {**_finding("secret.openai_key", "secret", "high", 0.9), "gen_ai.security.location": "input"}),),
    )  # fmt: skip
    linked = SpanContext(0x1234, 0x5678, is_remote=True, trace_flags=TraceFlags(1))
    sender.span(
        support, "execute_tool lookup", HOUR + 1 * MINUTE + 4 * SECOND, 1, parent=root,
        attributes={**acme, semconv.OPERATION_NAME: "execute_tool", semconv.TOOL_NAME: "lookup"},
        links=(Link(linked, {"link.kind": "follows"}),), error="tool failed",
    )  # fmt: skip

    # acme-batch: Anthropic chat (a low finding) and an embeddings call.
    batch = sender.tracer("batch-job")
    chat = sender.span(
        batch, "chat claude-3-5-sonnet", HOUR + 20 * MINUTE, 5, kind=SpanKind.CLIENT,
        attributes={
            **acme,
            semconv.OPERATION_NAME: "chat",
            semconv.PROVIDER_NAME: "anthropic",
            semconv.REQUEST_MODEL: "claude-3-5-sonnet",
            semconv.USAGE_INPUT_TOKENS: 300,
            semconv.USAGE_OUTPUT_TOKENS: 50,
            semconv.USAGE_COST_AMOUNT: 0.02,
            findings.FINDINGS_COUNT: 1,
            findings.FINDINGS_MAX_SEVERITY: "low",
        },
        events=((findings.FINDING_EVENT, HOUR + 20 * MINUTE + 1 * SECOND, _finding("pii.email", "pii", "low", 0.6)),),
    )  # fmt: skip
    sender.span(
        batch, "embeddings text-embedding-3-small", HOUR + 20 * MINUTE + 1 * SECOND, 0.5, parent=chat,
        kind=SpanKind.CLIENT,
        attributes={**acme, semconv.OPERATION_NAME: "embeddings", semconv.PROVIDER_NAME: "openai",
                    semconv.REQUEST_MODEL: "text-embedding-3-small", semconv.USAGE_INPUT_TOKENS: 50},
    )  # fmt: skip

    # globex-support: the tenant on the resource; a failed call with a critical finding.
    globex = sender.tracer("support-bot", **{semconv.TENANT_ID: "globex"})
    sender.span(
        globex, "chat gpt-4o globex", HOUR + 30 * MINUTE, 3, kind=SpanKind.CLIENT,
        attributes={
            semconv.OPERATION_NAME: "chat",
            semconv.PROVIDER_NAME: "openai",
            semconv.REQUEST_MODEL: "gpt-4o",
            semconv.USAGE_INPUT_TOKENS: 200,
            semconv.USAGE_OUTPUT_TOKENS: 40,
            semconv.USAGE_COST_AMOUNT: 0.03,
            semconv.CONVERSATION_ID: "c-globex-1",
            findings.FINDINGS_COUNT: 1,
            findings.FINDINGS_MAX_SEVERITY: "critical",
        },
        events=((findings.FINDING_EVENT, HOUR + 30 * MINUTE + 1 * SECOND,
                 _finding("injection.ignore_previous", "prompt_injection", "critical", 0.99)),),
        error="upstream 500",
    )  # fmt: skip

    # untenanted: a call and its duplicate record (the app's span of the same call), counted once.
    cron = sender.tracer("cron")
    call = sender.span(
        cron, "chat gpt-4o-mini", HOUR + 40 * MINUTE, 1, kind=SpanKind.CLIENT,
        attributes={semconv.OPERATION_NAME: "chat", semconv.PROVIDER_NAME: "openai",
                    semconv.REQUEST_MODEL: "gpt-4o-mini", semconv.USAGE_INPUT_TOKENS: 10,
                    semconv.USAGE_OUTPUT_TOKENS: 5},
    )  # fmt: skip
    sender.span(
        cron, "chat gpt-4o-mini app", HOUR + 40 * MINUTE, 1, parent=call,
        attributes={semconv.OPERATION_NAME: "chat", semconv.REQUEST_MODEL: "gpt-4o-mini",
                    semconv.USAGE_INPUT_TOKENS: 10, semconv.USAGE_OUTPUT_TOKENS: 5,
                    semconv.CALL_DUPLICATE_OF: world.spans["chat gpt-4o-mini"]},
    )  # fmt: skip
    sender.shutdown()


def call_through_proxy(world: World, proxy_port: int, tenant_keys: dict[str, str]) -> None:
    """One chat call per tenant through the genai_proxy receiver, each with its tenant's proxy key."""
    started = time.time_ns()
    for tenant, key in tenant_keys.items():
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{proxy_port}/v1", api_key=key, max_retries=0)
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": f"Hello from {tenant}."}]
        )
        world.sent_spans += 1
    world.live_window = (started - SECOND, time.time_ns() + MINUTE)


def wait_until_stored(world: World) -> None:
    """Bounded wait until the exporter has stored every span sent (counted by the collector itself)."""
    telemetry = world.service.service.telemetry
    deadline = time.monotonic() + WAIT_SECONDS
    while telemetry.value("otelcol_exporter_sent_spans", exporter="clickhouse") < world.sent_spans:
        if time.monotonic() > deadline:
            raise AssertionError(f"the store did not get {world.sent_spans} spans in {WAIT_SECONDS}s")
        time.sleep(POLL_SECONDS)


def store_rows(world: World, sql: str) -> list[list[Any]]:
    """Rows of ``sql`` read from the store by the collector's raw-SQL path, not the API under test."""
    store = world.service.service.exporters[ComponentID.parse("clickhouse")].sender  # type: ignore[attr-defined]
    rows: list[list[Any]] = store.query(sql).rows
    return rows


def find_live_traces(world: World) -> None:
    """The trace id of each tenant's call through the proxy, from the store."""
    for tenant, trace_id in store_rows(
        world, "SELECT SpanAttributes['tenant.id'], TraceId FROM otel_traces WHERE ServiceName = 'genai-proxy'"
    ):
        world.live[tenant] = trace_id


def running_world(root: Path, extra_api: str = "", pipeline: Pipeline = Pipeline()) -> Iterator[World]:
    """Start the collector, send the known spans and the proxy calls, wait until all are stored; stop at the end."""
    keys_file = root / "api-keys.json"
    proxy_keys = root / "proxy-keys.json"
    keys = make_keys(keys_file)
    proxy_store = KeyStore(proxy_keys)
    tenant_keys = {tenant: proxy_store.create(tenant)[1] for tenant in ("acme", "globex")}
    mock = MockUpstream(openai_key=UPSTREAM_KEY)
    with serve(mock) as upstream:
        service = RunningService(
            config(root / "clickhouse", keys_file, proxy_keys, upstream, extra_api, pipeline), root
        )
        try:
            world = World(service, f"http://127.0.0.1:{service.api_port()}", keys)
            send_known_spans(world, f"http://127.0.0.1:{service.port()}/v1/traces")
            world.proxy_port = service.service.receivers[ComponentID.parse("genai_proxy")].port  # type: ignore[attr-defined]
            world.proxy_keys = tenant_keys
            call_through_proxy(world, world.proxy_port, tenant_keys)
            wait_until_stored(world)
            find_live_traces(world)
            yield world
        finally:
            service.stop()
