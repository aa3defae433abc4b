"""Accept errors back off and are logged at a bounded rate, where asyncio's own loop logged thousands a second."""

from __future__ import annotations

import asyncio
import errno
import logging
import socket

import pytest

from collector.httpserver.acceptor import MAX_BACKOFF_SECONDS, Acceptor, RateLimitedLog
from collector.listeners.generated_metrics import LISTENER_ACCEPT_ERRORS
from collector.listeners.metrics import ListenerMetrics
from collector.telemetry import Telemetry
from tests.collector.httpserver.support import run

OBSERVED_SECONDS = 1.0


class _OutOfDescriptors:
    """A listening socket whose every accept() fails with EMFILE while a connection waits (it stays readable)."""

    def __init__(self) -> None:
        self._readable, self._peer = socket.socketpair()
        self._peer.send(b"x")  # readable for as long as the test runs, as a full backlog is
        self.accepts = 0

    def fileno(self) -> int:
        return self._readable.fileno()

    def accept(self) -> tuple[socket.socket, object]:
        self.accepts += 1
        raise OSError(errno.EMFILE, "Too many open files")

    def close(self) -> None:
        self._readable.close()
        self._peer.close()


def test_emfile_pauses_accepting_with_backoff_and_logs_once(caplog: pytest.LogCaptureFixture) -> None:
    telemetry = Telemetry()
    metrics = ListenerMetrics(telemetry, "test", "http")
    sock = _OutOfDescriptors()
    logger = logging.getLogger("tests.acceptor")

    async def scenario() -> None:
        acceptor = Acceptor(sock, lambda conn: None, metrics, logger, "test listener")  # type: ignore[arg-type]
        acceptor.start()
        # The observation window: how often accept() is tried in it, and how often that is logged.
        await asyncio.sleep(OBSERVED_SECONDS)
        acceptor.close()

    with caplog.at_level(logging.ERROR, logger="tests.acceptor"):
        run(scenario())
    sock.close()

    # Backoff from 5 ms doubling: about eight tries in a second. asyncio's loop tried
    # (and logged) 2,048 times per wake-up of the event loop.
    assert 2 <= sock.accepts <= 1 + OBSERVED_SECONDS / 0.005
    labels = {"listener": "test", "transport": "http", "error": "EMFILE"}
    assert telemetry.value(LISTENER_ACCEPT_ERRORS.name, **labels) == sock.accepts
    records = [r for r in caplog.records if "cannot accept connections" in r.getMessage()]
    assert len(records) == 1
    assert "EMFILE" in records[0].getMessage()
    assert MAX_BACKOFF_SECONDS <= 1.0


def test_a_rate_limited_log_reports_how_many_it_held_back(caplog: pytest.LogCaptureFixture) -> None:
    clock = [0.0]
    log = RateLimitedLog(logging.getLogger("tests.ratelimit"), interval=10.0)

    with caplog.at_level(logging.ERROR, logger="tests.ratelimit"), pytest.MonkeyPatch.context() as patch:
        patch.setattr("collector.httpserver.acceptor.time.monotonic", lambda: clock[0])
        for second in range(25):
            clock[0] = float(second)
            log.error("out of descriptors")

    messages = [r.getMessage() for r in caplog.records]
    assert messages == [
        "out of descriptors",
        "out of descriptors (9 more since the last report)",
        "out of descriptors (9 more since the last report)",
    ]
