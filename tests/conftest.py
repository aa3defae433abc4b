"""Fixtures shared by the whole suite: span factories, a recording consumer, store paths."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.trace.v1.trace_pb2 import Span, TracesData

from collector.component import ComponentID, ComponentKind, ComponentSettings
from collector.registry import Registry
from collector.telemetry import Telemetry

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = Path(__file__).resolve().parent / "data"


def free_ports(count: int) -> list[int]:
    """Distinct free loopback ports (all held until every one is picked)."""
    with ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind(("127.0.0.1", 0))
            ports.append(int(sock.getsockname()[1]))
        return ports


@contextmanager
def process_umask(mask: int) -> Iterator[None]:
    """The process umask set to ``mask`` for the block (as a permissive shell would leave it), then restored."""
    previous = os.umask(mask)
    try:
        yield
    finally:
        os.umask(previous)


def free_port() -> int:
    """A free loopback port."""
    return free_ports(1)[0]


class ManualClock:
    """A monotonic clock for components that take one: it moves only when the test sets ``now``."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class RecordingConsumer:
    """A pipeline consumer that keeps what it is given, or raises ``fail_with`` when set."""

    def __init__(self) -> None:
        self.received: list[TracesData] = []
        self.fail_with: Exception | None = None
        self.arrived = asyncio.Event()

    async def consume(self, traces: TracesData) -> None:
        if self.fail_with is not None:
            raise self.fail_with
        self.received.append(traces)
        self.arrived.set()

    def spans(self) -> list[Span]:
        return [s for t in self.received for rs in t.resource_spans for ss in rs.scope_spans for s in ss.spans]


@pytest.fixture(autouse=True, scope="session")
def _session_queue_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Disk sending queues of collectors built outside a test (module fixtures) live in the session's tmp dir."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("collector.exporterhelper.DEFAULT_QUEUE_ROOT", tmp_path_factory.mktemp("queues"))
        # Likewise the admin endpoint's keys file and local token.
        patch.setattr("collector.extensions.admin.DEFAULT_DATA_ROOT", tmp_path_factory.mktemp("data"))
        # And services built by module fixtures run their processors in this process (see _processors_in_process).
        patch.setattr("collector.config.service.DEFAULT_WORKERS", 0)
        yield


@pytest.fixture(autouse=True)
def _queue_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test's disk sending queues default to its own tmp dir, never ./data/queue of the checkout."""
    monkeypatch.setattr("collector.exporterhelper.DEFAULT_QUEUE_ROOT", tmp_path / "queue")


@pytest.fixture(autouse=True)
def _processors_in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """Services built in a test run their processors in the test's process, where the test can look at them.

    Worker processes are exercised by the tests that ask for them (``service.workers`` in their config)
    and by every test that runs the collector as a command.
    """
    monkeypatch.setattr("collector.config.service.DEFAULT_WORKERS", 0)


@pytest.fixture(autouse=True)
def _admin_data_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The admin endpoint's keys and local token default to the test's tmp dir, never ./data of the checkout."""
    monkeypatch.setattr("collector.extensions.admin.DEFAULT_DATA_ROOT", tmp_path / "data")


@pytest.fixture
def recorder() -> RecordingConsumer:
    return RecordingConsumer()


@pytest.fixture
def make_settings() -> Callable[..., ComponentSettings]:
    """ComponentSettings for a component built by hand in a test."""

    def build(
        id: str = "test", kind: ComponentKind = "exporter", telemetry: Telemetry | None = None
    ) -> ComponentSettings:
        cid = ComponentID.parse(id)
        return ComponentSettings(cid, kind, logging.getLogger(f"test.{cid}"), telemetry or Telemetry())

    return build


def make_traces(spans: int = 3, service: str = "test-service", name: str = "chat gpt-4o") -> TracesData:
    """A TracesData with ``spans`` spans under one resource and scope, distinct IDs."""
    traces = TracesData()
    resource_spans = traces.resource_spans.add()
    attr = resource_spans.resource.attributes.add()
    attr.key, attr.value.string_value = "service.name", service
    scope_spans = resource_spans.scope_spans.add()
    scope_spans.scope.name = "tests"
    for _ in range(spans):
        span = scope_spans.spans.add()
        span.trace_id = os.urandom(16)
        span.span_id = os.urandom(8)
        span.name = name
        span.kind = Span.SPAN_KIND_CLIENT
        span.start_time_unix_nano = 1_700_000_000_000_000_000
        span.end_time_unix_nano = 1_700_000_001_500_000_000
        kv = span.attributes.add()
        kv.key, kv.value.string_value = "gen_ai.request.model", "gpt-4o"
    return traces


def admin_headers(token_path: Path) -> dict[str, str]:
    """The Authorization header carrying the local admin token a running collector wrote at ``token_path``."""
    from collector.extensions.access import read_local_token

    token = read_local_token(token_path)
    assert token is not None, f"no admin token at {token_path}"
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def chdb_path(tmp_path: Path) -> Iterator[Path]:
    """A fresh chDB data directory; one process opens one such directory at a time."""
    yield tmp_path / "clickhouse"


class RunningService:
    """A Service on its own event loop in a background thread, so blocking clients (the SDK) can call it."""

    def __init__(self, config_yaml: str, tmp_path: Path, registry: Registry | None = None) -> None:
        import threading

        import yaml

        from collector.config.loader import expand_env
        from collector.config.service import parse_config
        from collector.registry import default_registry
        from collector.service import Service

        document = expand_env(yaml.safe_load(config_yaml))
        registry = registry or default_registry()
        self.config = parse_config(document, registry)
        self.service = Service(self.config, registry)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._call(self.service.start())

    def _call(self, coroutine: object, timeout: float = 60.0) -> object:
        future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)  # type: ignore[arg-type]
        return future.result(timeout)

    def port(self, receiver: str = "otlp", transport: str = "http") -> int:
        component = self.service.receivers[ComponentID.parse(receiver)]
        return int(getattr(component, transport).port)

    def admin_port(self) -> int:
        return int(self.service.extensions[ComponentID.parse("admin")].port)  # type: ignore[attr-defined]

    def api_port(self) -> int:
        """The port of the api extension (the read API)."""
        return int(self.service.extensions[ComponentID.parse("api")].port)  # type: ignore[attr-defined]

    def admin_headers(self) -> dict[str, str]:
        """The Authorization header the admin endpoint's local token opens it with."""
        return admin_headers(self.service.extensions[ComponentID.parse("admin")].local_token_path)  # type: ignore[attr-defined]

    def stop(self) -> None:
        """Shut the service down (draining every queue) and end its loop; safe to call twice."""
        if self._loop.is_closed():
            return
        try:
            self._call(self.service.shutdown())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop.close()


# The smallest valid config: OTLP/HTTP on port 0 (never bound by validate) into the debug exporter.
MINIMAL_CONFIG = """
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:0
exporters:
  debug:
service:
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [debug]
"""


def collector_yaml(chdb_dir: Path, extra_exporters: str = "", pipeline_exporters: str = "[clickhouse]") -> str:
    """A config with OTLP on free ports, the clickhouse exporter at ``chdb_dir`` and the admin endpoint."""
    return f"""
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:0
      http:
        endpoint: 127.0.0.1:0
exporters:
  clickhouse:
    endpoint: chdb://{chdb_dir}
    sending_queue:
      batch:
        flush_timeout: 50ms
{extra_exporters}
extensions:
  admin:
    endpoint: 127.0.0.1:0
service:
  extensions: [admin]
  pipelines:
    traces:
      receivers: [otlp]
      exporters: {pipeline_exporters}
"""


@pytest.fixture
def running_collector(chdb_path: Path, tmp_path: Path) -> Iterator[RunningService]:
    service = RunningService(collector_yaml(chdb_path), tmp_path)
    try:
        yield service
    finally:
        service.stop()


def send_span(collector: RunningService, name: str, attributes: dict[str, Any]) -> None:
    """One span through the SDK's OTLP/HTTP exporter to ``collector``'s otlp receiver, delivered before returning."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    provider = TracerProvider()
    url = f"http://127.0.0.1:{collector.port()}/v1/traces"
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=url)))
    with provider.get_tracer("app").start_as_current_span(name) as span:
        span.set_attributes(attributes)
    provider.shutdown()


def query_store(chdb_dir: Path, sql: str) -> list[list[object]]:
    """Rows of ``sql`` read straight from the chDB store at ``chdb_dir`` (no collector may hold it)."""
    from exporters.clickhouse.config import ClickHouseConfig
    from exporters.clickhouse.store import ClickHouseStore

    store = ClickHouseStore(ClickHouseConfig(endpoint=f"chdb://{chdb_dir}"), logging.getLogger("test.store"))
    try:
        return store.query(sql).rows
    finally:
        store.close()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print the detectors' figures on the labelled corpora (security, agent frameworks), when those tests ran."""
    import sys

    tables = (
        ("tests.processors.test_genai_security_corpus", "genai_security detectors on tests/data/security/corpus.jsonl"),
        ("tests.processors.test_genai_framework_corpus", "GenAI detectors on tests/data/framework_traces (agent runs)"),
    )
    for name, title in tables:
        module = sys.modules.get(name)
        table = module.pytest_report_table() if module is not None else []
        if table:
            terminalreporter.write_sep("-", title)
            for line in table:
                terminalreporter.write_line(line)
