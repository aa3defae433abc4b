"""The console's evaluations page in a real browser (Debian's Chromium), over a store of evaluation results."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

from tests.collector.extensions.api.console.browser import chromium, new_context, open_page
from tests.collector.extensions.api.evaluations_store import evaluations_collector
from tests.conftest import RunningService

WINDOW = "start=2026-01-01T00:00:00Z&end=2026-01-01T03:00:00Z"


@pytest.fixture(scope="module")
def collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningService]:
    yield from evaluations_collector(tmp_path_factory.mktemp("evaluations-console"))


def test_scores_over_time_and_the_worst_results_first(collector: RunningService) -> None:
    base = f"http://127.0.0.1:{collector.api_port()}"
    with chromium() as browser:
        context = new_context(browser)
        try:
            page = open_page(context.new_page(), f"{base}/evaluations?{WINDOW}")
            expect(page.get_by_role("heading", name="Evaluations", exact=True)).to_be_visible()
            expect(page.locator("[data-kpi=results] .tile-value")).to_have_text("6")
            expect(page.locator("[data-kpi=errors] .tile-value")).to_have_text("1")
            expect(page.locator("figure.chart figcaption")).to_have_text(
                ["Mean score by dimension", "Pass rate by dimension"]
            )
            rows = page.locator(".table-wrap tbody tr")
            # Worst first: the failed ones by score (json's 0, billing's 1, shop's 2), then passed, errors last.
            expect(rows.locator("td:nth-child(2)")).to_have_text(
                ["0", "1", "2", "4", "5", "error: unparseable_answer"]
            )
            first_link = rows.first.locator("a.row-link")
            worst_span = f"/traces/{'0' * 31}6?span={'0' * 15}6"
            expect(first_link).to_have_attribute("href", worst_span)
            filtered = open_page(context.new_page(), f"{base}/evaluations?{WINDOW}&dimension=json")
            expect(filtered.locator(".table-wrap tbody tr")).to_have_count(1)
            assert filtered.evaluate("window.__violations") == []
        finally:
            context.close()
