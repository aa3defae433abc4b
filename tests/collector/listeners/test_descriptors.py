"""Descriptors: the open-files limit raised at start, and a quarter of it kept from the listeners."""

from __future__ import annotations

import logging
import resource
import subprocess
import sys

import pytest

from collector.listeners.descriptors import (
    DESCRIPTOR_RESERVE_FRACTION,
    MIN_DESCRIPTOR_RESERVE,
    MIN_LISTENER_CONNECTIONS,
    ConnectionCapacity,
)
from tests.conftest import REPO_ROOT

RAISE_AND_PRINT = (
    "import resource; from collector.listeners.descriptors import raise_open_files_limit; "
    "print(raise_open_files_limit(), *resource.getrlimit(resource.RLIMIT_NOFILE))"
)


def test_the_soft_open_files_limit_is_raised_to_the_hard_limit() -> None:
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    low = 256
    if hard != resource.RLIM_INFINITY and hard <= low:
        pytest.skip(f"the hard open-files limit here ({hard}) leaves nothing to raise")

    def lower_soft_limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (low, hard))

    printed = subprocess.run(
        [sys.executable, "-c", RAISE_AND_PRINT],
        cwd=REPO_ROOT,
        preexec_fn=lower_soft_limit,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.split()

    in_force, soft, new_hard = (int(value) for value in printed)
    assert soft == in_force > low
    assert new_hard == hard


def _capacity(descriptors: int, monkeypatch: pytest.MonkeyPatch) -> ConnectionCapacity:
    monkeypatch.setattr("collector.listeners.descriptors.open_files_limit", lambda: descriptors)
    return ConnectionCapacity()


def test_a_quarter_of_the_descriptors_stays_for_the_store_and_the_queues(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _capacity(20_000, monkeypatch).limit == 20_000 - 20_000 // DESCRIPTOR_RESERVE_FRACTION
    assert _capacity(512, monkeypatch).limit == 512 - MIN_DESCRIPTOR_RESERVE


def test_http_connections_stop_at_the_capacity_but_each_listener_keeps_a_few(monkeypatch: pytest.MonkeyPatch) -> None:
    capacity = _capacity(MIN_DESCRIPTOR_RESERVE + 10, monkeypatch)

    assert all(capacity.try_open(held) for held in range(10))
    assert not capacity.try_open(MIN_LISTENER_CONNECTIONS)
    assert capacity.try_open(MIN_LISTENER_CONNECTIONS - 1)  # another listener with few connections still gets one
    capacity.closed()
    assert capacity.open == 10


def test_a_grpc_listener_that_does_not_fit_is_lowered_with_one_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    capacity = _capacity(4096, monkeypatch)

    with caplog.at_level(logging.WARNING, logger="genai_collector.listeners"):
        first = capacity.hold(1024, "OTLP/gRPC listener on 127.0.0.1:4317")
        second = capacity.hold(4096, "OTLP/gRPC listener on 127.0.0.1:4319")

    assert first == 1024
    assert second == 3072 - 1024
    assert capacity.limit == 0
    assert len(caplog.records) == 1
    assert caplog.records[0].getMessage().startswith(
        "OTLP/gRPC listener on 127.0.0.1:4319: max_connections 4096 lowered to 2048"
    )
    capacity.unhold(second)
    assert capacity.limit == 2048
