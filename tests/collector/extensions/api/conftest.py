"""The running collector with a known store, shared by the API tests of one module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.collector.extensions.api.world import World, running_world


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    yield from running_world(tmp_path_factory.mktemp("api"))
