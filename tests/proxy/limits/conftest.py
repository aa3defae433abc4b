"""Fixtures of the limits tests: a redis-server shared by the module that asks for it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.proxy.limits.redis_server import RedisServer, redis_server


@pytest.fixture(scope="module")
def redis_module(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    directory: Path = tmp_path_factory.mktemp("redis")
    with redis_server(directory) as server:
        yield server


@pytest.fixture
def redis(redis_module: RedisServer) -> RedisServer:
    """The module's redis-server, emptied for this test."""
    redis_module.flush()
    return redis_module
