"""The console's defences in a real browser: content as text, its Content-Security-Policy, keys and tenants."""

from __future__ import annotations

import re

import httpx
from playwright.sync_api import Browser, Request, expect

from collector.extensions.api.console.routes import CONTENT_SECURITY_POLICY
from tests.collector.extensions.api.console.browser import READY, new_context, open_page
from tests.collector.extensions.api.console.conftest import Opener
from tests.collector.extensions.api.console.scene import HOSTILE_PROMPT, HOSTILE_SYSTEM, OPENAI_KEY, Scene
from tests.data import agent_traces

HOUR_WINDOW = "start=2025-06-02T10:00:00Z&end=2025-06-02T11:00:00Z"


def test_a_prompt_holding_script_and_html_is_shown_as_text_and_runs_nothing(console: Opener, scene: Scene) -> None:
    page = console(f"/traces/{scene.script_trace}")
    user = page.locator(".span-detail .message.role-user")
    # The text as sent, the masked key excepted (genai_security masked it before the store saw it).
    shown = HOSTILE_PROMPT.replace(OPENAI_KEY, "[REDACTED:openai_api_key]")
    expect(user.locator(".part")).to_have_text(shown)
    expect(page.locator(".span-detail .message.role-system .part")).to_have_text(HOSTILE_SYSTEM)
    assert page.locator("main script, main img, main b, main style").count() == 0
    assert page.evaluate("window.__pwned") is None
    assert "pwned" not in page.title()
    expect(page.locator("main")).to_be_visible()  # the prompt's <style> hid nothing
    assert page.evaluate("window.__violations") == []  # nothing was even tried against the policy
    # Findings marked where their offsets point; the masked key shown as masked, the key nowhere.
    expect(user.locator("mark[data-detector=instruction_override]")).to_have_text("Ignore all previous instructions")
    expect(user.locator("mark[data-detector=email]")).to_have_text("jane.doe@example.com")
    expect(user.locator(".masked")).to_have_text("[REDACTED:openai_api_key]")
    assert OPENAI_KEY not in page.content()


def test_the_pages_keep_within_their_policy(console: Opener, scene: Scene) -> None:
    (loop,) = agent_traces.recording("loop_repeated_tool_call").trace_ids
    for path in (f"/?{HOUR_WINDOW}", f"/traces/{loop}", f"/traces/{loop}/graph", "/live", "/key"):
        page = console(path)
        assert page.evaluate("window.__violations") == [], path


def test_every_answer_of_the_console_carries_the_policy(scene: Scene) -> None:
    for path in ("/", "/traces/0123456789abcdef0123456789abcdef", "/assets/js/main.js", "/assets/vendor/uplot.js"):
        answer = httpx.get(scene.world.base_url + path)
        assert answer.status_code == 200, path
        assert answer.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["x-frame-options"] == "DENY"
    page = httpx.get(scene.world.base_url + "/").text
    scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", page, re.S)
    assert scripts and all('src="' in attributes and not body.strip() for attributes, body in scripts)
    assert "'unsafe-inline'" not in CONTENT_SECURITY_POLICY and "'unsafe-eval'" not in CONTENT_SECURITY_POLICY


def test_pages_need_no_key_but_the_data_does(scene: Scene) -> None:
    base = scene.world.base_url
    assert httpx.get(base + "/findings").status_code == 200
    assert httpx.get(base + "/api/v1/traces").status_code == 401
    assert httpx.get(base + "/api/v1/about").status_code == 401


def test_a_tenants_viewer_sees_only_its_tenant(console: Opener, scene: Scene) -> None:
    page = console(f"/traces?{HOUR_WINDOW}", key="acme")
    expect(page.locator("#who")).to_have_text("viewer · acme")
    rows = page.locator(".table-wrap tbody tr td:first-child").all_inner_texts()
    assert [re.sub(r"\s+", " ", row).strip() for row in rows] == [
        "batch-job chat claude-3-5-sonnet",
        "support-bot invoke_agent support",
    ]
    expect(page.locator("#filter-tenant")).to_have_count(0)  # nothing to choose: the key decides
    overview = console(f"/?{HOUR_WINDOW}", key="acme")
    assert overview.locator("[data-kpi=calls] .tile-value").inner_text() == "3"
    assert overview.locator("[data-kpi=input_tokens] .tile-value").inner_text() == "450 tok"
    assert overview.locator("#filter-split option[value=tenant]").count() == 0
    findings = console(f"/findings?{HOUR_WINDOW}", key="acme")
    detectors = findings.locator(".table-wrap tbody tr td:first-child").all_inner_texts()
    assert sorted(detectors) == ["high secret.openai_key", "low pii.email"]
    other = console(f"/traces/{scene.world.traces['chat gpt-4o globex']}", key="acme")
    expect(other.get_by_role("heading", name="Trace not found")).to_be_visible()
    graph = console(f"/traces/{scene.world.traces['chat gpt-4o globex']}/graph", key="acme")
    expect(graph.get_by_role("heading", name="Trace not found")).to_be_visible()


def test_without_a_key_the_console_asks_for_one_and_sends_it_with_every_request(browser: Browser, scene: Scene) -> None:
    context = new_context(browser)
    sent: list[Request] = []
    context.on("request", lambda request: sent.append(request) if "/api/" in request.url else None)
    try:
        page = context.new_page()
        open_page(page, scene.world.base_url + f"/traces?{HOUR_WINDOW}")
        page.wait_for_url(re.compile(r"/key\?next="))
        page.fill("#api-key", "gca_not_a_key_of_this_collector_at_all")
        page.get_by_role("button", name="Use this key").click()
        expect(page.locator(".form-message")).to_have_text("This key is not accepted here.")
        sent.clear()
        page.fill("#api-key", scene.world.keys["globex"])
        page.get_by_role("button", name="Use this key").click()
        page.wait_for_url(re.compile(r"/traces\?start="))
        page.wait_for_selector(READY, state="attached")
        expect(page.locator(".table-wrap tbody tr")).to_have_count(1)  # globex's one trace in the hour
        assert page.evaluate("sessionStorage.getItem('genai-collector.api-key')") == scene.world.keys["globex"]
        assert page.evaluate("localStorage.getItem('genai-collector.api-key')") is None
        assert sent and all(
            request.headers.get("authorization") == f"Bearer {scene.world.keys['globex']}" for request in sent
        )
        assert all(scene.world.keys["globex"] not in request.url for request in sent)  # never in a URL
    finally:
        context.close()


def test_a_revoked_key_sends_the_user_back_to_the_key_page(browser: Browser, scene: Scene) -> None:
    context = new_context(browser, key="gca_000000000000_revoked-or-mistyped-key-xxxxxxxx")
    try:
        page = context.new_page()
        open_page(page, scene.world.base_url + "/findings")
        page.wait_for_url(re.compile(r"/key\?next=%2Ffindings"))
        expect(page.locator(".form-message")).to_contain_text("not accepted")
    finally:
        context.close()
