"""The disk sending queue and its write-ahead log: durability, replay, damage, limits, segments, the lock."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import stat
import threading
from collections import Counter
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest
from opentelemetry.proto.trace.v1.trace_pb2 import TracesData

from collector.component import ComponentID, ComponentSettings
from collector.config.types import Duration
from collector.diskqueue import DiskQueue
from collector.errors import QueueFullError, RetryableError, StartError
from collector.exporterhelper import BatchSettings, QueuedExporter, QueueSettings, RetrySettings, safe_name
from collector.pdata import encode
from collector.queue import Batch
from collector.telemetry import Telemetry
from collector.wal import HEADER_SIZE, WriteAheadLog, data_record, scan, segment_numbers, segment_path
from exporters.clickhouse.dedup import batch_token, encoded_batch_token
from tests.conftest import make_traces, process_umask

T = TypeVar("T")
LOGGER = logging.getLogger("test.wal")
FAST_RETRY = RetrySettings(initial_interval=Duration(0.01), max_interval=Duration(0.02), max_elapsed_time=Duration(5))


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(asyncio.wait_for(coroutine, 20))


async def open_queue(directory: Path, min_batch: int = 1, max_disk_bytes: int = 1 << 30) -> DiskQueue:
    return await DiskQueue.open(
        directory,
        capacity=100_000,
        min_batch=min_batch,
        max_batch=1000,
        flush_timeout=0.01,
        max_disk_bytes=max_disk_bytes,
        logger=LOGGER,
    )


def write_messages(directory: Path, payloads: list[bytes]) -> None:
    """A log holding one DATA record per payload, closed cleanly."""
    wal, _ = WriteAheadLog.open(directory, LOGGER)
    wal.commit([data_record(i + 1, 1, p) for i, p in enumerate(payloads)], Counter(), len(payloads) + 1, 1)
    wal.close()


def replayed(directory: Path) -> list[bytes]:
    wal, replay = WriteAheadLog.open(directory, LOGGER)
    wal.close()
    return [item.message for item in replay.waiting]


def span_ids(batch: Batch) -> list[bytes]:
    return [s.span_id for t in batch.items for rs in t.resource_spans for ss in rs.scope_spans for s in ss.spans]


# The log


def test_what_is_written_is_replayed_in_order(tmp_path: Path) -> None:
    payloads = [f"message {i}".encode() for i in range(5)]
    write_messages(tmp_path, payloads)
    assert replayed(tmp_path) == payloads
    assert replayed(tmp_path) == payloads  # replaying does not consume


def test_a_torn_last_record_is_cut_off_at_every_byte_offset(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    source = tmp_path / "source"
    write_messages(source, [b"first" * 20, b"second" * 20, b"third" * 20])
    (segment,) = segment_numbers(source)
    whole = segment_path(source, segment).read_bytes()
    records, _, _ = scan(whole)
    last = records[-1].offset
    for cut in range(last, len(whole)):
        directory = tmp_path / f"cut-{cut}"
        shutil.copytree(source, directory)
        segment_path(directory, segment).write_bytes(whole[:cut])
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger=LOGGER.name):
            assert replayed(directory) == [b"first" * 20, b"second" * 20]
        torn = [r.getMessage() for r in caplog.records]
        if cut > last:
            assert torn == [
                f"queue log {segment_path(directory, segment)}: torn tail, skipped {cut - last} bytes"
                f" at byte {last} (truncated)"
            ]
        else:
            assert torn == []  # cut on a record boundary: nothing torn
        assert segment_path(directory, segment).stat().st_size in (last, 0)  # truncated (or deleted once empty)


def test_a_bad_checksum_at_the_end_is_a_torn_tail(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    write_messages(tmp_path, [b"kept" * 10, b"damaged" * 10])
    path = segment_path(tmp_path, segment_numbers(tmp_path)[0])
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF
    path.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING, logger=LOGGER.name):
        assert replayed(tmp_path) == [b"kept" * 10]
    assert "torn tail, skipped 98 bytes" in caplog.text  # 16-byte header, 12-byte prefix, 70-byte message


def test_a_damaged_record_in_the_middle_is_skipped_and_the_rest_delivered(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write_messages(tmp_path, [b"one" * 10, b"two" * 10, b"three" * 10])
    path = segment_path(tmp_path, segment_numbers(tmp_path)[0])
    data = bytearray(path.read_bytes())
    second = scan(bytes(data))[0][2].offset
    data[second + HEADER_SIZE + 20] ^= 0xFF  # payload damaged, header intact: its length says where the next starts
    path.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING, logger=LOGGER.name):
        assert replayed(tmp_path) == [b"one" * 10, b"three" * 10]
    assert f"damaged record at byte {second}, skipped {HEADER_SIZE + 12 + 30} bytes" in caplog.text


def test_a_damaged_header_in_the_middle_resynchronizes_on_the_next_valid_record(tmp_path: Path) -> None:
    write_messages(tmp_path, [b"one" * 10, b"two" * 10, b"three" * 10])
    path = segment_path(tmp_path, segment_numbers(tmp_path)[0])
    data = bytearray(path.read_bytes())
    second = scan(bytes(data))[0][2].offset
    data[second + 4] ^= 0xFF  # the length: the header checksum no longer matches
    path.write_bytes(bytes(data))
    assert replayed(tmp_path) == [b"one" * 10, b"three" * 10]


def test_a_second_owner_of_a_directory_is_refused_in_one_line(tmp_path: Path) -> None:
    async def scenario() -> str:
        first = await open_queue(tmp_path)
        try:
            with pytest.raises(StartError) as refused:
                await open_queue(tmp_path)
        finally:
            await first.finish()
        again = await open_queue(tmp_path)  # released: the next owner gets it
        await again.finish()
        return str(refused.value)

    message = run(scenario())
    assert message.startswith(f"sending queue directory {tmp_path} is in use by another collector (pid ")
    assert "\n" not in message


def test_the_log_is_for_its_owner_only_whatever_the_umask(tmp_path: Path) -> None:
    directory = tmp_path / "data" / "queue" / "clickhouse"
    with process_umask(0o022):
        write_messages(directory, [b"a prompt and its reply"])
    written = [directory, directory.parent, *directory.iterdir()]
    assert {stat.S_IMODE(p.stat().st_mode) for p in written if p.is_dir()} == {0o700}
    assert {stat.S_IMODE(p.stat().st_mode) for p in written if p.is_file()} == {0o600}
    assert any(p.suffix == ".wal" for p in written)


def test_a_log_an_older_version_left_readable_is_tightened_when_opened(tmp_path: Path) -> None:
    directory = tmp_path / "queue"
    write_messages(directory, [b"kept"])
    os.chmod(directory, 0o755)
    for path in directory.iterdir():
        os.chmod(path, 0o644)

    assert replayed(directory) == [b"kept"]

    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert {stat.S_IMODE(p.stat().st_mode) for p in directory.glob("*.wal")} == {0o600}


# The queue


def test_acknowledged_messages_survive_a_crash_and_come_back_in_order(tmp_path: Path) -> None:
    sent = [make_traces(2) for _ in range(5)]

    async def before_crash() -> None:
        queue = await open_queue(tmp_path, min_batch=1000)
        for traces in sent:
            await queue.put(traces, 2)
        # No close, no finish: the process dies here. Only the lock goes with it.
        queue._wal._lock.release()

    async def after_restart() -> Batch | None:
        queue = await open_queue(tmp_path, min_batch=1000)
        queue.close()
        batch = await queue.get_batch()
        await queue.finish()
        return batch

    run(before_crash())
    batch = run(after_restart())
    assert batch is not None and batch.items == sent


def test_a_batch_cut_before_a_crash_is_sent_again_with_the_same_content(tmp_path: Path) -> None:
    async def before_crash() -> list[bytes]:
        queue = await open_queue(tmp_path, min_batch=6)
        for _ in range(4):
            await queue.put(make_traces(3), 3)
        batch = await queue.get_batch()  # 4 messages cut as one batch, then the process dies while sending it
        assert batch is not None
        await queue.put(make_traces(1), 1)  # arrives after the cut: not part of that batch
        queue._wal._lock.release()
        return [t.SerializeToString() for t in batch.items]

    async def after_restart() -> tuple[list[bytes], int]:
        queue = await open_queue(tmp_path, min_batch=1000)
        queue.close()
        first = await queue.get_batch()
        second = await queue.get_batch()
        assert first is not None and second is not None
        assert await queue.get_batch() is None
        queue.done(first)
        queue.done(second)
        await queue.finish()
        return [t.SerializeToString() for t in first.items], second.span_count

    cut = run(before_crash())
    assert run(after_restart()) == (cut, 1)


def test_the_log_stores_the_encoding_it_was_given_and_the_batch_carries_it_across_a_restart(tmp_path: Path) -> None:
    given = [make_traces(2) for _ in range(3)]
    unencoded = make_traces(2)

    async def before_crash() -> tuple[list[bytes | None], str]:
        queue = await open_queue(tmp_path, min_batch=8)
        for traces in given:
            await queue.put(traces, 2, encode(traces))
        await queue.put(unencoded, 2)  # no encoding given: the queue encodes it once, for the log and the batch
        batch = await queue.get_batch()  # cut (and recorded), then the process dies while sending it
        assert batch is not None and batch.items == [*given, unencoded]
        queue._wal._lock.release()
        return batch.encoded, encoded_batch_token(batch.encodings())

    async def after_restart() -> tuple[list[bytes | None], list[TracesData], str]:
        queue = await open_queue(tmp_path, min_batch=1000)
        queue.close()
        batch = await queue.get_batch()
        assert batch is not None
        queue.done(batch)
        await queue.finish()
        return batch.encoded, batch.items, encoded_batch_token(batch.encodings())

    encoded, token = run(before_crash())
    assert encoded == [encode(t) for t in [*given, unencoded]]
    replayed_encoded, replayed_items, replayed_token = run(after_restart())
    # The bytes read back are the ones stored, so the retried insert carries the same token as the first one.
    assert replayed_encoded == encoded and replayed_items == [*given, unencoded]
    assert replayed_token == token == batch_token([*given, unencoded])


def test_done_batches_are_not_sent_again(tmp_path: Path) -> None:
    async def first_run() -> None:
        queue = await open_queue(tmp_path)
        await queue.put(make_traces(3), 3)
        batch = await queue.get_batch()
        assert batch is not None
        queue.done(batch)
        await queue.put(make_traces(2), 2)  # still waiting at the crash
        queue._wal._lock.release()

    async def second_run() -> list[int]:
        queue = await open_queue(tmp_path, min_batch=1000)
        queue.close()
        sizes = []
        while (batch := await queue.get_batch()) is not None:
            sizes.append(batch.span_count)
            queue.done(batch)
        await queue.finish()
        return sizes

    run(first_run())
    assert run(second_run()) == [2]


def test_segments_rotate_and_are_deleted_once_everything_in_them_is_done(tmp_path: Path) -> None:
    big = make_traces(40, name="x" * 200)  # about 12 KB; segments are 64 KB for a 512 KB limit

    async def scenario() -> tuple[int, int, int]:
        queue = await open_queue(tmp_path, min_batch=1_000_000, max_disk_bytes=512 * 1024)
        for _ in range(25):
            await queue.put(big, 40)
        segments_while_queued = len(segment_numbers(tmp_path))
        queue.close()
        while (batch := await queue.get_batch()) is not None:
            queue.done(batch)
        await queue.finish()
        return segments_while_queued, len(segment_numbers(tmp_path)), queue.size

    queued, left, size = run(scenario())
    assert queued >= 4
    assert left == 1  # only the segment being written to stays
    assert size == 0
    assert replayed(tmp_path) == []


def test_the_disk_limit_refuses_with_a_retryable_error_and_keeps_the_log_sound(tmp_path: Path) -> None:
    message = make_traces(40, name="x" * 200)

    async def fill() -> tuple[int, str]:
        queue = await open_queue(tmp_path, min_batch=1_000_000, max_disk_bytes=128 * 1024)
        accepted = 0
        while True:
            try:
                await queue.put(message, 40)
            except QueueFullError as exc:
                assert exc.retryable and exc.retry_after
                await queue.finish()
                return accepted, str(exc)
            accepted += 1

    accepted, refusal = run(fill())
    assert accepted >= 5
    assert refusal.startswith("sending queue is full on disk (") and refusal.endswith(f" of {128 * 1024} bytes)")
    assert len(replayed(tmp_path)) == accepted
    assert sum(p.stat().st_size for p in tmp_path.glob("*.wal")) <= 128 * 1024


def test_concurrent_puts_share_an_fsync(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    syncs = []
    real_fdatasync = os.fdatasync

    def counting_fdatasync(fd: int) -> None:
        syncs.append(fd)
        real_fdatasync(fd)

    async def scenario() -> None:
        queue = await open_queue(tmp_path, min_batch=1_000_000)
        monkeypatch.setattr(os, "fdatasync", counting_fdatasync)
        await asyncio.gather(*(queue.put(make_traces(1), 1) for _ in range(200)))
        monkeypatch.undo()
        await queue.finish()

    run(scenario())
    assert 1 <= len(syncs) < 200
    assert len(replayed(tmp_path)) == 200


def test_the_default_directory_is_per_exporter_and_filesystem_safe() -> None:
    settings = QueueSettings()
    assert settings.queue_directory(ComponentID("otlp", "tempo")).name == "otlp%2Ftempo"
    assert safe_name(ComponentID("loadbalancing", "127.0.0.1:4317")) == "loadbalancing%2F127.0.0.1%3A4317"
    assert QueueSettings(directory="/var/queue").queue_directory(ComponentID("otlp")) == Path("/var/queue")
    assert list(QueueSettings(storage="memory", directory="/x").validate()) == [
        ("directory", "applies to storage: disk only")
    ]


# The exporter with a disk queue


class FlakySender:
    """Fails while ``down`` is set; records the span ids it stored."""

    def __init__(self) -> None:
        self.down = threading.Event()
        self.stored: list[bytes] = []

    def start(self) -> None:
        pass

    def send(self, batch: Batch) -> None:
        if self.down.is_set():
            raise RetryableError("store down")
        self.stored.extend(span_ids(batch))

    def close(self) -> None:
        pass


def test_a_forced_shutdown_keeps_the_queue_for_the_next_start(
    tmp_path: Path, make_settings: Callable[..., ComponentSettings]
) -> None:
    settings = QueueSettings(
        directory=str(tmp_path), batch=BatchSettings(flush_timeout=Duration(0.01), min_size=1, max_size=100)
    )
    patient = RetrySettings(initial_interval=Duration(30), max_interval=Duration(30), max_elapsed_time=Duration(300))
    telemetry = Telemetry()
    sender = FlakySender()
    sender.down.set()
    accepted = [make_traces(3) for _ in range(4)]

    async def first_run() -> None:
        exporter = QueuedExporter(make_settings("clickhouse", telemetry=telemetry), sender, settings, patient)
        await exporter.start(None)  # type: ignore[arg-type]
        for traces in accepted:
            await exporter.consume(traces)
        shutdown = asyncio.create_task(exporter.shutdown())
        await asyncio.sleep(0.1)
        exporter.abandon()
        await shutdown

    async def second_run() -> None:
        exporter = QueuedExporter(make_settings("clickhouse"), sender, settings, FAST_RETRY)
        await exporter.start(None)  # type: ignore[arg-type]
        await exporter.shutdown()

    run(first_run())
    assert sender.stored == []
    assert telemetry.value("otelcol_exporter_send_failed_spans", exporter="clickhouse", reason="shutdown") == 0
    sender.down.clear()
    run(second_run())
    expected = [s.span_id for t in accepted for rs in t.resource_spans for ss in rs.scope_spans for s in ss.spans]
    assert sorted(sender.stored) == sorted(expected)


def test_a_sender_that_fails_to_start_releases_the_queue_directory(
    tmp_path: Path, make_settings: Callable[..., ComponentSettings]
) -> None:
    class Unreachable(FlakySender):
        def start(self) -> None:
            raise StartError("cannot reach the store")

    settings = QueueSettings(directory=str(tmp_path))

    async def scenario() -> None:
        with pytest.raises(StartError, match="cannot reach"):
            await QueuedExporter(make_settings("clickhouse"), Unreachable(), settings, FAST_RETRY).start(None)  # type: ignore[arg-type]
        exporter = QueuedExporter(make_settings("clickhouse"), FlakySender(), settings, FAST_RETRY)
        await exporter.start(None)  # type: ignore[arg-type]
        await exporter.shutdown()

    run(scenario())


def test_a_failing_segment_open_answers_every_put_and_the_queue_recovers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import collector.wal

    real_open = collector.wal.os.open
    failures = [OSError(24, "Too many open files")]

    def flaky_open(path: Any, flags: int, *args: Any) -> int:
        if str(path).endswith(".wal") and failures:
            raise failures.pop()
        return real_open(path, flags, *args)

    message = make_traces(40, name="x" * 200)

    async def scenario() -> tuple[int, int]:
        queue = await open_queue(tmp_path, min_batch=1_000_000, max_disk_bytes=1 << 20)
        monkeypatch.setattr(collector.wal.os, "open", flaky_open)
        accepted = refused = 0
        for _ in range(60):  # crosses a segment boundary, where the one failing open happens
            try:
                await asyncio.wait_for(queue.put(message, 40), timeout=10)
                accepted += 1
            except QueueFullError:
                refused += 1
        await queue.finish()
        return accepted, refused

    accepted, refused = run(scenario())
    assert refused >= 1 and accepted >= 50  # answered (never hung), and writing went on after the failure
    assert len(replayed(tmp_path)) == accepted
