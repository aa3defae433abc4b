"""A ClickHouse server that is down when the collector starts: spans are acknowledged, queued, and land once it is up.

Also what happens when the answer to an insert is lost (the retry is stored once),
and when the server, down at start, later answers with a refusal (loud, counted, bounded).
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from collector.component import ComponentID, ComponentSettings
from collector.config.decode import decode
from collector.errors import StartError
from collector.telemetry import Telemetry
from exporters.clickhouse import create_exporter
from exporters.clickhouse.config import ClickHouseConfig
from exporters.clickhouse.generated_metrics import EXPORTER_CLICKHOUSE_PREPARE_FAILURES as PREPARE_FAILURES
from exporters.clickhouse.store import ClickHouseStore
from tests.conftest import RunningService, free_port, make_traces, send_span
from tests.exporters.clickhouse.genai_spans import an_hour_ago, genai_traces
from tests.exporters.clickhouse.http_fixture import FakeClickHouse

PASSWORD = "canary-7f3e9b1d-password"
USER = "collector"
EXPORTER = "clickhouse"
# Long enough for every wait below; a failure shows as a timeout, not a hang.
WAIT_SECONDS = 30.0
SENDS_WHILE_DOWN = 2
POLL_SECONDS = 0.01  # telemetry has no event to await
FAST_RETRY = {"initial_interval": "20ms", "max_interval": "100ms", "max_elapsed_time": "60s"}


def _config(endpoint: str, **overrides: object) -> ClickHouseConfig:
    raw = {
        "endpoint": endpoint,
        "username": USER,
        "password": PASSWORD,
        "database": "otel",
        "timeout": "1s",
        "sending_queue": {"batch": {"flush_timeout": "10ms"}},
        "retry_on_failure": FAST_RETRY,
        **overrides,
    }
    return decode(ClickHouseConfig, raw, f"exporters.{EXPORTER}")


def _settings(telemetry: Telemetry) -> ComponentSettings:
    return ComponentSettings(ComponentID.parse(EXPORTER), "exporter", logging.getLogger("test.down"), telemetry)


def _rows(server: FakeClickHouse, sql: str) -> list[list[object]]:
    store = ClickHouseStore(_config(server.url), logging.getLogger("test.down.read"))
    try:
        return store.query(sql).rows
    finally:
        store.close()


def _assert_no_password(caplog: pytest.LogCaptureFixture) -> None:
    assert caplog.records, "expected log lines"
    for record in caplog.records:
        assert PASSWORD not in record.getMessage()
        assert PASSWORD not in (caplog.text or "")


def test_spans_sent_while_the_server_is_down_land_once_it_is_up(
    chdb_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    port = free_port()
    telemetry = Telemetry()
    exporter = create_exporter(_settings(telemetry), _config(f"http://127.0.0.1:{port}"))

    async def scenario() -> list[list[object]]:
        await exporter.start(None)  # type: ignore[arg-type]
        await exporter.consume(genai_traces(an_hour_ago()))  # acknowledged: the queue took it
        await exporter.consume(make_traces(4))
        # Sends have failed (retryably) while the server was down, before it comes up.
        while telemetry.value(PREPARE_FAILURES.name, reason="unreachable", exporter=EXPORTER) < SENDS_WHILE_DOWN + 1:
            await asyncio.sleep(POLL_SECONDS)
        with FakeClickHouse(chdb_path, username=USER, password=PASSWORD, port=port) as server:
            # Both batches in one insert or two, depending on when the first retry falls.
            assert await asyncio.to_thread(server.wait_for_inserts, 1, WAIT_SECONDS)
            await exporter.shutdown()
            return _rows(server, "SELECT (SELECT count() FROM otel_traces), (SELECT count() FROM genai_calls)")

    assert asyncio.run(asyncio.wait_for(scenario(), WAIT_SECONDS)) == [[10, 5]]
    labels = {"exporter": EXPORTER}
    assert telemetry.value("otelcol_exporter_sent_spans", **labels) == 10
    assert telemetry.value(PREPARE_FAILURES.name, reason="unreachable", **labels) >= 1
    assert any("starting anyway" in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)
    _assert_no_password(caplog)


def test_a_collector_started_before_its_server_delivers_what_it_acknowledged(
    chdb_path: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    port = free_port()
    config = f"""
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:0
exporters:
  clickhouse:
    endpoint: http://127.0.0.1:{port}
    username: {USER}
    password: {PASSWORD}
    database: otel
    timeout: 1s
    sending_queue:
      batch:
        flush_timeout: 10ms
    retry_on_failure:
      initial_interval: 20ms
      max_interval: 100ms
service:
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [clickhouse]
"""
    collector = RunningService(config, tmp_path)
    try:
        send_span(collector, "chat gpt-4o", {"gen_ai.operation.name": "chat"})  # answered 200 while down
        with FakeClickHouse(chdb_path, username=USER, password=PASSWORD, port=port) as server:
            assert server.wait_for_inserts(1, WAIT_SECONDS)
            collector.stop()
            assert _rows(server, "SELECT SpanName FROM otel_traces") == [["chat gpt-4o"]]
    finally:
        collector.stop()
    _assert_no_password(caplog)


def test_a_lost_answer_to_an_insert_that_committed_is_retried_and_stored_once(chdb_path: Path) -> None:
    telemetry = Telemetry()
    with FakeClickHouse(chdb_path, username=USER, password=PASSWORD, stall_inserts=1) as server:
        exporter = create_exporter(_settings(telemetry), _config(server.url))

        async def scenario() -> None:
            await exporter.start(None)  # type: ignore[arg-type]
            await exporter.consume(genai_traces(an_hour_ago()))
            # The first insert commits but its answer never comes (client timeout); the retry is the second.
            assert await asyncio.to_thread(server.wait_for_inserts, 2, WAIT_SECONDS)
            await exporter.shutdown()

        asyncio.run(asyncio.wait_for(scenario(), WAIT_SECONDS))
        counts = _rows(
            server,
            "SELECT (SELECT count() FROM otel_traces), (SELECT count() FROM genai_calls), "
            "(SELECT count() FROM genai_findings)",
        )
    assert counts == [[6, 5, 2]]
    assert telemetry.value("otelcol_exporter_sent_spans", exporter=EXPORTER) == 6


def test_a_refusal_after_a_down_start_is_logged_counted_and_bounded(
    chdb_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    port = free_port()
    telemetry = Telemetry()
    # A short retry budget: the batch outlives it and is dropped, counted, rather than retried forever.
    retry = {**FAST_RETRY, "max_elapsed_time": "500ms"}
    exporter = create_exporter(_settings(telemetry), _config(f"http://127.0.0.1:{port}", retry_on_failure=retry))

    async def scenario() -> None:
        await exporter.start(None)  # type: ignore[arg-type]
        with FakeClickHouse(chdb_path, username=USER, password="rotated-on-the-server", port=port):
            await exporter.consume(make_traces(3))
            await exporter.shutdown()

    asyncio.run(asyncio.wait_for(scenario(), WAIT_SECONDS))
    labels = {"exporter": EXPORTER}
    assert telemetry.value(PREPARE_FAILURES.name, reason="refused", **labels) >= 1
    assert telemetry.value("otelcol_exporter_send_failed_spans", reason="retries_exhausted", **labels) == 3
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    refusals = [m for m in errors if m.startswith("cannot open the store") and "Authentication failed" in m]
    assert len(refusals) == 1 and "\n" not in refusals[0]  # once, however many retries
    assert any(m.startswith("dropping 3 spans (retries_exhausted)") for m in errors)
    _assert_no_password(caplog)


def test_a_wrong_password_with_the_server_up_still_stops_the_start(
    chdb_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with FakeClickHouse(chdb_path, username=USER, password="the-right-one") as server:
        exporter = create_exporter(_settings(Telemetry()), _config(server.url))
        with pytest.raises(StartError) as error:
            asyncio.run(exporter.start(None))  # type: ignore[arg-type]
    message = str(error.value)
    assert message.startswith(f"cannot open the store {server.url}: ") and "\n" not in message
    assert PASSWORD not in message
    for record in caplog.records:
        assert PASSWORD not in record.getMessage()
