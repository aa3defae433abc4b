"""One collector (the scene) and one browser for all the console's tests; a browser profile per key.

Both live as long as this package's tests, which are all the browser tests: one
chDB store per process (the API tests' collectors start after this one
stopped), and Playwright's sync API holds an event loop on the main thread
while it runs (tests after these call asyncio.run there).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, Page

from tests.collector.extensions.api.console.browser import DESKTOP, chromium, new_context, open_page
from tests.collector.extensions.api.console.scene import Scene, running_scene


@pytest.fixture(scope="package")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scene]:
    yield from running_scene(tmp_path_factory.mktemp("console"))


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


@pytest.fixture(scope="package")
def contexts(browser: Browser, scene: Scene) -> Iterator[dict[str, BrowserContext]]:
    """A profile per key name of the world (admin, acme...), made when first asked for."""
    made: dict[str, BrowserContext] = {}
    yield made
    for context in made.values():
        context.close()


Opener = Callable[..., Page]


@pytest.fixture
def console(browser: Browser, scene: Scene, contexts: dict[str, BrowserContext]) -> Iterator[Opener]:
    """open(path, key="admin"): a page of the console at ``path``, rendered, read with that key's profile."""
    pages: list[Page] = []

    def open_path(path: str, key: str = "admin") -> Page:
        if key not in contexts:
            contexts[key] = new_context(browser, scene.world.keys[key], DESKTOP)
        page = contexts[key].new_page()
        pages.append(page)
        return open_page(page, scene.world.base_url + path)

    yield open_path
    for page in pages:
        page.close()
