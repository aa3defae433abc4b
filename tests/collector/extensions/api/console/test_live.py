"""The live tail in a real browser: a call made through the proxy shows up as it passes the pipeline."""

from __future__ import annotations

import openai
from playwright.sync_api import expect

from tests.collector.extensions.api.console.conftest import Opener
from tests.collector.extensions.api.console.scene import Scene
from tests.collector.extensions.api.world import wait_until_stored

# The bound for a call to reach the live tail. The test waits for the row as an event with this
# timeout (Playwright's expect polls the page until the row is there); it measures nothing.
LIVE_TAIL_SECONDS = 2.0


def _call(scene: Scene, tenant: str, text: str) -> None:
    world = scene.world
    client = openai.OpenAI(
        base_url=f"http://127.0.0.1:{world.proxy_port}/v1", api_key=world.proxy_keys[tenant], max_retries=0
    )
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": text}])
    world.sent_spans += 1


def test_the_live_tail_shows_a_call_and_a_viewer_only_its_tenants(console: Opener, scene: Scene) -> None:
    everyone = console("/live?kind=call")
    acme = console("/live?kind=call", key="acme")
    for page in (everyone, acme):
        expect(page.locator(".live-status")).to_have_attribute("data-connected", "true")
    _call(scene, "globex", "A question from globex.")
    _call(scene, "acme", "A question from acme.")
    timeout = LIVE_TAIL_SECONDS * 1000
    expect(everyone.locator(".live-row.call")).to_have_count(2, timeout=timeout)
    expect(acme.locator(".live-row.call")).to_have_count(1, timeout=timeout)
    expect(acme.locator(".live-row.call")).to_contain_text("gpt-4o-mini")
    # Both events reached the unbound viewer; the acme viewer got its own and not globex's.
    assert acme.locator(".live-row.call").count() == 1
    wait_until_stored(scene.world)
    acme.locator(".live-row.call a").click()
    expect(acme.locator(".span-detail .message.role-user")).to_have_text("userA question from acme.")
