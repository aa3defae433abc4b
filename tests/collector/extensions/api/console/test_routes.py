"""How the api extension serves the console: page paths, assets, compression, revalidation, and the API beside it."""

from __future__ import annotations

import httpx

from collector.extensions.api.console.routes import INDEX_FILE, PAGE_PATHS, is_console_path
from tests.collector.extensions.api.console.scene import Scene


def test_every_page_path_answers_the_app(scene: Scene) -> None:
    index = INDEX_FILE.read_bytes()
    examples = {"{trace_id}": "0123456789abcdef0123456789abcdef", "{conversation_id:path}": "a/b c"}
    for path in PAGE_PATHS:
        for placeholder, value in examples.items():
            path = path.replace(placeholder, value)
        answer = httpx.get(scene.world.base_url + path)
        assert (answer.status_code, answer.content) == (200, index), path
        assert answer.headers["content-type"] == "text/html; charset=utf-8"


def test_assets_are_compressed_and_revalidated(scene: Scene) -> None:
    url = scene.world.base_url + "/assets/vendor/uplot.js"
    answer = httpx.get(url, headers={"Accept-Encoding": "gzip"})
    assert answer.headers["content-encoding"] == "gzip"
    assert answer.content.rstrip().endswith(b"export default uPlot;")
    again = httpx.get(url, headers={"If-None-Match": answer.headers["etag"]})
    assert (again.status_code, again.content) == (304, b"")
    page = httpx.get(scene.world.base_url + "/")
    assert httpx.get(scene.world.base_url + "/", headers={"If-None-Match": page.headers["etag"]}).status_code == 304


def test_unknown_paths_keep_the_apis_answers(scene: Scene) -> None:
    base = scene.world.base_url
    assert httpx.get(base + "/assets/nothing-here.js").status_code == 404
    missing = httpx.get(base + "/api/v1/nothing", headers={"Authorization": f"Bearer {scene.world.keys['admin']}"})
    assert (missing.status_code, missing.json()["code"]) == (404, "not_found")
    assert httpx.post(base + "/traces", json={}).status_code == 405
    # The same Host check as the API: a page reached through another name (DNS rebinding) is refused.
    assert httpx.get(base + "/", headers={"Host": "attacker.example"}).status_code == 403


def test_only_the_consoles_own_paths_go_without_a_key() -> None:
    open_paths = ["/", "/traces", "/traces/" + "ab" * 16, "/traces/" + "ab" * 16 + "/graph", "/conversations/a/b",
                  "/findings", "/live", "/key", "/assets/js/main.js"]  # fmt: skip
    closed = ["/api/v1/traces", "/api/traces/" + "ab" * 16, "/traces/x/y", "/tracesx", "/metrics", "/assets"]
    assert all(is_console_path(path) for path in open_paths)
    assert not any(is_console_path(path) for path in closed)
