"""A full exporter queue behind the OTLP receivers: clients get 503 + Retry-After or UNAVAILABLE + RetryInfo
at once, never a hang, and the refused spans are counted."""

from __future__ import annotations

import threading
from collections.abc import Callable

import grpc
import httpx
from google.rpc import error_details_pb2, status_pb2

from collector.component import ComponentSettings
from collector.config.types import Duration
from collector.exporterhelper import BatchSettings, QueuedExporter, QueueSettings, RetrySettings
from collector.queue import Batch, MemoryQueue
from collector.telemetry import Telemetry
from tests.collector.receivers.otlp.support import (
    CLIENT_TIMEOUT_SECONDS,
    accepted,
    grpc_receiver,
    http_receiver,
    raw_export,
    refused,
    run,
)
from tests.conftest import make_traces

QUEUE_SPANS = 4
STATUS_DETAILS_KEY = "grpc-status-details-bin"


class StalledSender:
    """A Sender whose store never answers until released: the queue fills up behind it."""

    def __init__(self) -> None:
        self.release = threading.Event()

    def start(self) -> None:
        return None

    def send(self, batch: Batch) -> None:
        self.release.wait(CLIENT_TIMEOUT_SECONDS)

    def close(self) -> None:
        return None


def _stalled_exporter(
    make_settings: Callable[..., ComponentSettings], telemetry: Telemetry
) -> tuple[QueuedExporter, StalledSender]:
    sender = StalledSender()
    batch = BatchSettings(flush_timeout=Duration(0.01), min_size=1, max_size=QUEUE_SPANS)
    queue = QueueSettings(queue_size=QUEUE_SPANS, batch=batch)
    exporter = QueuedExporter(
        make_settings("stalled", telemetry=telemetry),
        sender,
        queue,
        RetrySettings(enabled=False),
        # In memory on purpose: the point is the queue's bound, not its backing.
        sending_queue=MemoryQueue(QUEUE_SPANS, batch.min_size, batch.max_size, batch.flush_timeout),
    )
    return exporter, sender


def test_a_full_queue_answers_http_503_with_retry_after(make_settings: Callable[..., ComponentSettings]) -> None:
    telemetry = Telemetry()
    exporter, sender = _stalled_exporter(make_settings, telemetry)

    async def scenario() -> list[httpx.Response]:
        await exporter.start(None)  # type: ignore[arg-type]
        try:
            async with http_receiver(exporter, telemetry) as client:
                return [
                    await client.post(
                        "/v1/traces",
                        content=make_traces(QUEUE_SPANS).SerializeToString(),
                        headers={"Content-Type": "application/x-protobuf"},
                    )
                    for _ in range(2)
                ]
        finally:
            sender.release.set()
            await exporter.shutdown()

    first, second = run(scenario())

    assert first.status_code == 200
    assert second.status_code == 503
    assert second.headers["Retry-After"] == "1"
    status = status_pb2.Status.FromString(second.content)
    assert status.message.startswith("sending queue is full")
    assert (accepted(telemetry, "http"), refused(telemetry, "http")) == (QUEUE_SPANS, QUEUE_SPANS)


def test_a_full_queue_answers_grpc_unavailable_with_retry_info(make_settings: Callable[..., ComponentSettings]) -> None:
    telemetry = Telemetry()
    exporter, sender = _stalled_exporter(make_settings, telemetry)

    async def scenario() -> grpc.aio.AioRpcError | None:
        await exporter.start(None)  # type: ignore[arg-type]
        try:
            async with grpc_receiver(exporter, telemetry) as channel:
                export = raw_export(channel)
                await export(make_traces(QUEUE_SPANS).SerializeToString(), timeout=CLIENT_TIMEOUT_SECONDS)
                try:
                    await export(make_traces(1).SerializeToString(), timeout=CLIENT_TIMEOUT_SECONDS)
                except grpc.aio.AioRpcError as error:
                    return error
                return None
        finally:
            sender.release.set()
            await exporter.shutdown()

    error = run(scenario())

    assert error is not None
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    details = dict(error.trailing_metadata() or ())[STATUS_DETAILS_KEY]
    assert isinstance(details, bytes)
    retry_info = error_details_pb2.RetryInfo()
    assert status_pb2.Status.FromString(details).details[0].Unpack(retry_info)
    assert retry_info.retry_delay.seconds == 1
    assert refused(telemetry, "grpc") == 1
