"""Each console page in a real browser (Debian's Chromium), on a collector fed by the OTel SDK and the proxy.

Numbers are the world's known spans (tests/collector/extensions/api/world.py:
five calls in one hour, 660 input and 115 output tokens, $0.0625, one
error) and the recorded agent traces; times are asserted in the browser's
zone (Asia/Kolkata, UTC+5:30), never in UTC.
"""

from __future__ import annotations

import re

from playwright.sync_api import Browser, Page, expect

from tests.collector.extensions.api.console.browser import PHONE, READY, new_context, open_page
from tests.collector.extensions.api.console.conftest import Opener
from tests.collector.extensions.api.console.scene import Scene
from tests.data import agent_traces

HOUR_WINDOW = "start=2025-06-02T10:00:00Z&end=2025-06-02T11:00:00Z"
# The world's traces in that hour, newest first, as the list shows their root (service, then span name).
HOUR_TRACES = [
    "cron chat gpt-4o-mini",
    "support-bot chat gpt-4o globex",
    "batch-job chat claude-3-5-sonnet",
    "support-bot invoke_agent support",
]
LOOP = "loop_repeated_tool_call"
CONVERSATION = "healthy_conversation"


def tile(page: Page, name: str) -> str:
    return page.locator(f"[data-kpi={name}] .tile-value").inner_text()


def first_column(page: Page) -> list[str]:
    return [
        re.sub(r"\s+", " ", text).strip()
        for text in page.locator(".table-wrap tbody tr td:first-child").all_inner_texts()
    ]


def test_overview_shows_the_hours_calls_tokens_cost_and_percentiles(console: Opener) -> None:
    page = console(f"/?{HOUR_WINDOW}")
    assert tile(page, "calls") == "5"
    assert tile(page, "errors") == "1"
    assert tile(page, "input_tokens") == "660 tok"
    assert tile(page, "output_tokens") == "115 tok"
    assert tile(page, "cost") == "$0.0625"
    assert tile(page, "duration").startswith("2 s / ")  # the median of 0.5, 1, 2, 3 and 5 seconds
    assert tile(page, "ttfc").startswith("250 ms")  # the one streamed call's first chunk
    expect(page.locator(".chart")).to_have_count(6)
    by_model = {row[0]: row[1] for row in _rows(page, ".table-wrap")}
    assert by_model == {"gpt-4o": "2", "claude-3-5-sonnet": "1", "gpt-4o-mini": "1", "text-embedding-3-small": "1"}


def test_overview_splits_by_provider_from_the_form(console: Opener) -> None:
    page = console(f"/?{HOUR_WINDOW}")
    page.select_option("#filter-split", "provider")
    page.get_by_role("button", name="Apply").click()
    expect(page.locator("table caption")).to_have_text("By provider")
    assert "split=provider" in page.url and "start=2025-06-02T10" in page.url  # the view is a link
    assert {row[0]: row[1] for row in _rows(page, ".table-wrap")} == {"openai": "4", "anthropic": "1"}


def _rows(page: Page, table: str) -> list[list[str]]:
    page.wait_for_selector(READY, state="attached")
    return [
        [cell.strip() for cell in row.locator("td").all_inner_texts()]
        for row in page.locator(f"{table} tbody tr").all()
    ]


def test_trace_list_in_the_browsers_zone_and_filtered(console: Opener) -> None:
    page = console(f"/traces?{HOUR_WINDOW}")
    assert first_column(page) == HOUR_TRACES
    support = _rows(page, ".table-wrap")[-1]
    assert support[1] == "Jun 2, 2025, 03:31:00 PM"  # 10:01:00Z in Kolkata
    assert support[2:9] == ["10 s", "3", "1", "100 tok / 20 tok", "$0.0125", "1 high", "error"]  # its tool failed
    page.select_option("#filter-error", "true")
    page.get_by_role("button", name="Apply").click()
    page.wait_for_url(re.compile(r"error=true"))
    # Traces with a failed span: the failed call, and the agent whose tool failed.
    expect(page.locator(".table-wrap tbody tr")).to_have_count(2)
    assert first_column(page) == [HOUR_TRACES[1], HOUR_TRACES[3]]


def test_trace_list_empty_window_says_so(console: Opener) -> None:
    page = console("/traces?start=2025-06-01T00:00:00Z&end=2025-06-01T01:00:00Z")
    expect(page.get_by_role("heading", name="No traces in this window")).to_be_visible()


def test_trace_view_shows_the_messages_and_tool_calls_of_a_recorded_agent(console: Opener, scene: Scene) -> None:
    recording = agent_traces.recording(LOOP)
    (trace_id,) = recording.trace_ids
    page = console(f"/traces/{trace_id}")
    expect(page.locator(".span-row")).to_have_count(recording.totals["spans"])
    # Opened on the call with the finding: the third chat, the finding listed and its loop pattern.
    (finding,) = recording.findings
    expect(page.locator(f".span-row[data-span='{finding.span_id}']")).to_have_attribute("aria-current", "true")
    expect(page.locator(".span-findings .finding-item")).to_have_attribute("data-detector", "repeated_tool_call")
    page.locator(".span-row.llm").first.click()
    detail = page.locator(".span-detail")
    expect(detail.locator(".message.role-system")).to_contain_text("You are the help-desk agent of Acme Cloud.")
    expect(detail.locator(".message.role-user")).to_have_text(
        re.compile("How do I reset two-factor authentication on my account\\?")
    )
    call = detail.locator(".tool-call")
    expect(call.locator("code")).to_have_text("search_docs")
    expect(call.locator("pre")).to_have_text('{"query": "reset two-factor authentication"}')
    assert "span=a9c37e9c19d0caff" in page.url  # the chosen span is in the link
    page.locator(".span-row.tool").first.click()
    expect(detail.locator(".message")).to_have_count(2)
    expect(detail.locator(".message").nth(0)).to_contain_text('{"query":"reset two-factor authentication"}')
    expect(detail.locator(".message").nth(1)).to_contain_text("No results.")


def test_trace_view_of_a_call_shows_tokens_cost_with_source_and_first_chunk(console: Opener, scene: Scene) -> None:
    trace_id = scene.world.traces["chat gpt-4o"]
    page = console(f"/traces/{trace_id}?span={scene.world.spans['chat gpt-4o']}")
    facts = dict(zip(page.locator(".span-detail .facts dt").all_inner_texts(),
                     page.locator(".span-detail .facts dd").all_inner_texts(), strict=False))  # fmt: skip
    assert facts["Input tokens"] == "100 tok"
    assert facts["Cache read"] == "10 tok"
    assert facts["Cost"] == "$0.0125 · source not recorded"
    assert facts["Time to first chunk"] == "250 ms"
    assert facts["Model"] == "gpt-4o"
    params = page.locator(".span-detail .params")
    expect(params).to_contain_text("temperature")
    expect(params).to_contain_text("0.5")


def test_agent_graph_folds_the_loop_and_marks_its_finding(console: Opener) -> None:
    (trace_id,) = agent_traces.recording(LOOP).trace_ids
    page = console(f"/traces/{trace_id}/graph")
    chat = page.locator(".node[data-node='chat gpt-4o']")
    tool = page.locator(".node[data-node='search_docs']")
    expect(chat).to_have_attribute("data-count", "3")
    expect(tool).to_have_attribute("data-count", "3")
    expect(chat).to_have_class(re.compile(r"\bhas-finding\b"))
    expect(chat.locator(".node-finding")).to_have_text("⚠ repeated_tool_call")
    # The loop: search_docs back to the chat that asked for it again, twice, drawn as a loop edge.
    back = page.locator(".edge.back.loop")
    expect(back).to_have_count(1)
    expect(back).to_have_attribute("data-from", "search_docs")
    expect(back).to_have_attribute("data-count", "2")
    expect(page.locator(".graph-findings .finding-item")).to_have_count(1)
    page.locator(".graph-findings a").click()
    page.wait_for_url(re.compile(r"/traces/[0-9a-f]{32}\?span=87f07af745a3fefc$"))


def test_a_healthy_agent_has_no_loop_edge(console: Opener, scene: Scene) -> None:
    trace_id = agent_traces.recording(CONVERSATION).trace_ids[0]
    page = console(f"/traces/{trace_id}/graph")
    expect(page.locator(".node")).not_to_have_count(0)
    expect(page.locator(".edge.loop")).to_have_count(0)
    expect(page.locator(".node.has-finding")).to_have_count(0)


def test_conversations_list_and_one_conversation_adding_up(console: Opener) -> None:
    recording = agent_traces.recording(CONVERSATION)
    (conversation,) = recording.conversation_ids
    page = console("/conversations?start=2025-06-02T00:00:00Z&end=2025-06-04T00:00:00Z")
    assert conversation in first_column(page)
    page.get_by_role("link", name=conversation).click()
    page.wait_for_url(re.compile(f"/conversations/{conversation}"))
    page.wait_for_selector("[data-kpi=calls]")
    assert tile(page, "calls") == str(recording.totals["llm_calls"])
    rows = _rows(page, ".table-wrap")
    assert len(rows) == recording.totals["llm_calls"]
    total_tokens = recording.totals["input_tokens"] + recording.totals["output_tokens"]
    assert rows[-1][6] == f"{total_tokens:,} tok"  # tokens so far, on the last call, is the whole conversation's
    expect(page.locator(".chart")).to_have_count(2)


def test_findings_by_severity_each_linked_to_its_span(console: Opener, scene: Scene) -> None:
    page = console(f"/findings?{HOUR_WINDOW}&min_severity=high")
    assert [row[0] for row in _rows(page, ".table-wrap")] == [
        "critical injection.ignore_previous",
        "high secret.openai_key",
    ]
    page.get_by_role("link", name="secret.openai_key").click()
    page.wait_for_url(
        re.compile(rf"/traces/{scene.world.traces['chat gpt-4o']}\?span={scene.world.spans['chat gpt-4o']}")
    )
    expect(page.locator(".span-detail h2")).to_have_text("chat gpt-4o")


def test_keyboard_moves_through_rows_and_opens_one(console: Opener, scene: Scene) -> None:
    page = console(f"/traces?{HOUR_WINDOW}")
    page.keyboard.press("j")
    page.keyboard.press("j")
    expect(page.locator("a[data-row]").nth(1)).to_be_focused()
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(rf"/traces/{scene.world.traces['chat gpt-4o globex']}$"))
    page.keyboard.press("g")
    page.keyboard.press("f")
    page.wait_for_url(re.compile(r"/findings$"))
    page.wait_for_selector(READY, state="attached")
    page.keyboard.press("/")
    expect(page.locator("#filter-range")).to_be_focused()


def test_a_trace_link_opens_the_same_view_in_a_new_tab(console: Opener, scene: Scene) -> None:
    span = scene.world.spans["execute_tool lookup"]
    page = console(f"/traces/{scene.world.traces['invoke_agent support']}?span={span}")
    expect(page.locator(".span-detail h2")).to_have_text("execute_tool lookup")
    expect(page.locator(".span-detail .badge.error")).to_have_text("error: tool failed")


def test_pages_fit_a_phone(browser: Browser, scene: Scene) -> None:
    context = new_context(browser, scene.world.keys["admin"], PHONE)
    try:
        page = context.new_page()
        (trace_id,) = agent_traces.recording(LOOP).trace_ids
        for path in (f"/?{HOUR_WINDOW}", f"/traces?{HOUR_WINDOW}", f"/traces/{trace_id}", f"/traces/{trace_id}/graph"):
            open_page(page, scene.world.base_url + path)
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= PHONE["width"], f"{path} is {width}px wide on a {PHONE['width']}px screen"
    finally:
        context.close()
