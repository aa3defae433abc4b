"""Headless Chromium for the console's tests, screenshots and benchmark: Debian's build, driven by Playwright.

The browser is the system's ``/usr/bin/chromium`` (``make browser`` installs
it); Playwright never downloads one. The flags keep it off the network: no
background requests, component updates, sync or first-run calls.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)
KEY_STORAGE_NAME = "genai-collector.api-key"  # static/js/keystore.js
# A zone away from UTC (and with a half hour), so a time shown in UTC by mistake cannot pass for local.
TIME_ZONE = "Asia/Kolkata"
LOCALE = "en-US"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
READY = "html[data-state=ready]"
PAGE_SECONDS = 20.0


@contextmanager
def chromium() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=list(CHROMIUM_FLAGS))
        try:
            yield browser
        finally:
            browser.close()


def new_context(
    browser: Browser, key: str | None = None, viewport: dict[str, int] = DESKTOP, time_zone: str = TIME_ZONE
) -> BrowserContext:
    """A browser profile in ``time_zone``; with ``key``, stored for the tab as the console's key page does it."""
    context = browser.new_context(viewport=viewport, timezone_id=time_zone, locale=LOCALE)
    context.set_default_timeout(PAGE_SECONDS * 1000)
    # Every Content-Security-Policy violation a page meets, for the tests to read (window.__violations).
    context.add_init_script(
        "window.__violations = [];"
        "document.addEventListener('securitypolicyviolation', (e) => window.__violations.push(e.violatedDirective));"
    )
    if key is not None:
        context.add_init_script(f"sessionStorage.setItem({KEY_STORAGE_NAME!r}, {key!r})")
    return context


def open_page(page: Page, url: str) -> Page:
    """Go to ``url`` and wait until the console has rendered it (data loaded: <html data-state="ready">)."""
    page.goto(url)
    page.wait_for_selector(READY, state="attached")
    return page
