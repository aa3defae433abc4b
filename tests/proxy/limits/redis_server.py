"""A real redis-server (Debian's package, which `make test` installs) on a free loopback port, for the limits tests.

Each server gets a temporary directory and persists nothing; it can be stopped
and started again on the same port, as an outage and its end.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis

from tests.conftest import free_port

REDIS_SERVER = "redis-server"
START_SECONDS = 10.0
PASSWORD = "s3cret-redis-pw-9f8e7d"


class RedisServer:
    def __init__(self, directory: Path, password: str = PASSWORD) -> None:
        self.directory = directory
        self.password = password
        self.port = free_port()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://:{self.password}@127.0.0.1:{self.port}/0"

    def start(self) -> None:
        arguments = [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory)]
        arguments += ["--save", "", "--appendonly", "no", "--requirepass", self.password, "--logfile", ""]
        self._process = subprocess.Popen(arguments, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis.from_url(self.url, socket_connect_timeout=1, socket_timeout=1)
        deadline = time.monotonic() + START_SECONDS
        try:
            while True:
                assert self._process.poll() is None, "redis-server exited at start"
                try:
                    client.ping()
                    return
                except redis.ConnectionError:
                    if time.monotonic() > deadline:
                        raise AssertionError("redis-server did not start") from None
                    time.sleep(0.02)
        finally:
            client.close()

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            self._process.wait(timeout=START_SECONDS)
        self._process = None

    def flush(self) -> None:
        client = redis.Redis.from_url(self.url)
        try:
            client.flushall()
        finally:
            client.close()


@contextmanager
def redis_server(directory: Path) -> Iterator[RedisServer]:
    if shutil.which(REDIS_SERVER) is None:
        pytest.fail("redis-server is not installed: `make test` installs Debian's redis-server package")
    server = RedisServer(directory)
    server.start()
    try:
        yield server
    finally:
        server.stop()
