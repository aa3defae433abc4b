"""The workers' answer as the one encoding of a batch: exactly the batch passed on, or none at all.

Real worker processes run the GenAI processors; the stage hands the exporters the encoding only while it is
collector.pdata.encode of exactly the batch they get, and a sending queue fed by the stage stores those bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Coroutine, Sequence
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from opentelemetry.proto.trace.v1.trace_pb2 import TracesData

from collector import diskqueue
from collector.component import ComponentID
from collector.exporterhelper import QueuedExporter
from collector.pdata import encode, span_count
from collector.registry import default_registry
from collector.runtime.annotations import encoding_of
from collector.runtime.plan import ComponentStep
from collector.runtime.pool import WorkerPool
from collector.runtime.sharding import shard_of
from collector.runtime.stage import WorkerStage
from collector.runtime.worker import WorkerPipeline, WorkerSpec
from collector.telemetry import Telemetry
from collector.wal import DATA_PREFIX, RecordType, scan, segment_numbers, segment_path
from tests.collector.test_pdata import UNKNOWN_FIELD
from tests.conftest import RunningService, make_traces
from tests.data import agent_traces

T = TypeVar("T")
GENAI = ("genai_normalize", "genai_dedup", "genai_cost", "genai_security", "genai_loop_detection")
WAIT_SECONDS = 120.0
PROTOBUF = {"Content-Type": "application/x-protobuf"}


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(asyncio.wait_for(coroutine, WAIT_SECONDS))


def _steps(names: Sequence[str]) -> tuple[ComponentStep, ...]:
    processors = default_registry().processors
    return tuple(ComponentStep(ComponentID(name), processors[name].config_type(), processors[name]) for name in names)


@contextlib.asynccontextmanager
async def _pool(workers: int, names: Sequence[str] = GENAI) -> AsyncIterator[WorkerPool]:
    spec = WorkerSpec((WorkerPipeline("traces", _steps(names)),), logging.WARNING)
    pool = WorkerPool(workers, spec, Telemetry())
    await pool.start()
    try:
        yield pool
    finally:
        await pool.shutdown()


def _agent_batches() -> list[TracesData]:
    batches = []
    for recording in agent_traces.manifest():
        batch = TracesData()
        batch.resource_spans.extend(agent_traces.load(recording.name).resource_spans)
        batches.append(batch)
    return batches


def _workers_of(batch: TracesData, workers: int) -> set[int]:
    return {shard_of(s.trace_id, workers) for rs in batch.resource_spans for ss in rs.scope_spans for s in ss.spans}


def test_the_workers_answer_with_the_encoding_of_exactly_the_batch_passed_on() -> None:
    batches = _agent_batches()

    async def scenario() -> list[tuple[bytes | None, bytes, int]]:
        async with _pool(2) as pool:
            answers = []
            for batch in [*batches, make_traces(200)]:
                processed = await pool.process("traces", batch)
                answers.append((processed.encoded, encode(processed.traces), span_count(processed.traces)))
            return answers

    assert any(_workers_of(batch, 2) == {0, 1} for batch in batches)  # some batches were split across both
    answers = _run(scenario())
    assert len(answers) == len(batches) + 1
    for encoded, expected, spans in answers:
        assert spans and encoded == expected


def test_a_batch_with_a_field_unknown_at_its_top_level_comes_back_without_an_encoding() -> None:
    batch = make_traces(20)
    for span in batch.resource_spans[0].scope_spans[0].spans:
        span.trace_id = b"\x01" * 16  # one trace: the batch goes to its worker as it is, unknown field included
    batch.MergeFromString(UNKNOWN_FIELD)
    plain = make_traces(200)

    async def scenario() -> list[tuple[bytes | None, TracesData]]:
        async with _pool(2, names=("genai_normalize",)) as pool:
            answers = []
            for sent in (batch, plain):
                processed = await pool.process("traces", sent)
                answers.append((processed.encoded, processed.traces))
            return answers

    (unknown_encoded, unknown_traces), (plain_encoded, plain_traces) = _run(scenario())
    # Joined with another answer, its bytes would not be the merge's encoding: the main process encodes it itself.
    assert unknown_encoded is None
    assert unknown_traces.SerializeToString().endswith(UNKNOWN_FIELD)
    assert span_count(unknown_traces) == 20
    assert plain_encoded == encode(plain_traces)


class _Recorder:
    """The end of a stage in these tests: what it got, and the encoding the annotation gave with it."""

    def __init__(self) -> None:
        self.seen: list[tuple[TracesData, bytes | None]] = []

    async def consume(self, traces: TracesData) -> None:
        self.seen.append((traces, encoding_of(traces)))


class _Marking:
    """A main part that marks the first span of every batch, as genai_dedup's marks a duplicate."""

    def apply(self, traces: TracesData, notes: list[object]) -> set[bytes]:
        span = traces.resource_spans[0].scope_spans[0].spans[0]
        span.attributes.add(key="marked").value.bool_value = True
        return {span.trace_id + span.span_id}


def test_the_stage_hands_on_the_encoding_only_while_it_is_exact() -> None:
    async def scenario() -> dict[str, list[tuple[TracesData, bytes | None]]]:
        seen = {}
        async with _pool(2) as pool:
            for case, marking, feeds_exporters in (
                ("as passed on", False, True),
                ("marked in this process", True, True),
                ("a processor after the stage", False, False),
            ):
                recorder = _Recorder()
                parts = [(ComponentID("genai_dedup"), _Marking())] if marking else []
                stage = WorkerStage(pool, "traces", recorder, parts, feeds_exporters=feeds_exporters)
                for batch in _agent_batches():
                    await stage.consume(batch)
                seen[case] = recorder.seen
        return seen

    seen = _run(scenario())
    assert all(seen.values())
    assert all(encoded is not None and encoded == encode(traces) for traces, encoded in seen["as passed on"])
    assert all(encoded is None for _, encoded in seen["marked in this process"])
    assert all(encoded is None for _, encoded in seen["a processor after the stage"])


def _config(store: Path, queue: Path) -> str:
    return f"""
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:0
processors:
  genai_normalize:
  genai_cost:
exporters:
  clickhouse:
    endpoint: chdb://{store}
    sending_queue:
      directory: {queue}
      batch:
        flush_timeout: 1h     # batches stay in the queue, where the test reads them
        min_size: 1000000
        max_size: 1000000
service:
  workers: 2
  pipelines:
    traces:
      receivers: [otlp]
      processors: [genai_normalize, genai_cost]
      exporters: [clickhouse]
"""


def test_the_disk_queue_stores_the_workers_bytes_and_encodes_nothing_itself(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    encoded_by_the_queue: list[TracesData] = []

    def counted(traces: TracesData) -> bytes:
        encoded_by_the_queue.append(traces)
        return encode(traces)

    monkeypatch.setattr(diskqueue, "encode", counted)
    collector = RunningService(_config(tmp_path / "store", tmp_path / "queue"), tmp_path / "run")
    try:
        url = f"http://127.0.0.1:{collector.port()}/v1/traces"
        for batch in _agent_batches():
            assert httpx.post(url, content=batch.SerializeToString(), headers=PROTOBUF).status_code == 200
        exporter = collector.service.exporters[ComponentID("clickhouse")]
        assert isinstance(exporter, QueuedExporter)
        queue = exporter._queue
        assert isinstance(queue, diskqueue.DiskQueue)
        waiting = list(queue._waiting)
        logged = _logged_messages(tmp_path / "queue")
    finally:
        collector.stop()

    assert len(waiting) == len(_agent_batches())
    assert not encoded_by_the_queue
    for entry in waiting:
        assert entry.encoded == encode(entry.traces)
    assert logged == [entry.encoded for entry in waiting]


def _logged_messages(directory: Path) -> list[bytes]:
    """The messages in the queue's log, in order, read as replay reads them (the collector holds the lock)."""
    messages = []
    for number in segment_numbers(directory):
        records, _, _ = scan(segment_path(directory, number).read_bytes())
        messages.extend(r.payload[DATA_PREFIX.size :] for r in records if r.type == RecordType.DATA)
    return messages
