"""Accept connections on a listening socket without letting accept errors spin the loop or flood the log.

asyncio's own accept loop, when accept() fails with EMFILE, logs a traceback
for every pending connection in the backlog in one go and keeps trying (2,048
tracebacks per wake-up, megabytes of log a second). Here a failed accept()
pauses accepting, for 5 ms at first and doubling up to a second while it keeps
failing (as Go's net/http does), counts the error, and logs it at most once per
``ACCEPT_ERROR_LOG_INTERVAL_SECONDS`` with how many there were meanwhile.
Connections left in the backlog meanwhile are accepted once descriptors free up.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import time
from collections.abc import Callable

from collector.listeners.metrics import ListenerMetrics

# Connections taken per readiness event before other work on the loop gets a turn.
ACCEPT_BATCH = 64
FIRST_BACKOFF_SECONDS = 0.005
MAX_BACKOFF_SECONDS = 1.0
ACCEPT_ERROR_LOG_INTERVAL_SECONDS = 10.0


class RateLimitedLog:
    """Logs a recurring problem at most once per ``interval`` seconds, saying how often it happened since."""

    def __init__(self, logger: logging.Logger, interval: float = ACCEPT_ERROR_LOG_INTERVAL_SECONDS) -> None:
        self._logger = logger
        self._interval = interval
        self._last: float | None = None
        self._since_last = 0

    def error(self, message: str) -> None:
        now = time.monotonic()
        if self._last is not None and now - self._last < self._interval:
            self._since_last += 1
            return
        if self._since_last:
            message += f" ({self._since_last} more since the last report)"
        self._logger.error("%s", message)
        self._last = now
        self._since_last = 0


class Acceptor:
    """Takes connections from ``sock`` and hands each, non-blocking, to ``on_connection``."""

    def __init__(
        self,
        sock: socket.socket,
        on_connection: Callable[[socket.socket], None],
        metrics: ListenerMetrics,
        logger: logging.Logger,
        name: str,
    ) -> None:
        self._sock = sock
        self._on_connection = on_connection
        self._metrics = metrics
        self._errors = RateLimitedLog(logger)
        self._name = name
        self._loop = asyncio.get_running_loop()
        self._backoff = 0.0
        self._resume: asyncio.TimerHandle | None = None
        self._accepting = False

    @property
    def failing(self) -> str | None:
        """The last accept error while waiting out its backoff (the listener takes no connections now), else None."""
        return self._last_error if self._resume is not None else None

    def start(self) -> None:
        self._loop.add_reader(self._sock.fileno(), self._ready)
        self._accepting = True

    def close(self) -> None:
        if self._accepting:
            self._loop.remove_reader(self._sock.fileno())
            self._accepting = False
        if self._resume is not None:
            self._resume.cancel()
            self._resume = None

    def _ready(self) -> None:
        for _ in range(ACCEPT_BATCH):
            try:
                conn, _ = self._sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionAbortedError:
                continue  # the client gave up while waiting in the backlog
            except OSError as exc:
                self._failed(exc)
                return
            self._backoff = 0.0
            conn.setblocking(False)
            self._on_connection(conn)

    def _failed(self, exc: OSError) -> None:
        code = errno.errorcode.get(exc.errno or 0, str(exc.errno))
        self._metrics.accept_error(code)
        self._backoff = min(MAX_BACKOFF_SECONDS, self._backoff * 2 or FIRST_BACKOFF_SECONDS)
        self._last_error = f"cannot accept connections: {exc.strerror} ({code})"
        self._errors.error(f"{self._name}: {self._last_error}; retrying")
        # Level-triggered: the socket stays readable while the backlog is full, so stop watching it for a while.
        self._loop.remove_reader(self._sock.fileno())
        self._accepting = False
        self._resume = self._loop.call_later(self._backoff, self._restart)

    def _restart(self) -> None:
        self._resume = None
        self.start()
