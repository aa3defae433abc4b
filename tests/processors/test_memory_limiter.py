"""The memory_limiter processor: refuses, retryably, while memory is over its soft limit, and OTLP clients
on loopback get 429 + Retry-After or RESOURCE_EXHAUSTED + RetryInfo; config mistakes are one line each."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import grpc
import httpx
import pytest
from google.rpc import error_details_pb2, status_pb2

from collector.component import ComponentSettings
from collector.config.decode import decode
from collector.config.problems import ConfigError
from collector.config.types import Duration
from collector.errors import MemoryLimitError, StartError, status_for
from collector.registry import builtin_registry
from collector.telemetry import Telemetry
from processors.memory_limiter import MemoryLimiter, memory
from processors.memory_limiter.config import BYTES_PER_MIB, MemoryLimiterConfig
from tests.collector.receivers.otlp.support import (
    CLIENT_TIMEOUT_SECONDS,
    grpc_receiver,
    http_receiver,
    raw_export,
    refused,
    run,
)
from tests.conftest import RecordingConsumer, make_traces

STATUS_DETAILS_KEY = "grpc-status-details-bin"
# Any running Python process is far above one MiB, so this limiter refuses from its first reading.
TINY = MemoryLimiterConfig(check_interval=Duration(2.0), limit_mib=1)


class FakeMemory:
    """A memory reading a test sets by hand."""

    def __init__(self, used_mib: int) -> None:
        self.used = used_mib * BYTES_PER_MIB

    def __call__(self) -> int:
        return self.used


def _limiter(
    make_settings: Callable[..., ComponentSettings],
    config: MemoryLimiterConfig,
    consumer: RecordingConsumer,
    read_memory: Callable[[], int] = memory.resident_bytes,
) -> MemoryLimiter:
    return MemoryLimiter(make_settings("memory_limiter", kind="processor"), config, consumer, read_memory=read_memory)


# --- the processor -----------------------------------------------------------------------------------------------


def test_passes_data_below_the_soft_limit_and_refuses_it_above(
    make_settings: Callable[..., ComponentSettings], recorder: RecordingConsumer
) -> None:
    used = FakeMemory(100)
    config = MemoryLimiterConfig(check_interval=Duration(5.0), limit_mib=500, spike_limit_mib=100)
    limiter = _limiter(make_settings, config, recorder, used)

    async def scenario() -> None:
        await limiter.start(None)  # type: ignore[arg-type]
        try:
            await limiter.consume(make_traces(2))
            used.used = 400 * BYTES_PER_MIB  # the soft limit: 500 - 100
            limiter.check()
            with pytest.raises(MemoryLimitError) as refused_error:
                await limiter.consume(make_traces(3))
            error = refused_error.value
            assert error.retryable
            assert error.retry_after == 5.0
            assert "400 MiB is above the memory limiter's soft limit (400 MiB)" in str(error)
            used.used = 399 * BYTES_PER_MIB
            limiter.check()
            await limiter.consume(make_traces(4))
        finally:
            await limiter.shutdown()
            await limiter.shutdown()

    run(scenario())

    assert [len(t.resource_spans[0].scope_spans[0].spans) for t in recorder.received] == [2, 4]


def test_the_periodic_check_lifts_the_refusal(
    make_settings: Callable[..., ComponentSettings], recorder: RecordingConsumer
) -> None:
    used = FakeMemory(900)
    config = MemoryLimiterConfig(check_interval=Duration(0.01), limit_mib=500)
    limiter = _limiter(make_settings, config, recorder, used)

    async def scenario() -> None:
        await limiter.start(None)  # type: ignore[arg-type]
        assert limiter.refusing
        used.used = 10 * BYTES_PER_MIB
        while limiter.refusing:
            await asyncio.sleep(0.01)  # the limiter's own ticker is what is being tested
        await limiter.consume(make_traces(1))
        await limiter.shutdown()

    run(scenario())

    assert len(recorder.received) == 1


def test_memory_limit_errors_map_to_429_and_resource_exhausted() -> None:
    mapping = status_for(MemoryLimitError("over", retry_after=1.0))
    assert (mapping.http_status, mapping.grpc_code) == (429, grpc.StatusCode.RESOURCE_EXHAUSTED)


def test_an_unreadable_memory_is_a_start_error(
    make_settings: Callable[..., ComponentSettings], recorder: RecordingConsumer
) -> None:
    def unreadable() -> int:
        raise memory.MemoryUnreadable("cannot read /proc/self/statm: No such file or directory")

    limiter = _limiter(make_settings, MemoryLimiterConfig(), recorder, unreadable)

    with pytest.raises(StartError, match="memory_limiter cannot measure"):
        run(limiter.start(None))  # type: ignore[arg-type]


def test_the_real_readings_are_plausible() -> None:
    used, total = memory.resident_bytes(), memory.total_bytes()
    assert 0 < used < total


def test_the_limits_follow_the_go_collector() -> None:
    total = 1000 * BYTES_PER_MIB
    assert MemoryLimiterConfig(limit_mib=500).limits(total) == (500 * BYTES_PER_MIB, 400 * BYTES_PER_MIB)
    assert MemoryLimiterConfig(limit_mib=500, spike_limit_mib=50).limits(total) == (
        500 * BYTES_PER_MIB,
        450 * BYTES_PER_MIB,
    )
    assert MemoryLimiterConfig().limits(total) == (800 * BYTES_PER_MIB, 640 * BYTES_PER_MIB)
    assert MemoryLimiterConfig(limit_percentage=50, spike_limit_percentage=10).limits(total) == (
        500 * BYTES_PER_MIB,
        400 * BYTES_PER_MIB,
    )


def test_registered_as_a_builtin() -> None:
    assert builtin_registry().processors["memory_limiter"].config_type is MemoryLimiterConfig


# --- OTLP clients on loopback ------------------------------------------------------------------------------------


def test_http_clients_get_429_with_retry_after(
    make_settings: Callable[..., ComponentSettings], recorder: RecordingConsumer
) -> None:
    telemetry = Telemetry()
    limiter = _limiter(make_settings, TINY, recorder)

    async def scenario() -> httpx.Response:
        await limiter.start(None)  # type: ignore[arg-type]
        try:
            async with http_receiver(limiter, telemetry) as client:
                return await client.post(
                    "/v1/traces",
                    content=make_traces(3).SerializeToString(),
                    headers={"Content-Type": "application/x-protobuf"},
                )
        finally:
            await limiter.shutdown()

    response = run(scenario())

    assert response.status_code == 429
    assert response.headers["Retry-After"] == "2"
    status = status_pb2.Status.FromString(response.content)
    assert status.code == grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]
    assert "soft limit" in status.message
    assert recorder.received == []
    assert refused(telemetry, "http") == 3


def test_grpc_clients_get_resource_exhausted_with_retry_info(
    make_settings: Callable[..., ComponentSettings], recorder: RecordingConsumer
) -> None:
    telemetry = Telemetry()
    limiter = _limiter(make_settings, TINY, recorder)

    async def scenario() -> grpc.aio.AioRpcError:
        await limiter.start(None)  # type: ignore[arg-type]
        try:
            async with grpc_receiver(limiter, telemetry) as channel:
                with pytest.raises(grpc.aio.AioRpcError) as raised:
                    await raw_export(channel)(make_traces(2).SerializeToString(), timeout=CLIENT_TIMEOUT_SECONDS)
                return raised.value
        finally:
            await limiter.shutdown()

    error = run(scenario())

    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    details = dict(error.trailing_metadata() or ())[STATUS_DETAILS_KEY]
    assert isinstance(details, bytes)
    status = status_pb2.Status.FromString(details)
    retry_info = error_details_pb2.RetryInfo()
    assert status.details[0].Unpack(retry_info)
    assert retry_info.retry_delay.seconds == 2
    assert recorder.received == []
    assert refused(telemetry, "grpc") == 2


# --- config mistakes ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ({"check_interval": "0s"}, "check_interval: must be more than 0"),
        ({"limit_mib": -5}, "limit_mib: must not be negative"),
        ({"limit_percentage": 120}, "limit_percentage: must be at most 100"),
        (
            {"limit_mib": 512, "limit_percentage": 50},
            "limit_percentage: set either limit_mib or limit_percentage, not both",
        ),
        ({"limit_mib": 512, "spike_limit_mib": 512}, "spike_limit_mib: must be less than limit_mib (512)"),
        ({"spike_limit_mib": 100}, "spike_limit_mib: applies only with limit_mib"),
        (
            {"limit_mib": 512, "spike_limit_percentage": 10},
            "spike_limit_percentage: applies only with limit_percentage",
        ),
        (
            {"limit_percentage": 30, "spike_limit_percentage": 30},
            "spike_limit_percentage: must be less than limit_percentage (30)",
        ),
        ({"spike_limit_percentage": 90}, "spike_limit_percentage: must be less than limit_percentage (80)"),
        (
            {"limit_mb": 512},
            "limit_mb: unknown key; expected one of check_interval, limit_mib, limit_percentage, "
            "spike_limit_mib, spike_limit_percentage",
        ),
    ],
)
def test_each_config_mistake_is_one_line(raw: dict[str, object], problem: str) -> None:
    with pytest.raises(ConfigError) as raised:
        decode(MemoryLimiterConfig, raw, "processors.memory_limiter")
    assert [str(p) for p in raised.value.problems] == [f"processors.memory_limiter.{problem}"]


def test_no_settings_means_80_percent_checked_every_second() -> None:
    config = decode(MemoryLimiterConfig, None, "processors.memory_limiter")
    assert config == MemoryLimiterConfig(check_interval=Duration(1.0))
